/**
 * One client connection of the broker (server.ts describes the whole): its frame
 * decoder, the dispatch of each request to its handler, the response queue and the
 * single writer that sends responses in request order (a header with socket.write, a
 * fetch's segment ranges with sendfile, each step under transferTimeoutMs),
 * backpressure, half-close and shutdown.
 */
import type net from 'node:net';
import { CommitLogError, ErrorCode } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import type { GroupCoordinator } from './coordinator.js';
import { BATCH_HEADER_BYTES, RECORD_COUNT_POS } from '../../log/batch.js';
import { countRecords } from '../../log/batch-walker.js';
import type { CommitLog, Logger } from '../../log/commit-log.js';
import type { LogSlice } from '../../log/partition-log.js';
import { encodeFrame, FrameDecoder, type Frame } from '../protocol/frame.js';
import { errorFields, handle, type Reply } from './handlers.js';
import { API_VERSION, MIN_API_VERSION, VERSION_2_KINDS, decodeRequest, encodeResponse, type RequestHeader, type ResponseHeader } from '../protocol/messages.js';
import type { SharedPrefetch } from './server-support.js';
import { prefetchRange, sendFileRange, type ColdReadOptions } from './zero-copy.js';
import type { BrokerObserver, BrokerStats, ConnectionStats, RequestObservation } from './server.js';

/** A connection stops reading while this many responses wait to be sent... */
export const MAX_PENDING_REQUESTS = 64;
/** ...or while this much memory (held request payloads, unsent bytes) is queued for it. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

const U32_MAX = 0xffffffff;

/** The broker-wide counters every connection adds to: BrokerStats without the live figures. */
export type Counters = Omit<BrokerStats, 'connections' | 'perConnection'>;

/**
 * A payload range is sent in steps of at most this much (one sendFileRange each):
 * transferTimeoutMs bounds each step, restarted by every prefetch chunk of a cold one.
 * Large, so an ordinary fetch is one sendfile; a reader slower than 64 MiB per
 * transferTimeoutMs is taken for one that stopped.
 */
export const TRANSFER_CHUNK_BYTES = 64 * 1024 * 1024;

interface Pending {
  reply: Promise<{ header: ResponseHeader; reply: Reply } | null>;
  /** Request payload bytes held until the handler is done with them. */
  heldBytes: number;
  /** Filled in for BrokerOptions.observer, when there is one. */
  observed?: Observed;
}

interface Observed extends RequestObservation {
  started: number;
}

export interface Shared {
  log: CommitLog;
  offsets: OffsetsStore;
  coordinator: GroupCoordinator;
  logger: Logger;
  maxFrameBytes: number;
  counters: Counters;
  observer: BrokerObserver | undefined;
  fetchPath: 'sendfile' | 'copy';
  /** Cold-read settings shared by all connections (one limiter); null when prefetch is off. */
  prefetch: SharedPrefetch;
  transferTimeoutMs: number;
  fetchLimits: { maxWaitMs: number; clamped(): void };
}

export class Connection {
  private readonly id: number;
  private readonly socket: net.Socket;
  private readonly shared: Shared;
  private readonly remote: string;
  private readonly decoder: FrameDecoder;
  /** Aborts this connection's transfers (prefetches of the copy path): the socket closed or the broker stops. */
  private readonly abort = new AbortController();
  /**
   * Ends this connection's long polls early (they answer with what is there): also when
   * the peer shuts down its side, since a client that sent its last request and went
   * away must not hold a parked poll until its max_wait_ms.
   */
  private readonly polls = new AbortController();
  private readonly queue: Pending[] = [];
  private head = 0;
  private heldBytes = 0;
  private writing = false;
  private paused = false;
  /** No more requests are taken (broker shutdown or a bad frame). */
  private ending = false;
  /** The peer shut down its side: answer what was received, then end. */
  private peerEnded = false;
  private finished = false;
  private readonly closed: Promise<void>;
  /** The deadline of the transfer step under way (guarded()). */
  private progressTimer: NodeJS.Timeout | undefined;

  constructor(id: number, socket: net.Socket, shared: Shared) {
    this.id = id;
    this.socket = socket;
    this.shared = shared;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.decoder = new FrameDecoder({ maxFrameBytes: shared.maxFrameBytes });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.once('end', () => {
      this.peerEnded = true;
      this.polls.abort();
      this.pump();
      if (!this.writing) this.finish();
    });
    // Errors (ECONNRESET, EPIPE) end in 'close'; nothing else to do but not crash.
    socket.on('error', (err) => shared.logger.info({ connection: this.remote, err: String(err) }, 'connection failed'));
    socket.once('close', () => {
      this.polls.abort();
      this.abort.abort();
    });
  }

  stats(): ConnectionStats {
    return { id: this.id, remote: this.remote, pendingRequests: this.pendingRequests, pendingBytes: this.pendingBytes, paused: this.paused };
  }

  private get pendingRequests(): number {
    return this.queue.length - this.head;
  }

  private get pendingBytes(): number {
    return this.heldBytes + this.socket.writableLength + this.decoder.bufferedBytes;
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return; // shutting down: input is dropped, only FIN matters
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.badFrame(err);
      return;
    }
    this.pump();
  }

  /** Takes frames while the queue has room, then pauses or resumes reading to match. */
  private pump(): void {
    while (!this.ending && !this.overBound()) {
      let frame: Frame | undefined;
      try {
        frame = this.decoder.next();
      } catch (err) {
        this.badFrame(err);
        return;
      }
      if (frame === undefined) break;
      this.dispatch(frame);
    }
    const counters = this.shared.counters;
    counters.maxPendingBytes = Math.max(counters.maxPendingBytes, this.pendingBytes);
    const stop = !this.ending && (this.overBound() || this.socket.writableNeedDrain);
    if (stop && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!stop && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private overBound(): boolean {
    return this.pendingRequests >= MAX_PENDING_REQUESTS || this.heldBytes + this.socket.writableLength >= MAX_PENDING_BYTES;
  }

  private dispatch(frame: Frame): void {
    const counters = this.shared.counters;
    let request: RequestHeader;
    try {
      request = decodeRequest(frame.header);
    } catch (err) {
      // Not a RequestHeader (not protobuf, an unknown enum value, a number past 2^53):
      // the client does not speak this protocol, and its correlation id is unknown.
      this.badFrame(err);
      return;
    }
    counters.requests++;
    const { correlationId } = request;
    if (request.apiVersion < MIN_API_VERSION || request.apiVersion > API_VERSION) {
      const err = new CommitLogError(ErrorCode.UNSUPPORTED_VERSION, `api_version ${request.apiVersion} is not supported; this broker speaks ${MIN_API_VERSION} to ${API_VERSION}`);
      this.enqueue(Promise.resolve(failure(correlationId, err)), 0);
      return;
    }
    const body = request.body;
    if (body !== undefined && request.apiVersion < 2 && VERSION_2_KINDS.has(body.case)) {
      const err = new CommitLogError(ErrorCode.UNSUPPORTED_VERSION, `${body.case} needs api_version 2, the request has ${request.apiVersion}`);
      this.enqueue(Promise.resolve(failure(correlationId, err)), 0);
      return;
    }
    if (body === undefined) {
      const err = new CommitLogError(ErrorCode.INVALID_ARGUMENT, 'request has no body (no request kind set)');
      this.enqueue(Promise.resolve(failure(correlationId, err)), 0);
      return;
    }
    const payload = frame.payload;
    if (body.case === 'fetch') counters.fetches++;
    else if (body.case === 'multiFetch') counters.multiFetches++;
    if (body.case === 'produce') {
      counters.producedBytes += payload.length;
    } else if (payload.length > 0) {
      const err = new CommitLogError(ErrorCode.INVALID_ARGUMENT, `a ${body.case} request takes no payload, got ${payload.length} bytes (only produce carries one)`);
      this.enqueue(Promise.resolve(failure(correlationId, err)), 0);
      return;
    }
    let replied: Promise<Reply>;
    try {
      replied = handle({
        log: this.shared.log, offsets: this.shared.offsets, coordinator: this.shared.coordinator, signal: this.polls.signal,
        clientId: request.clientId, clientHost: this.socket.remoteAddress ?? '', fetchLimits: this.shared.fetchLimits,
      }, body, payload);
    } catch (err) {
      replied = Promise.reject(err);
    }
    const silent = body.case === 'produce' && body.value.acks === 'NONE';
    const observed = this.shared.observer === undefined ? undefined : observe(body, payload);
    const result = replied.then(
      (reply) => (reply.kind === 'none' ? null : { header: { correlationId, errorCode: '', errorMessage: '', body: reply.body }, reply }),
      (err: unknown) => {
        if (!silent) return failure(correlationId, err);
        if (observed !== undefined) observed.errorCode = errorFields(err).errorCode;
        counters.errors++;
        this.shared.logger.info({ connection: this.remote, ...errorFields(err) }, 'produce with acks NONE failed');
        return null;
      },
    );
    this.enqueue(result, payload.length, observed);
  }

  private enqueue(reply: Pending['reply'], heldBytes: number, observed?: Observed): void {
    const pending: Pending = { reply, heldBytes, observed };
    this.heldBytes += heldBytes;
    // The payload is released once the handler is done, not when the response is sent.
    if (heldBytes > 0) {
      void reply.finally(() => {
        this.heldBytes -= pending.heldBytes;
        pending.heldBytes = 0;
        this.pump();
      });
    }
    this.queue.push(pending);
    if (!this.writing) void this.writeLoop();
  }

  /** Sends the responses in request order; the only writer of the socket. */
  private async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      while (this.head < this.queue.length) {
        const { reply, observed } = this.queue[this.head];
        const item = await reply;
        if (item !== null) await this.send(item.header, item.reply, observed);
        if (observed !== undefined) this.report(observed);
        this.queue[this.head] = undefined as unknown as Pending;
        this.head++;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue.splice(0, this.head);
          this.head = 0;
        }
        this.pump();
      }
    } finally {
      this.writing = false;
    }
    if (this.ending || this.peerEnded) this.finish();
  }

  private report(observed: Observed): void {
    observed.durationMs = performance.now() - observed.started;
    if (observed.errorCode !== '') observed.bytes = observed.records = 0;
    try {
      this.shared.observer!.onRequest(observed);
    } catch (err) {
      this.shared.logger.warn({ err: String(err) }, 'broker observer failed');
    }
  }

  private async send(header: ResponseHeader, reply: Reply, observed?: Observed): Promise<void> {
    const slices = reply.kind === 'fetch' ? reply.slices : NO_SLICES;
    try {
      if (this.socket.destroyed) return;
      let bytes: Uint8Array;
      try {
        bytes = encodeResponse(header);
      } catch (err) {
        // A value the response cannot carry is a broker bug; the client still gets an answer.
        header = failure(header.correlationId, err).header;
        bytes = encodeResponse(header);
      }
      const counters = this.shared.counters;
      if (header.errorCode !== '') counters.errors++;
      if (observed !== undefined) observed.errorCode = header.errorCode;
      const sent = header.errorCode === '' ? slices : NO_SLICES;
      let length = 0;
      for (const slice of sent) length += slice.length;
      this.socket.write(encodeFrame(bytes, length, U32_MAX));
      if (length > 0) {
        try {
          for (const slice of sent) await this.sendSlice(slice);
          if (observed !== undefined) {
            observed.bytes = length;
            observed.records = 0;
            const topics = reply.kind === 'fetch' ? reply.topics : undefined;
            const byTopic = new Map<string, { topic: string; bytes: number; records: number }>();
            sent.forEach((slice, i) => {
              const records = countRecords(slice.segment.data, slice.position, slice.position + slice.length);
              observed.records += records;
              const topic = topics?.[i];
              if (topic === undefined) return;
              let t = byTopic.get(topic);
              if (t === undefined) byTopic.set(topic, (t = { topic, bytes: 0, records: 0 }));
              t.bytes += slice.length;
              t.records += records;
            });
            if (topics !== undefined) observed.topics = [...byTopic.values()];
          }
        } catch (err) {
          // Half a payload is on the wire: the stream has no frame boundary any more.
          this.shared.logger.info({ connection: this.remote, err: String(err) }, 'fetch transfer failed; closing the connection');
          this.socket.destroy();
          return;
        }
      }
      counters.responses++;
      if (this.socket.writableNeedDrain) await this.guarded(this.drained());
    } finally {
      for (const slice of slices) slice.release();
    }
  }

  /** One held range of a segment, in chunks of TRANSFER_CHUNK_BYTES, each watched by transferTimeoutMs. */
  private async sendSlice(slice: LogSlice): Promise<void> {
    const cold = this.coldRead(slice);
    if (this.shared.fetchPath === 'copy') {
      // The copy reads the mapping on the event loop: make the pages resident first.
      if (cold !== undefined) await prefetchRange(slice.fd, slice.position, slice.length, cold, this.abort.signal);
      this.socket.write(Buffer.from(slice.segment.data.subarray(slice.position, slice.position + slice.length)));
      if (this.socket.writableNeedDrain) await this.guarded(this.drained());
      return;
    }
    const end = slice.position + slice.length;
    for (let at = slice.position; at < end; at += TRANSFER_CHUNK_BYTES) {
      const n = Math.min(TRANSFER_CHUNK_BYTES, end - at);
      await this.guarded(sendFileRange(this.socket, slice.fd, at, n, { cold }));
      this.shared.counters.sendfileBytes += n;
    }
  }

  /**
   * `step` of a response transfer, with a deadline of transferTimeoutMs: a client that
   * stops reading leaves it pending, and then the connection is destroyed (which
   * cancels the step; the caller releases what it holds).
   */
  private async guarded<T>(step: Promise<T>): Promise<T> {
    const timer = setTimeout(() => {
      if (this.socket.destroyed) return;
      this.shared.counters.transferTimeouts++;
      this.shared.logger.warn({ connection: this.remote, transferTimeoutMs: this.shared.transferTimeoutMs },
        `closing connection ${this.remote}: a response transfer made no progress for ${this.shared.transferTimeoutMs} ms (the client does not read)`);
      this.socket.destroy();
    }, this.shared.transferTimeoutMs);
    this.progressTimer = timer;
    try {
      return await step;
    } finally {
      clearTimeout(timer);
      this.progressTimer = undefined;
    }
  }

  /** A step of a cold transfer completed (a prefetch chunk, a sendfile started after one): the deadline starts again. */
  private progressed(): void {
    this.progressTimer?.refresh();
  }

  /**
   * The cold-read options of one payload, counting it (and the bytes prefetched for it)
   * in the broker's stats; undefined when prefetch is off.
   */
  private coldRead(slice: LogSlice): ColdReadOptions | undefined {
    const settings = this.shared.prefetch;
    if (settings === null) return undefined;
    const counters = this.shared.counters;
    let counted = false;
    return {
      ...settings,
      view: slice.segment.data,
      observer: (event) => {
        if (event.kind === 'prefetched' || event.kind === 'sendfile') this.progressed();
        if (event.kind === 'prefetch' && !counted) {
          counted = true;
          counters.coldFetches++;
        } else if (event.kind === 'prefetched') {
          counters.prefetchedBytes += event.bytes;
        }
        settings.observer?.(event);
      },
    };
  }

  private drained(): Promise<void> {
    this.pump(); // pauses reading while the buffer drains
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.removeListener('drain', done);
        this.socket.removeListener('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** A frame that cannot be parsed: the stream has no frame boundary, so the connection ends. */
  private badFrame(err: unknown): void {
    if (this.ending && this.socket.destroyed) return;
    this.shared.counters.badFrames++;
    const { errorCode, errorMessage } = errorFields(err);
    this.shared.logger.warn({ connection: this.remote, code: errorCode }, `closing connection ${this.remote}: ${errorMessage}`);
    this.ending = true;
    this.polls.abort();
    this.abort.abort();
    this.socket.destroy();
  }

  /**
   * Broker shutdown: takes no more requests, ends long-polls early (they answer with
   * what is there), sends what is queued, then closes. Destroys the socket if that
   * takes longer than `timeoutMs` (a client that does not read).
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.ending = true;
    this.polls.abort();
    this.abort.abort();
    // Keep reading (and dropping) input so the peer's FIN is seen.
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    if (!this.writing) this.finish();
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    timer.unref();
    await this.closed;
    clearTimeout(timer);
  }

  /** Ends our side of the connection after everything written so far. */
  private finish(): void {
    if (this.finished || this.socket.destroyed) return;
    this.finished = true;
    // The socket closes once the peer has ended too (at once after a half-close;
    // at shutdown, when the client answers our FIN, or shutdown()'s timeout).
    this.socket.end();
  }
}

/** What the observer learns of a request before it is handled. */
function observe(body: NonNullable<RequestHeader['body']>, payload: Buffer): Observed {
  const v = body.value as { topic?: unknown; name?: unknown };
  let topic = typeof v.topic === 'string' ? v.topic : typeof v.name === 'string' ? v.name : '';
  if (body.case === 'multiFetch') {
    const names = new Set(body.value.partitions.map((p) => p.topic));
    topic = names.size === 1 ? [...names][0]! : '';
  }
  const produce = body.case === 'produce';
  const records = produce && payload.length >= BATCH_HEADER_BYTES ? payload.readInt32BE(RECORD_COUNT_POS) : 0;
  return { kind: body.case, topic, started: performance.now(), durationMs: 0, errorCode: '', bytes: produce ? payload.length : 0, records };
}

const NO_SLICES: LogSlice[] = [];

function failure(correlationId: number, err: unknown): { header: ResponseHeader; reply: Reply } {
  return { header: { correlationId, ...errorFields(err) }, reply: { kind: 'none' } };
}
