/**
 * One client connection of the broker (server.ts describes the whole): its frame
 * decoder, the dispatch of each request to its handler, the response queue and the
 * single writer that sends responses in request order (a header with socket.write, a
 * fetch's segment ranges with sendfile, each step under transferTimeoutMs),
 * backpressure, half-close and shutdown. What the Kafka listener's connection does the
 * same way (pausing, drain, ending, shutdown, bad frames, cold-read counting) is in
 * socket-connection.ts, the base of both.
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
import { SocketConnection } from './socket-connection.js';
import { prefetchRange } from './zero-copy.js';
import type { BrokerObserver, BrokerStats, ConnectionStats, RequestObservation } from './server.js';

export { MAX_PENDING_BYTES, MAX_PENDING_REQUESTS, TRANSFER_CHUNK_BYTES } from './socket-connection.js';

const U32_MAX = 0xffffffff;

/** The broker-wide counters every connection adds to: BrokerStats without the live figures. */
export type Counters = Omit<BrokerStats, 'connections' | 'perConnection'>;

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

export class Connection extends SocketConnection<Pending> {
  private readonly id: number;
  private readonly shared: Shared;
  private readonly decoder: FrameDecoder;
  /**
   * Ends this connection's long polls early (they answer with what is there): also when
   * the peer shuts down its side, since a client that sent its last request and went
   * away must not hold a parked poll until its max_wait_ms.
   */
  private readonly polls = new AbortController();

  constructor(id: number, socket: net.Socket, shared: Shared) {
    super(socket, shared, 'connection');
    this.id = id;
    this.shared = shared;
    this.decoder = new FrameDecoder({ maxFrameBytes: shared.maxFrameBytes });
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
  protected pump(): void {
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
    this.applyBackpressure(!this.ending && (this.overBound() || this.socket.writableNeedDrain), this.pendingBytes);
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
    this.enqueuePending({ reply, heldBytes, observed }, reply);
  }

  protected async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      while (this.head < this.queue.length) {
        const { reply, observed } = this.queue[this.head];
        const item = await reply;
        if (item !== null) await this.send(item.header, item.reply, observed);
        if (observed !== undefined) this.report(observed);
        this.advanceQueue();
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
    if (this.shared.fetchPath === 'copy') {
      // The copy reads the mapping on the event loop: make the pages resident first.
      const cold = this.coldRead(slice);
      if (cold !== undefined) await prefetchRange(slice.fd, slice.position, slice.length, cold, this.abort.signal);
      this.socket.write(Buffer.from(slice.segment.data.subarray(slice.position, slice.position + slice.length)));
      if (this.socket.writableNeedDrain) await this.guarded(this.drained());
      return;
    }
    await this.sendRange(slice, slice.position, slice.length, (n) => (this.shared.counters.sendfileBytes += n));
  }

  /** A frame or RequestHeader that cannot be parsed: the connection ends (SocketConnection). */
  private badFrame(err: unknown): void {
    const { errorCode, errorMessage } = errorFields(err);
    this.closeOnBadFrame(errorCode, errorMessage);
  }

  /** Shutdown and bad frames end the long polls too (they answer with what is there). */
  protected stopTaking(): void {
    this.polls.abort();
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
