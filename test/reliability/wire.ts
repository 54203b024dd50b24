/**
 * A raw protocol client for the reliability tests: request frames built by hand (so a
 * test knows its own socket's local port and can send anything, valid or not) and
 * responses cut with the project's FrameDecoder, in order. No retries, no batching.
 */
import net from 'node:net';
import { encodeBatch } from '../../src/log/batch.js';
import type { ProducerRecord } from '../../src/log/record.js';
import { encodeFrame, FrameDecoder } from '../../src/net/protocol/frame.js';
import { API_VERSION, decodeResponse, encodeRequest, type RequestBody, type ResponseHeader } from '../../src/net/protocol/messages.js';

const EMPTY = Buffer.alloc(0);

export interface Reply {
  header: ResponseHeader;
  payload: Buffer;
}

/** The bytes of one request frame. */
export function requestFrame(body: RequestBody | undefined, payload: Buffer = EMPTY, correlationId = 1, apiVersion = API_VERSION): Buffer {
  const header = encodeRequest({ apiVersion, correlationId, clientId: 'reliability', body });
  return Buffer.concat([encodeFrame(header, payload.length, 0xffffffff), payload]);
}

export const produceBody = (topic: string, partition: number, acks: 'WRITTEN' | 'NONE' | 'FLUSHED' = 'WRITTEN'): RequestBody => ({
  case: 'produce', value: { topic, partition, acks },
});

export const fetchBody = (topic: string, partition: number, offset: number, maxBytes = 1024 * 1024, maxWaitMs = 0, minBytes = 0): RequestBody => ({
  case: 'fetch', value: { topic, partition, offset, maxBytes, maxWaitMs, minBytes },
});

export function batch(records: ProducerRecord[], timestamp = 1_700_000_000_000): Buffer {
  return encodeBatch(records, { timestamp });
}

export class WireClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 0xffffffff });
  private readonly waiting: { id: number; resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private nextId = 1;
  private failure: Error | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
        for (const frame of this.decoder) this.deliver({ header: decodeResponse(frame.header), payload: Buffer.from(frame.payload) });
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.once('close', () => this.fail(new Error('connection closed')));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, noDelay: true });
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new WireClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get localPort(): number {
    return this.socket.localPort ?? -1;
  }

  private deliver(r: Reply): void {
    const w = this.waiting.shift();
    if (w === undefined) {
      this.fail(new Error(`unexpected response ${r.header.correlationId}`));
      return;
    }
    if (w.id !== r.header.correlationId) w.reject(new Error(`response ${r.header.correlationId} where ${w.id} was expected`));
    else w.resolve(r);
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  /** Sends a request and resolves with its response (pipelined: call again without waiting). */
  call(body: RequestBody | undefined, payload: Buffer = EMPTY, apiVersion = API_VERSION): Promise<Reply> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    const p = new Promise<Reply>((resolve, reject) => this.waiting.push({ id, resolve, reject }));
    this.socket.write(requestFrame(body, payload, id, apiVersion));
    return p;
  }

  /** A request that must succeed. */
  async ok(body: RequestBody, payload: Buffer = EMPTY): Promise<Reply> {
    const r = await this.call(body, payload);
    if (r.header.errorCode !== '') throw new Error(`${body.case} failed: ${r.header.errorCode} ${r.header.errorMessage}`);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
