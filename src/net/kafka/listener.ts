/**
 * The Kafka wire-protocol listener: serves the broker core (CommitLog, OffsetsStore,
 * GroupCoordinator) to unmodified Kafka clients. The same shape as the native broker
 * (broker/server.ts), with Kafka's framing and the handler table of handlers/index.ts.
 *
 * Per connection: a KafkaFrameSplitter cuts requests out of the stream (several per
 * read and one spread over many reads both happen); each is decoded and handed to its
 * handler at once, in arrival order, so requests pipeline, and gets a slot in the
 * connection's response queue. One writer sends the responses strictly in request
 * order: the encoded parts one after another, Buffers with socket.write and each
 * fetch's record ranges straight from the segment file with sendfile (zero-copy.ts,
 * cold ranges prefetched on the thread pool first). Produce with acks 0 gets no
 * response; its slot is skipped.
 *
 * Backpressure: a connection stops reading while MAX_PENDING_REQUESTS responses wait,
 * or MAX_PENDING_BYTES of memory is held for it (request frames whose handlers are not
 * done, frames not yet dispatched, unsent bytes), or the socket's write buffer is over
 * its high-water mark.
 *
 * Failure: a frame that cannot be cut or decoded (negative or oversized size,
 * malformed header or body) closes its connection with a log line: the stream has no
 * trustworthy boundary, or the client does not speak the protocol. So does a request
 * of an API or version this broker does not serve, except ApiVersions, which is
 * answered in its v0 body with UNSUPPORTED_VERSION and the list (Kafka does the
 * same: no answer in an unknown version's format exists). A handler that throws is
 * answered with its Kafka error code when the response has a top-level error code,
 * otherwise the connection closes. Nothing a client sends stops the listener or
 * disturbs its other connections.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import { countRecords } from '../../log/batch-walker.js';
import type { CommitLog, Logger } from '../../log/commit-log.js';
import type { LogSlice } from '../../log/partition-log.js';
import type { GroupCoordinator } from '../broker/coordinator.js';
import { PREFETCH_CHUNK_BYTES, PrefetchLimiter, sendFileRange, type ColdReadOptions, type TransferEvent } from '../broker/zero-copy.js';
import { isExternal, type Message } from './codec.js';
import { kafkaErrorCode } from './error-codes.js';
import { DEFAULT_MAX_KAFKA_FRAME_BYTES, KafkaFrameSplitter } from './frame.js';
import { API_VERSIONS, KAFKA_HANDLERS } from './handlers/index.js';
import type { KafkaHandlerContext, KafkaSettings } from './handlers/types.js';
import { decodeRequest, encodeResponse, type EncodedFrame } from './messages.js';
import { apiSpec, apiVersionsAnswer } from './registry.js';
import { inRange, type ApiSpec } from './schema.js';

export const DEFAULT_KAFKA_HOST = '127.0.0.1';
/** Kafka's port; what `commitlog broker` listens on unless told otherwise. */
export const DEFAULT_KAFKA_PORT = 9092;
/** The node id this broker has in Metadata, FindCoordinator and DescribeCluster. */
export const KAFKA_NODE_ID = 1;
export const MAX_PENDING_REQUESTS = 64;
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

const PRODUCE_KEY = 0;
/** Requests that change state (Metadata may create topics): later requests of the connection wait for them. */
const WRITES: ReadonlySet<number> = new Set([PRODUCE_KEY, 3, 8, 19, 20, 22, 37]);

export interface KafkaPrefetchSettings {
  chunkBytes?: number;
  concurrency?: number;
  observer?: (event: TransferEvent) => void;
}

export interface KafkaRequestObservation {
  /** The API's name ('Produce', 'Fetch', ...). */
  api: string;
  apiKey: number;
  version: number;
  /** From the decoded request to its last response byte handed to the socket (or the handler's end for acks 0). */
  durationMs: number;
  /** Every non-zero error code in the response (top level, topics, partitions), one entry each. */
  errorCodes: number[];
  /** Fetch: record bytes sent; Produce: record bytes received. */
  bytes: number;
}

export interface KafkaObserver {
  onRequest?(observation: KafkaRequestObservation): void;
  /** A connection opened (+1) or closed (-1). */
  onConnection?(delta: 1 | -1): void;
}

export interface KafkaListenerOptions {
  log: CommitLog;
  offsets: OffsetsStore;
  coordinator?: GroupCoordinator;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** The host Metadata tells clients to connect to; default the listening host (0.0.0.0/:: become 127.0.0.1). */
  advertisedHost?: string;
  /** Default: the port listened on. */
  advertisedPort?: number;
  /** Create unknown topics named in Metadata (Kafka's auto.create.topics.enable); default true. */
  autoCreateTopics?: boolean;
  /** Partitions of an auto-created topic (Kafka's num.partitions); default 1. */
  defaultPartitions?: number;
  /** Default: one derived from the log's directory (stable across restarts). */
  clusterId?: string;
  logger?: Logger;
  observer?: KafkaObserver;
  /** Largest request frame; default 100 MiB (Kafka's socket.request.max.bytes). */
  maxFrameBytes?: number;
  maxConnections?: number;
  closeTimeoutMs?: number;
  /** Cold reads off the event loop before sendfile (default on), as the native broker. */
  prefetch?: boolean | KafkaPrefetchSettings;
}

export interface KafkaListenerStats {
  connections: number;
  connectionsAccepted: number;
  requests: number;
  responses: number;
  /** Connections closed for a frame that could not be cut or decoded, or an unserved API/version. */
  badFrames: number;
  /** Requests answered UNSUPPORTED_VERSION (ApiVersions) or closed for an unserved API/version. */
  unsupported: number;
  /** Record bytes sent through sendfile. */
  sendfileBytes: number;
  /** Record bytes of the fetch responses sent (what sendfile must have moved). */
  fetchedRecordBytes: number;
  fetchedRecords: number;
  producedBytes: number;
  prefetchedBytes: number;
  coldFetches: number;
  maxPendingBytes: number;
}

export interface KafkaListener {
  readonly host: string;
  readonly port: number;
  readonly settings: Readonly<KafkaSettings>;
  close(): Promise<void>;
  stats(): KafkaListenerStats;
}

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (fields, message) => process.stderr.write(`commitlog kafka: ${message} ${JSON.stringify(fields)}\n`),
};

interface Shared {
  log: CommitLog;
  offsets: OffsetsStore;
  coordinator: GroupCoordinator | undefined;
  settings: KafkaSettings;
  logger: Logger;
  observer: KafkaObserver | undefined;
  maxFrameBytes: number;
  counters: Omit<KafkaListenerStats, 'connections'>;
  prefetch: Omit<ColdReadOptions, 'view'> | null;
}

/** A cluster id in Kafka's form (22 characters of base64url), stable for one data directory. */
export function clusterIdFor(dir: string): string {
  return createHash('sha256').update(`commitlog:${dir}`).digest().subarray(0, 16).toString('base64url');
}

function resolvePrefetch(option: KafkaListenerOptions['prefetch']): Shared['prefetch'] {
  if (option === false) return null;
  if (option !== undefined && option !== true && (option === null || typeof option !== 'object')) throw invalidArgument(`prefetch must be a boolean or an object, got ${String(option)}`);
  const settings = typeof option === 'object' ? option : {};
  const chunkBytes = settings.chunkBytes ?? PREFETCH_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw invalidArgument(`prefetch.chunkBytes must be an integer >= 1, got ${String(chunkBytes)}`);
  const poolSize = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  const concurrency = settings.concurrency ?? Math.max(1, Math.floor((Number.isSafeInteger(poolSize) && poolSize > 0 ? poolSize : 4) / 2));
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw invalidArgument(`prefetch.concurrency must be an integer >= 1, got ${String(concurrency)}`);
  return { chunkBytes, limiter: new PrefetchLimiter(concurrency), observer: settings.observer };
}

/** Starts listening; resolves once connections are accepted. A taken port rejects with the socket's EADDRINUSE error. */
export async function startKafkaListener(options: KafkaListenerOptions): Promise<KafkaListener> {
  if (options === null || typeof options !== 'object' || options.log === undefined || options.offsets === undefined) {
    throw invalidArgument('options.log and options.offsets are required');
  }
  const host = options.host ?? DEFAULT_KAFKA_HOST;
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`port must be an integer in [0, 65535], got ${port}`);
  const defaultPartitions = options.defaultPartitions ?? 1;
  if (!Number.isSafeInteger(defaultPartitions) || defaultPartitions < 1 || defaultPartitions > 10000) {
    throw invalidArgument(`defaultPartitions must be an integer in [1, 10000], got ${defaultPartitions}`);
  }
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_KAFKA_FRAME_BYTES;
  new KafkaFrameSplitter(maxFrameBytes); // validates the limit
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const logger = options.logger ?? stderrLogger;
  const settings: KafkaSettings = {
    nodeId: KAFKA_NODE_ID,
    advertisedHost: options.advertisedHost ?? advertisable(host),
    advertisedPort: options.advertisedPort ?? port,
    clusterId: options.clusterId ?? clusterIdFor(options.log.dir),
    autoCreateTopics: options.autoCreateTopics ?? true,
    defaultPartitions,
  };
  const counters: Shared['counters'] = {
    connectionsAccepted: 0, requests: 0, responses: 0, badFrames: 0, unsupported: 0, sendfileBytes: 0,
    fetchedRecordBytes: 0, fetchedRecords: 0, producedBytes: 0, prefetchedBytes: 0, coldFetches: 0, maxPendingBytes: 0,
  };
  const shared: Shared = {
    log: options.log, offsets: options.offsets, coordinator: options.coordinator, settings, logger,
    observer: options.observer, maxFrameBytes, counters, prefetch: resolvePrefetch(options.prefetch),
  };
  const connections = new Set<KafkaConnection>();
  let nextId = 1;
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    counters.connectionsAccepted++;
    const conn = new KafkaConnection(nextId++, socket, shared);
    connections.add(conn);
    notifyConnection(shared, 1);
    socket.once('close', () => {
      connections.delete(conn);
      notifyConnection(shared, -1);
    });
  });
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
  server.on('error', (err) => logger.warn({ err: String(err) }, 'Kafka listening socket failed'));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  if (options.advertisedPort === undefined) settings.advertisedPort = address.port;

  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...connections].map((c) => c.shutdown(closeTimeoutMs)));
    await stopped;
  };
  return {
    host: address.address,
    port: address.port,
    settings,
    close: () => (closing ??= close()),
    stats: () => ({ connections: connections.size, ...counters }),
  };
}

/** A wildcard listen address cannot be connected to as given: advertise loopback then. */
function advertisable(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}

function notifyConnection(shared: Shared, delta: 1 | -1): void {
  try {
    shared.observer?.onConnection?.(delta);
  } catch (err) {
    shared.logger.warn({ err: String(err) }, 'Kafka observer failed');
  }
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

class KafkaConnection {
  private readonly splitter: KafkaFrameSplitter;
  private readonly abort = new AbortController();
  private readonly remote: string;
  private readonly clientHost: string;
  /** Frames cut but not yet dispatched (backpressure). */
  private readonly inbox: Buffer[] = [];
  private inboxBytes = 0;
  private readonly queue: Pending[] = [];
  private head = 0;
  /** Settles once every state-changing request received so far has been handled (null: none pending). */
  private writes: Promise<void> | null = null;
  /** The same for state-changing requests other than Produce. */
  private adminWrites: Promise<void> | null = null;
  private heldBytes = 0;
  private writing = false;
  private paused = false;
  private ending = false;
  private peerEnded = false;
  private finished = false;
  private readonly closed: Promise<void>;

  constructor(private readonly id: number, private readonly socket: net.Socket, private readonly shared: Shared) {
    this.splitter = new KafkaFrameSplitter(shared.maxFrameBytes);
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.clientHost = `/${socket.remoteAddress ?? ''}`;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
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

  private get pendingRequests(): number {
    return this.queue.length - this.head;
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

  private overBound(): boolean {
    return this.pendingRequests >= MAX_PENDING_REQUESTS || this.heldBytes + this.socket.writableLength >= MAX_PENDING_BYTES;
  }

  private pump(): void {
    while (!this.ending && this.inbox.length > 0 && !this.overBound()) {
      const frame = this.inbox.shift()!;
      this.inboxBytes -= frame.length;
      this.dispatch(frame);
    }
    const counters = this.shared.counters;
    counters.maxPendingBytes = Math.max(counters.maxPendingBytes, this.pendingBytes);
    const stop = !this.ending && (this.overBound() || this.socket.writableNeedDrain || this.inboxBytes >= MAX_PENDING_BYTES);
    if (stop && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!stop && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
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
    const pending: Pending = { outcome, heldBytes, releases, observed };
    this.heldBytes += heldBytes;
    if (heldBytes > 0) {
      void outcome.finally(() => {
        this.heldBytes -= pending.heldBytes;
        pending.heldBytes = 0;
        this.pump();
      });
    }
    this.queue.push(pending);
    if (!this.writing) void this.writeLoop();
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

  private async writeLoop(): Promise<void> {
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
        await sendFileRange(this.socket, slice.fd, slice.position, part.byteLength, { cold: this.coldRead(slice) });
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
    if (this.socket.writableNeedDrain) await this.drained();
  }

  private coldRead(slice: LogSlice): ColdReadOptions | undefined {
    const settings = this.shared.prefetch;
    if (settings === null) return undefined;
    const counters = this.shared.counters;
    let counted = false;
    return {
      ...settings,
      view: slice.segment.data,
      observer: (event) => {
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
    this.pump();
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

  private badFrame(err: unknown): void {
    if (this.ending && this.socket.destroyed) return;
    this.shared.counters.badFrames++;
    const code = err instanceof CommitLogError ? err.code : ErrorCode.IO;
    const message = err instanceof Error ? err.message : String(err);
    this.shared.logger.warn({ connection: this.remote, code }, `closing Kafka connection ${this.remote}: ${message}`);
    this.ending = true;
    this.inbox.length = 0;
    this.inboxBytes = 0;
    this.abort.abort();
    this.socket.destroy();
  }

  async shutdown(timeoutMs: number): Promise<void> {
    this.ending = true;
    this.abort.abort();
    this.inbox.length = 0;
    this.inboxBytes = 0;
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

  private finish(): void {
    if (this.finished || this.socket.destroyed) return;
    this.finished = true;
    this.socket.end();
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

