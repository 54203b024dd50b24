/**
 * One TCP connection from a client to the broker: frames out, frames in, and the
 * matching of responses to requests (docs/protocol.md).
 *
 * Pipelining: any number of requests may be outstanding. The broker answers them in
 * request order, so the pending requests form a FIFO; each response must carry the
 * correlation id at the head of it. Anything else (an id out of order, a response
 * nobody waits for) means the stream can no longer be trusted: the connection fails
 * with ERR_BAD_FRAME, as it does for a frame the decoder rejects.
 *
 * Fire-and-forget (produce with acks NONE): `send()` expects no response, so it takes
 * no place in the FIFO; it resolves once its bytes are handed to the kernel.
 *
 * Failures, all CommitLogErrors:
 * - an error_code in a response rejects that request alone, with that code and
 *   message (the connection stays up);
 * - a lost connection (refused, reset, closed by the broker) rejects every pending
 *   request, and every later one, with ERR_IO (errno ECONNREFUSED, ECONNRESET, ...;
 *   `isConnectionError()` is true for them);
 * - a frame that does not decode, or a response out of order, does the same with
 *   ERR_BAD_FRAME or ERR_FRAME_TOO_LARGE (a broken broker: not worth a retry);
 * - a request not answered within its timeout rejects with ERR_IO, errno ETIMEDOUT,
 *   and closes the connection: later responses would be answers to the wrong requests
 *   and a broker that stopped answering is not worth waiting for (Kafka's clients do
 *   the same). The other pending requests fail as for a lost connection.
 *
 * Backpressure: `request()` and `send()` always queue their frame (Node buffers it);
 * a caller producing many large frames checks `needsDrain` (socket.write's return
 * value) and awaits `drained()` before writing more.
 *
 * Not shared between threads; one Connection per socket. Reconnecting is the
 * owner's business: a failed Connection stays failed.
 */
import net from 'node:net';
import { CommitLogError, ErrorCode, type ErrorCodeValue } from '../../errors.js';
import { connectionError, intOption } from './client-types.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from '../protocol/frame.js';
import { API_VERSION, decodeResponse, encodeRequest, type RequestBody, type ResponseHeader } from '../protocol/messages.js';

export interface ConnectionOptions {
  host: string;
  port: number;
  /** Default 'commitlog'. */
  clientId?: string;
  /** Default 10000. */
  connectTimeoutMs?: number;
  /** Default timeout of a request; default 30000. */
  requestTimeoutMs?: number;
  /** Largest frame sent or accepted; default 16 MiB (the broker's default). */
  maxFrameBytes?: number;
  /** Bytes queued in Node before `needsDrain` turns true; default 1 MiB. */
  writeHighWaterMarkBytes?: number;
}

/** A successful response: its decoded header and its raw payload (a view, not a copy). */
export interface Response {
  header: ResponseHeader;
  payload: Buffer;
}

interface Pending {
  correlationId: number;
  body: RequestBody;
  resolve: (response: Response) => void;
  reject: (err: CommitLogError) => void;
  timer: NodeJS.Timeout | undefined;
}

const EMPTY = Buffer.alloc(0);

export class Connection {
  readonly host: string;
  readonly port: number;
  readonly clientId: string;
  readonly requestTimeoutMs: number;
  readonly maxFrameBytes: number;
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  /** Requests awaiting a response, oldest first, from index `head`. */
  private pending: Pending[] = [];
  private head = 0;
  private nextCorrelationId = 0;
  /** Set once the connection is unusable; every later call rejects with it. */
  private failure: CommitLogError | undefined;
  private closing: Promise<void> | undefined;
  private readonly closeListeners: ((err: CommitLogError) => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  private constructor(socket: net.Socket, options: ConnectionOptions, maxFrameBytes: number, requestTimeoutMs: number) {
    this.socket = socket;
    this.host = options.host;
    this.port = options.port;
    this.clientId = options.clientId ?? 'commitlog';
    this.requestTimeoutMs = requestTimeoutMs;
    this.maxFrameBytes = maxFrameBytes;
    this.decoder = new FrameDecoder({ maxFrameBytes });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(this.lost(err)));
    socket.on('close', () => this.fail(connectionError(`connection to ${this.address} was closed by the broker`, 'ECONNRESET')));
  }

  /** Opens a connection; rejects with ERR_IO (errno ECONNREFUSED, ETIMEDOUT, ...). */
  static connect(options: ConnectionOptions): Promise<Connection> {
    let connectTimeoutMs: number;
    let requestTimeoutMs: number;
    let maxFrameBytes: number;
    let highWaterMark: number;
    try {
      connectTimeoutMs = intOption('connectTimeoutMs', options.connectTimeoutMs, 10_000, 1);
      requestTimeoutMs = intOption('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1);
      maxFrameBytes = intOption('maxFrameBytes', options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 64, 0xffffffff);
      highWaterMark = intOption('writeHighWaterMarkBytes', options.writeHighWaterMarkBytes, 1024 * 1024, 1);
    } catch (err) {
      return Promise.reject(err);
    }
    const address = `${options.host}:${options.port}`;
    return new Promise((resolve, reject) => {
      // writableHighWaterMark reaches the socket's Duplex constructor; @types/node omits it.
      const socket = net.connect({ host: options.host, port: options.port, noDelay: true, writableHighWaterMark: highWaterMark } as net.NetConnectOpts);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(connectionError(`connecting to ${address} timed out after ${connectTimeoutMs} ms`, 'ETIMEDOUT', undefined, 'connect'));
      }, connectTimeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        const errno = (err as { code?: unknown }).code;
        reject(connectionError(`connecting to ${address} failed: ${err.message}`, typeof errno === 'string' ? errno : 'ECONNREFUSED', err, 'connect'));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(new Connection(socket, options, maxFrameBytes, requestTimeoutMs));
      });
    });
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** False once the connection failed or began closing. */
  get isOpen(): boolean {
    return this.failure === undefined && this.closing === undefined;
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.length - this.head;
  }

  /** True while Node's write queue is above its high-water mark: wait for drained(). */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Resolves once the write queue has drained; rejects when the connection fails first. */
  drained(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.socket.removeListener('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        this.socket.removeListener('drain', onDrain);
        reject(this.failure ?? connectionError(`connection to ${this.address} closed`, 'ECONNRESET'));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  /** Called once, with the reason, when the connection fails or closes. */
  onClose(listener: (err: CommitLogError) => void): void {
    if (this.failure !== undefined) queueMicrotask(() => listener(this.failure!));
    else this.closeListeners.push(listener);
  }

  /**
   * Sends a request; resolves with the response, or rejects with the error code the
   * broker answered with, or with ERR_IO if the connection fails or `timeoutMs`
   * (default requestTimeoutMs) passes first.
   */
  request(body: RequestBody, payload?: Uint8Array, timeoutMs = this.requestTimeoutMs): Promise<Response> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    const correlationId = this.nextCorrelationId;
    let prefix: Buffer;
    try {
      prefix = this.frame(correlationId, body, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    this.nextCorrelationId = (correlationId + 1) >>> 0;
    return new Promise<Response>((resolve, reject) => {
      const entry: Pending = { correlationId, body, resolve, reject, timer: undefined };
      entry.timer = setTimeout(() => this.onTimeout(entry, timeoutMs), timeoutMs);
      this.pending.push(entry);
      this.write(prefix, payload, undefined);
    });
  }

  /**
   * Sends a request that gets no response (produce with acks NONE). Resolves once
   * its bytes are in the kernel's socket buffer; rejects with ERR_IO if the
   * connection fails first. Delivery is not confirmed.
   */
  send(body: RequestBody, payload?: Uint8Array): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    let prefix: Buffer;
    try {
      prefix = this.frame(this.nextCorrelationId, body, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    this.nextCorrelationId = (this.nextCorrelationId + 1) >>> 0;
    return new Promise<void>((resolve, reject) => {
      this.write(prefix, payload, (err) => {
        if (err == null) resolve();
        else reject(this.failure ?? this.lost(err));
      });
    });
  }

  /**
   * Waits for the pending requests to be answered (or to fail), then closes the socket.
   * New requests are refused from the call on.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      while (this.failure === undefined && this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      if (this.failure === undefined) {
        this.failure = this.closedError();
        for (const listener of this.closeListeners.splice(0)) listener(this.failure);
      }
      if (!this.socket.destroyed) {
        const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
        this.socket.end();
        // A broker that does not close its side promptly is cut off.
        const timer = setTimeout(() => this.socket.destroy(), 1000);
        await closed;
        clearTimeout(timer);
      }
    })();
    return this.closing;
  }

  /** Closes at once: every pending request rejects with `err` (default: closed locally). */
  destroy(err?: CommitLogError): void {
    this.fail(err ?? this.closedError());
  }

  // ---- internals ---------------------------------------------------------------

  private frame(correlationId: number, body: RequestBody, payload: Uint8Array | undefined): Buffer {
    const header = encodeRequest({ apiVersion: API_VERSION, correlationId, clientId: this.clientId, body });
    return encodeFrame(header, payload === undefined ? 0 : payload.byteLength, this.maxFrameBytes);
  }

  private write(prefix: Buffer, payload: Uint8Array | undefined, callback: ((err?: Error | null) => void) | undefined): void {
    const socket = this.socket;
    if (payload === undefined || payload.byteLength === 0) {
      socket.write(prefix, callback);
      return;
    }
    // Corked, the two writes leave as one writev: no copy of the payload, one syscall.
    socket.cork();
    socket.write(prefix);
    socket.write(payload, callback);
    socket.uncork();
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
      for (let frame = this.decoder.next(); frame !== undefined; frame = this.decoder.next()) {
        this.onResponse(decodeResponse(frame.header), frame.payload);
        if (this.failure !== undefined) return;
      }
    } catch (err) {
      // ERR_BAD_FRAME / ERR_FRAME_TOO_LARGE from the decoder: the stream has no frame
      // boundary any more.
      const code = err instanceof CommitLogError ? err.code : ErrorCode.BAD_FRAME;
      this.fail(new CommitLogError(code, `connection to ${this.address} dropped: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    }
  }

  private onResponse(header: ResponseHeader, payload: Buffer): void {
    const entry = this.head < this.pending.length ? this.pending[this.head] : undefined;
    if (entry === undefined || entry.correlationId !== header.correlationId) {
      const expected = entry === undefined ? 'no request is pending' : `expected ${entry.correlationId}`;
      this.fail(new CommitLogError(ErrorCode.BAD_FRAME, `connection to ${this.address} dropped: response with correlation id ${header.correlationId}, ${expected}`));
      return;
    }
    this.shift();
    clearTimeout(entry.timer);
    if (header.errorCode !== '') entry.reject(this.brokerError(header, entry.body));
    else entry.resolve({ header, payload: payload.byteLength === 0 ? EMPTY : payload });
    if (this.inFlight === 0) this.wakeIdle();
  }

  private shift(): void {
    this.pending[this.head] = undefined as unknown as Pending;
    this.head++;
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }

  private brokerError(header: ResponseHeader, body: RequestBody): CommitLogError {
    const value = body.value as { topic?: unknown; partition?: unknown; offset?: unknown };
    const topic = typeof value.topic === 'string' ? value.topic : undefined;
    const partition = typeof value.partition === 'number' && topic !== undefined ? value.partition : undefined;
    const offset = body.case === 'fetch' ? body.value.offset : undefined;
    // The broker sends the library's own codes; one this client does not know yet is
    // passed through unchanged rather than lost.
    const code = header.errorCode as ErrorCodeValue;
    return new CommitLogError(code, header.errorMessage || `${body.case} request failed with ${code}`, { topic, partition, offset });
  }

  private onTimeout(entry: Pending, timeoutMs: number): void {
    const what = describe(entry.body);
    const err = connectionError(`${what} to ${this.address} got no response within ${timeoutMs} ms`, 'ETIMEDOUT', undefined, 'request');
    this.fail(err, entry, connectionError(`connection to ${this.address} closed after a request timed out`, 'ECONNABORTED', err));
  }

  /** ERR_IO for a socket error, keeping its errno. */
  private lost(err: Error): CommitLogError {
    const errno = (err as { code?: unknown }).code;
    return connectionError(`connection to ${this.address} failed: ${err.message}`, typeof errno === 'string' ? errno : 'EIO', err);
  }

  private closedError(): CommitLogError {
    return connectionError(`connection to ${this.address} is closed`, 'ECONNRESET');
  }

  /**
   * Makes the connection unusable and rejects everything pending: `culprit` (a timed-
   * out request) with `err`, the others with `othersErr` (default `err`).
   */
  private fail(err: CommitLogError, culprit?: Pending, othersErr: CommitLogError = err): void {
    if (this.failure !== undefined) return;
    this.failure = culprit === undefined ? err : othersErr;
    const pending = this.pending;
    const head = this.head;
    this.pending = [];
    this.head = 0;
    for (let i = head; i < pending.length; i++) {
      const entry = pending[i]!;
      clearTimeout(entry.timer);
      entry.reject(entry === culprit ? err : othersErr);
    }
    this.socket.destroy();
    this.wakeIdle();
    for (const listener of this.closeListeners.splice(0)) listener(this.failure);
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

function describe(body: RequestBody): string {
  const v = body.value as { topic?: unknown; partition?: unknown };
  return typeof v.topic === 'string' ? `${body.case} request (${v.topic}/${String(v.partition)})` : `${body.case} request`;
}
