/**
 * One connection of the Kafka listener (listener.ts has the whole story): frames cut
 * by the splitter, decoded and dispatched to their handlers in order (state-changing
 * requests are barriers for the later ones), responses written strictly in request
 * order by one writer, fetch record ranges by sendfile, backpressure by pausing the
 * socket, and a bad frame closing only this connection. The socket side it shares with
 * the native broker's connection (pausing, drain, ending, shutdown, bad frames,
 * cold-read counting) is broker/socket-connection.ts.
 */
import type net from 'node:net';
import { CommitLogError, ErrorCode } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import { countRecords } from '../../log/batch-walker.js';
import type { CommitLog, Logger } from '../../log/commit-log.js';
import type { LogSlice } from '../../log/partition-log.js';
import type { GroupCoordinator } from '../broker/coordinator.js';
import { MAX_PENDING_BYTES, SocketConnection } from '../broker/socket-connection.js';
import type { ColdReadOptions } from '../broker/zero-copy.js';
import { isExternal, type Message } from './codec.js';
import { kafkaErrorCode } from './error-codes.js';
import { KafkaFrameSplitter } from './frame.js';
import { API_VERSIONS, KAFKA_HANDLERS } from './handlers/index.js';
import type { KafkaHandlerContext, KafkaSettings } from './handlers/types.js';
import type { KafkaListenerStats, KafkaObserver, KafkaRequestObservation } from './listener.js';
import { decodeRequest, encodeResponse, type EncodedFrame } from './messages.js';
import { apiVersionsAnswer } from './registry.js';
import { inRange, type ApiSpec } from './schema.js';

export { MAX_PENDING_BYTES, MAX_PENDING_REQUESTS } from '../broker/socket-connection.js';

const PRODUCE_KEY = 0;
/** Requests that change state (Metadata may create topics): later requests of the connection wait for them. */
const WRITES: ReadonlySet<number> = new Set([PRODUCE_KEY, 3, 8, 19, 20, 22, 37]);

/** What every connection of one listener shares. */
export interface ListenerShared {
  log: CommitLog;
  offsets: OffsetsStore;
  coordinator: GroupCoordinator | undefined;
  settings: KafkaSettings;
  logger: Logger;
  observer: KafkaObserver | undefined;
  maxFrameBytes: number;
  counters: Omit<KafkaListenerStats, 'connections'>;
  prefetch: Omit<ColdReadOptions, 'view'> | null;
  transferTimeoutMs: number;
}

/** What the writer sends for one request: a frame, nothing (acks 0), or "close the connection". */
type Outcome = { frame: EncodedFrame; body: Message } | null | 'close';

interface Pending {
  outcome: Promise<Outcome>;
  heldBytes: number;
  releases: (() => void)[];
  observed: Observed | null;
}

interface Observed extends KafkaRequestObservation {
  started: number;
}

/** True when version `version` of `spec`'s response has a top-level errorCode. */
function hasTopLevelError(spec: ApiSpec, version: number): boolean {
  return spec.response.some((f) => f.name === 'errorCode' && !f.array && inRange(f.versions, version));
}

/** Collects every non-zero errorCode of a response body (metrics). */
function errorCodesOf(v: unknown, out: number[], depth = 0): void {
  if (depth > 6 || v === null || typeof v !== 'object' || v instanceof Uint8Array || isExternal(v)) return;
  if (Array.isArray(v)) {
    for (const e of v) errorCodesOf(e, out, depth + 1);
    return;
  }
  for (const [k, x] of Object.entries(v as Message)) {
    if (k === 'errorCode' && typeof x === 'number') {
      if (x !== 0) out.push(x);
    } else if (typeof x === 'object') {
      errorCodesOf(x, out, depth + 1);
    }
  }
}

export class KafkaConnection extends SocketConnection<Pending> {
  private readonly splitter: KafkaFrameSplitter;
  private readonly clientHost: string;
  /** Frames cut but not yet dispatched (backpressure). */
  private readonly inbox: Buffer[] = [];
  private inboxBytes = 0;
  /** Settles once every state-changing request received so far has been handled (null: none pending). */
  private writes: Promise<void> | null = null;
  /** The same for state-changing requests other than Produce. */
  private adminWrites: Promise<void> | null = null;

  constructor(private readonly id: number, socket: net.Socket, private readonly shared: ListenerShared) {
    super(socket, shared, 'Kafka connection');
    this.splitter = new KafkaFrameSplitter(shared.maxFrameBytes);
    this.clientHost = `/${socket.remoteAddress ?? ''}`;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.once('end', () => {
      this.peerEnded = true;
      this.pump();
      if (!this.writing && this.inbox.length === 0) this.finish();
    });
    socket.on('error', (err) => shared.logger.info({ connection: this.remote, err: String(err) }, 'Kafka connection failed'));
    socket.once('close', () => {
      this.abort.abort();
      // Responses never sent still hold their slices: release each once its handler is done.
      for (const pending of this.queue.slice(this.head)) {
        if (pending !== undefined) void pending.outcome.then(() => this.releaseOf(pending));
      }
    });
  }

  private get pendingBytes(): number {
    return this.heldBytes + this.inboxBytes + this.socket.writableLength + this.splitter.buffered;
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    let frames: Buffer[];
    try {
      frames = this.splitter.push(chunk);
    } catch (err) {
      this.badFrame(err);
      return;
    }
    for (const f of frames) {
      this.inbox.push(f);
      this.inboxBytes += f.length;
    }
    this.pump();
  }

  protected pump(): void {
    while (!this.ending && this.inbox.length > 0 && !this.overBound()) {
      const frame = this.inbox.shift()!;
      this.inboxBytes -= frame.length;
      this.dispatch(frame);
    }
    this.applyBackpressure(!this.ending && (this.overBound() || this.socket.writableNeedDrain || this.inboxBytes >= MAX_PENDING_BYTES), this.pendingBytes);
    if (this.peerEnded && !this.writing && this.inbox.length === 0 && this.pendingRequests === 0) this.finish();
  }

  private dispatch(frame: Buffer): void {
    const { counters, logger } = this.shared;
    let decoded: ReturnType<typeof decodeRequest>;
    try {
      decoded = decodeRequest(frame);
    } catch (err) {
      this.badFrame(err);
      return;
    }
    counters.requests++;
    const { header } = decoded;
    const handler = KAFKA_HANDLERS.get(header.apiKey);
    if (!decoded.supported || handler === undefined) {
      counters.unsupported++;
      if (header.apiKey === API_VERSIONS) {
        const answer = apiVersionsAnswer(header.apiVersion, KAFKA_HANDLERS.keys());
        const body = answer.body;
        this.enqueue(Promise.resolve({ frame: encodeResponse(API_VERSIONS, answer.version, header.correlationId, body), body }), 0, [], null);
        return;
      }
      logger.warn({ connection: this.remote, apiKey: header.apiKey, apiVersion: header.apiVersion, clientId: header.clientId },
        `closing Kafka connection ${this.remote}: API ${header.apiKey} version ${header.apiVersion} is not served`);
      this.enqueue(Promise.resolve('close'), 0, [], null);
      return;
    }
    const spec = decoded.spec;
    const version = header.apiVersion;
    const releases: (() => void)[] = [];
    const ctx: KafkaHandlerContext = {
      log: this.shared.log,
      offsets: this.shared.offsets,
      coordinator: this.shared.coordinator,
      settings: this.shared.settings,
      connectionId: this.id,
      clientId: header.clientId,
      clientHost: this.clientHost,
      signal: this.abort.signal,
      logger,
      defer: (release) => releases.push(release),
    };
    const observed: Observed | null = this.shared.observer?.onRequest === undefined
      ? null
      : { api: spec.name, apiKey: spec.key, version, started: performance.now(), durationMs: 0, errorCodes: [], bytes: 0 };
    if (spec.key === 0) {
      const produced = producedBytes(decoded.body);
      counters.producedBytes += produced;
      if (observed !== null) observed.bytes = produced;
    }
    const run = (): Promise<Message | null> => {
      try {
        return Promise.resolve(handler(ctx, decoded.body, version));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const result = this.ordered(spec.key, run);
    const outcome = result.then(
      (body): Outcome => (body === null ? null : { frame: encodeResponse(spec.key, version, header.correlationId, body), body }),
      (err: unknown): Outcome => {
        const code = kafkaErrorCode(err);
        if (hasTopLevelError(spec, version)) {
          logger.info({ connection: this.remote, api: spec.name, err: String(err) }, `Kafka ${spec.name} failed`);
          const body = { errorCode: code };
          return { frame: encodeResponse(spec.key, version, header.correlationId, body), body };
        }
        logger.warn({ connection: this.remote, api: spec.name, err: String(err) }, `closing Kafka connection ${this.remote}: ${spec.name} v${version} failed`);
        return 'close';
      },
    ).catch((err: unknown): Outcome => {
      // The response could not be encoded: a broker bug; the client cannot be answered in its format.
      logger.warn({ connection: this.remote, api: spec.name, err: String(err) }, `closing Kafka connection ${this.remote}: ${spec.name} v${version} response failed to encode`);
      return 'close';
    });
    this.enqueue(outcome, frame.length, releases, observed);
  }

  /**
   * Runs a handler in the order this connection's requests need: a request that
   * changes state (WRITES) is a barrier, so every later request sees its effect, as
   * it would on Kafka, which handles one request per connection at a time. Produce
   * after Produce runs at once (the log keeps append order, and pipelined produces
   * are what makes a producer fast); reads never hold later requests back. With
   * nothing pending, the handler runs synchronously.
   */
  private ordered(key: number, run: () => Promise<Message | null>): Promise<Message | null> {
    const produce = key === PRODUCE_KEY;
    const wait = produce ? this.adminWrites : this.writes;
    const result = wait === null ? run() : wait.then(run);
    if (WRITES.has(key)) {
      const settled = result.then(() => undefined, () => undefined);
      const writes = this.writes === null ? settled : Promise.all([this.writes, settled]).then(() => undefined);
      this.writes = writes;
      void writes.then(() => {
        if (this.writes === writes) this.writes = null;
      });
      if (!produce) {
        const admin = this.adminWrites === null ? settled : Promise.all([this.adminWrites, settled]).then(() => undefined);
        this.adminWrites = admin;
        void admin.then(() => {
          if (this.adminWrites === admin) this.adminWrites = null;
        });
      }
    }
    return result;
  }

  private enqueue(outcome: Promise<Outcome>, heldBytes: number, releases: (() => void)[], observed: Observed | null): void {
    this.enqueuePending({ outcome, heldBytes, releases, observed }, outcome);
  }

  private releaseOf(pending: Pending | undefined): void {
    if (pending === undefined) return;
    const releases = pending.releases.splice(0);
    for (const r of releases) {
      try {
        r();
      } catch (err) {
        this.shared.logger.warn({ err: String(err) }, 'releasing a Kafka fetch range failed');
      }
    }
  }

  protected async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      while (this.head < this.queue.length) {
        const pending = this.queue[this.head];
        const outcome = await pending.outcome;
        try {
          if (outcome === 'close') {
            this.ending = true;
            this.shared.counters.badFrames++;
            this.abort.abort();
            this.socket.destroy();
          } else if (outcome !== null) {
            await this.send(outcome.frame);
          }
        } finally {
          this.releaseOf(pending);
        }
        if (pending.observed !== null) this.report(pending.observed, outcome);
        this.advanceQueue();
        this.pump();
      }
    } finally {
      this.writing = false;
    }
    if (this.ending || (this.peerEnded && this.inbox.length === 0)) this.finish();
  }

  private report(observed: Observed, outcome: Outcome): void {
    observed.durationMs = performance.now() - observed.started;
    if (outcome !== null && outcome !== 'close') errorCodesOf(outcome.body, observed.errorCodes);
    try {
      this.shared.observer!.onRequest!(observed);
    } catch (err) {
      this.shared.logger.warn({ err: String(err) }, 'Kafka observer failed');
    }
  }

  private async send(frame: EncodedFrame): Promise<void> {
    if (this.socket.destroyed) return;
    const counters = this.shared.counters;
    for (const part of frame.parts) {
      if (!isExternal(part)) {
        if ((part as Buffer).length > 0) this.socket.write(part as Buffer);
        continue;
      }
      const slice = part.source as LogSlice;
      try {
        await this.sendRange(slice, slice.position, part.byteLength);
      } catch (err) {
        // Half a response is on the wire: the stream has no frame boundary any more.
        this.shared.logger.info({ connection: this.remote, err: String(err) }, 'Kafka fetch transfer failed; closing the connection');
        this.socket.destroy();
        return;
      }
      counters.sendfileBytes += part.byteLength;
      counters.fetchedRecordBytes += part.byteLength;
      counters.fetchedRecords += countRecords(slice.segment.data, slice.position, slice.position + part.byteLength);
    }
    counters.responses++;
    if (this.socket.writableNeedDrain) await this.guarded(this.drained());
  }

  /** A frame that cannot be cut or decoded: the connection ends (SocketConnection). */
  private badFrame(err: unknown): void {
    const code = err instanceof CommitLogError ? err.code : ErrorCode.IO;
    const message = err instanceof Error ? err.message : String(err);
    this.closeOnBadFrame(code, message);
  }

  /** Shutdown and bad frames drop the frames cut but not dispatched. */
  protected stopTaking(): void {
    this.inbox.length = 0;
    this.inboxBytes = 0;
  }
}

/** Record bytes of a Produce request (all partitions). */
function producedBytes(body: Message): number {
  let n = 0;
  for (const t of Array.isArray(body.topicData) ? (body.topicData as Message[]) : []) {
    for (const p of Array.isArray(t.partitionData) ? (t.partitionData as Message[]) : []) {
      if (p.records instanceof Uint8Array) n += p.records.length;
    }
  }
  return n;
}

