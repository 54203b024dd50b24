/**
 * Consumer: reads one topic's partitions from a broker as an async iterator of
 * records, in offset order per partition.
 *
 *   for await (const record of consumer) { ... }
 *
 * Fetching: each partition is fetched over its own connection, because a connection
 * answers in request order and a long poll on an idle partition would otherwise hold
 * back the others' responses. A partition has at most one fetch in flight and at most
 * two fetched chunks buffered: the next fetch is sent as soon as a response arrives
 * (while the user works through it) and pauses only while two chunks wait, so memory
 * stays near 2 x maxBytes per partition. A fetch response is whole batches, the first
 * of which may start before the offset asked for; its records below that offset are
 * skipped. Keys, values and header values are views of the response's buffer.
 *
 * Positions and commits (Kafka's poll semantics): a partition's position is the offset
 * after the last record the iterator handed out. `commit()` commits every partition's
 * position for the group. Auto-commit (autoCommitIntervalMs) commits only records the
 * user is done with, i.e. those handed out before the latest next() call or before the
 * loop was left, so a crash re-delivers rather than loses (at least once). On start,
 * a partition with a committed offset for the group resumes there; the others start
 * at `from`.
 *
 * Errors: a lost fetch connection is reconnected with backoff (`retries` consecutive
 * failures per partition, default 5). Any other failure (ERR_OFFSET_OUT_OF_RANGE,
 * ERR_UNKNOWN_TOPIC, a corrupt batch) stops the consumer: the pending and every later
 * next() reject with it. Leaving a for-await loop (break, return, throw) does not
 * close the consumer: iterate again to continue, call close() to stop.
 *
 * Concurrency: single JS thread; one iteration at a time is the intended use (two
 * concurrent iterations share the records between them).
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import { BATCH_HEADER_BYTES, decodeBatches, readBatchHeader } from '../log/batch.js';
import type { LogRecord } from '../log/record.js';
import {
  backoffMs,
  intOption,
  isRetriable,
  parseBroker,
  type ClientOptions,
  type ConsumerRecord,
} from './client-types.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js';
import type { PartitionMetadata } from './messages.js';

/** Where partitions without a committed offset start: an offset, the first record at or after a time, or either end. */
export type ConsumerStart = 'earliest' | 'latest' | number | Date;

export interface ConsumerOptions extends ClientOptions {
  topic: string;
  /** Partitions to read; default all of the topic's. */
  partitions?: number[];
  /** Default 'earliest' (as CommitLog.tail). */
  from?: ConsumerStart;
  /** Consumer group whose committed offsets are resumed from and committed to. */
  group?: string;
  /** Commit consumed positions this often (needs group); default 0: only commit() commits. */
  autoCommitIntervalMs?: number;
  /** Soft cap of one fetch response's batches; default 1 MiB. */
  maxBytes?: number;
  /** How long a fetch at the end of a partition waits for new records; default 500. */
  maxWaitMs?: number;
  /** A fetch returns early once this many bytes are there; default 1. */
  minBytes?: number;
  /** Reconnects per partition after consecutive connection failures; default 5. */
  retries?: number;
  /** Base of the exponential backoff between reconnects; default 100. */
  retryBackoffMs?: number;
}

interface PartitionState {
  partition: number;
  conn: Connection | undefined;
  connecting: boolean;
  /** Next offset to fetch. */
  fetchOffset: number;
  /** Next offset to hand out (after the last record yielded). */
  position: number;
  /** Position as of the user's latest next()/return(): what auto-commit commits. */
  processed: number;
  /** Last offset committed by this consumer; -1 none. */
  committed: number;
  /** Bumped by seek(): responses and chunks of an older epoch are dropped. */
  epoch: number;
  inFlight: boolean;
  /** Chunks of the current epoch in the queue. */
  buffered: number;
  /** Consecutive connection failures. */
  failures: number;
  retryTimer: NodeJS.Timeout | undefined;
}

interface Chunk {
  state: PartitionState;
  epoch: number;
  records: LogRecord[];
  index: number;
}

interface Waiter {
  resolve: (result: IteratorResult<ConsumerRecord>) => void;
  reject: (err: unknown) => void;
}

/** Fetched chunks a partition may hold before its next fetch waits. */
const MAX_BUFFERED_CHUNKS = 2;
const FRAME_HEADROOM_BYTES = 4096;
const DONE: IteratorResult<ConsumerRecord> = Object.freeze({ done: true, value: undefined });

export class Consumer implements AsyncIterable<ConsumerRecord> {
  readonly topic: string;
  readonly group: string | undefined;
  private readonly connectionOptions: ConnectionOptions;
  private readonly wantedPartitions: number[] | undefined;
  private readonly from: ConsumerStart;
  private readonly autoCommitIntervalMs: number;
  private readonly maxBytes: number;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly retries: number;
  private readonly retryBackoffMs: number;
  private readonly fetchTimeoutMs: number;

  private readonly states = new Map<number, PartitionState>();
  private readonly pendingSeeks = new Map<number, number>();
  private chunks: Chunk[] = [];
  private chunkHead = 0;
  private waiters: Waiter[] = [];
  /** The partition of the record handed out last, until the user asks for the next. */
  private lastYielded: PartitionState | undefined;
  private control: Connection | undefined;
  private controlConnecting: Promise<Connection> | undefined;
  private starting: Promise<void> | undefined;
  private started = false;
  private failure: unknown;
  private closed = false;
  private closing: Promise<void> | undefined;
  private autoCommitTimer: NodeJS.Timeout | undefined;
  private commitChain: Promise<unknown> = Promise.resolve();

  constructor(options: ConsumerOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options must be an object');
    const { host, port } = parseBroker(options.broker);
    if (typeof options.topic !== 'string' || options.topic.length === 0) throw invalidArgument('topic must be a non-empty string');
    this.topic = options.topic;
    if (options.group !== undefined && (typeof options.group !== 'string' || options.group.length === 0)) {
      throw invalidArgument('group must be a non-empty string');
    }
    this.group = options.group;
    if (options.partitions !== undefined) {
      if (!Array.isArray(options.partitions) || options.partitions.length === 0 || !options.partitions.every((p) => Number.isInteger(p) && p >= 0)) {
        throw invalidArgument('partitions must be a non-empty list of non-negative integers');
      }
      this.wantedPartitions = [...new Set(options.partitions)].sort((a, b) => a - b);
    }
    const from = options.from ?? 'earliest';
    const validFrom = from === 'earliest' || from === 'latest' || (typeof from === 'number' && Number.isSafeInteger(from) && from >= 0)
      || (from instanceof Date && Number.isFinite(from.getTime()));
    if (!validFrom) throw invalidArgument(`from must be 'earliest', 'latest', an offset or a Date, got ${String(from)}`);
    this.from = from;
    this.autoCommitIntervalMs = intOption('autoCommitIntervalMs', options.autoCommitIntervalMs, 0);
    if (this.autoCommitIntervalMs > 0 && this.group === undefined) throw invalidArgument('autoCommitIntervalMs needs a group');
    const maxFrameBytes = intOption('maxFrameBytes', options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 64 * 1024, 0xffffffff);
    this.maxBytes = intOption('maxBytes', options.maxBytes, 1024 * 1024, 1, Math.min(maxFrameBytes - FRAME_HEADROOM_BYTES, 0xffffffff));
    this.maxWaitMs = intOption('maxWaitMs', options.maxWaitMs, 500, 0, 0xffffffff);
    this.minBytes = intOption('minBytes', options.minBytes, 1, 0, 0xffffffff);
    this.retries = intOption('retries', options.retries, 5);
    this.retryBackoffMs = intOption('retryBackoffMs', options.retryBackoffMs, 100, 1);
    const requestTimeoutMs = intOption('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1);
    this.fetchTimeoutMs = requestTimeoutMs + this.maxWaitMs;
    this.connectionOptions = {
      host,
      port,
      clientId: options.clientId,
      connectTimeoutMs: options.connectTimeoutMs,
      requestTimeoutMs,
      maxFrameBytes,
    };
  }

  /**
   * Resolves the partitions and their start offsets (committed offset of the group,
   * else `from`) and starts fetching. Iterating calls it; calling it first pins
   * 'latest' and timestamps to now. Idempotent.
   */
  connect(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    this.starting ??= this.start().catch((err: unknown) => {
      this.fail(err);
      throw err;
    });
    return this.starting;
  }

  /** The partitions being read (after connect()). */
  get partitions(): number[] {
    return [...this.states.keys()];
  }

  /** The next offset the iterator will hand out for `partition` (after connect()). */
  position(partition: number): number {
    return this.stateOf(partition).position;
  }

  /**
   * Moves `partition` to `offset`: records already fetched for it are dropped and the
   * next one handed out for it is `offset`'s. Before connect(), overrides the start.
   */
  seek(partition: number, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument(`offset must be a non-negative integer, got ${String(offset)}`);
    if (!this.started) {
      if (!Number.isInteger(partition) || partition < 0) throw invalidArgument(`partition must be a non-negative integer, got ${String(partition)}`);
      this.pendingSeeks.set(partition, offset);
      return;
    }
    const s = this.stateOf(partition);
    s.epoch++;
    s.buffered = 0;
    s.fetchOffset = s.position = s.processed = offset;
    if (this.lastYielded === s) this.lastYielded = undefined;
    if (s.retryTimer === undefined) this.maybeFetch(s);
  }

  /** Commits every partition's position (the offset after the last record handed out) for the group. */
  async commit(): Promise<void> {
    if (this.group === undefined) throw invalidArgument('commit() needs a consumer group (options.group)');
    await this.connect();
    await this.commitPositions(false);
  }

  /**
   * Stops fetching and closes the connections; with auto-commit, first commits what
   * the user is done with (rejecting if that commit fails, after closing anyway).
   * A pending next() resolves as done.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  [Symbol.asyncIterator](): AsyncIterator<ConsumerRecord> {
    return {
      next: () => this.next(),
      return: () => {
        this.markProcessed();
        return Promise.resolve(DONE);
      },
    };
  }

  // ---- iteration ------------------------------------------------------------------

  private next(): Promise<IteratorResult<ConsumerRecord>> {
    this.markProcessed();
    if (this.waiters.length === 0) {
      const record = this.take();
      if (record !== undefined) return Promise.resolve({ done: false, value: record });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.resolve(DONE);
    if (!this.started) this.connect().catch(() => undefined); // a failure reaches the waiter through fail()
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private markProcessed(): void {
    const s = this.lastYielded;
    if (s !== undefined) {
      s.processed = s.position;
      this.lastYielded = undefined;
    }
  }

  /** The next buffered record, or undefined. */
  private take(): ConsumerRecord | undefined {
    while (this.chunkHead < this.chunks.length) {
      const chunk = this.chunks[this.chunkHead]!;
      const s = chunk.state;
      if (chunk.epoch === s.epoch && chunk.index < chunk.records.length) {
        const r = chunk.records[chunk.index++]!;
        s.position = r.offset + 1;
        this.lastYielded = s;
        if (chunk.index === chunk.records.length) this.dropChunk();
        return { topic: this.topic, partition: s.partition, offset: r.offset, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp };
      }
      this.dropChunk();
    }
    return undefined;
  }

  private dropChunk(): void {
    const chunk = this.chunks[this.chunkHead]!;
    this.chunks[this.chunkHead] = undefined as unknown as Chunk;
    this.chunkHead++;
    if (this.chunkHead === this.chunks.length) {
      this.chunks = [];
      this.chunkHead = 0;
    }
    const s = chunk.state;
    if (chunk.epoch === s.epoch) {
      s.buffered--;
      this.maybeFetch(s);
    }
  }

  /** Hands buffered records to waiting next() calls. */
  private wake(): void {
    while (this.waiters.length > 0) {
      const record = this.take();
      if (record === undefined) return;
      this.waiters.shift()!.resolve({ done: false, value: record });
    }
  }

  // ---- start ----------------------------------------------------------------------

  private async start(): Promise<void> {
    const conn = await this.controlConnection();
    const metadata = await conn.request({ case: 'metadata', value: { topics: [this.topic] } });
    const body = metadata.header.body;
    const topicMeta = body?.case === 'metadata' ? body.value.topics.find((t) => t.name === this.topic) : undefined;
    if (topicMeta === undefined || topicMeta.partitions.length === 0) {
      throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `unknown topic ${this.topic}`, { topic: this.topic });
    }
    const byPartition = new Map<number, PartitionMetadata>(topicMeta.partitions.map((p) => [p.partition, p]));
    const partitions = this.wantedPartitions ?? [...byPartition.keys()].sort((a, b) => a - b);
    for (const p of partitions) {
      if (!byPartition.has(p)) {
        throw new CommitLogError(ErrorCode.UNKNOWN_PARTITION, `topic ${this.topic} has no partition ${p} (it has ${byPartition.size})`, { topic: this.topic, partition: p });
      }
    }
    for (const p of this.pendingSeeks.keys()) {
      if (!partitions.includes(p)) throw invalidArgument(`seek(${p}, ...) before connect(): the consumer of ${this.topic} reads partitions ${partitions.join(', ')}`);
    }
    const committed = new Map<number, number>();
    if (this.group !== undefined) {
      const response = await conn.request({ case: 'offsetFetch', value: { group: this.group, topic: this.topic, partitions } });
      const fetched = response.header.body;
      if (fetched?.case === 'offsetFetch') for (const c of fetched.value.offsets) if (c.offset >= 0) committed.set(c.partition, c.offset);
    }
    const offsets = await Promise.all(partitions.map(async (p) => {
      const seek = this.pendingSeeks.get(p);
      if (seek !== undefined) return seek;
      const c = committed.get(p);
      if (c !== undefined) return c;
      return this.startOffset(conn, byPartition.get(p)!);
    }));
    if (this.closed) return;
    partitions.forEach((partition, i) => {
      const offset = offsets[i]!;
      this.states.set(partition, {
        partition, conn: undefined, connecting: false, fetchOffset: offset, position: offset, processed: offset,
        committed: committed.get(partition) ?? -1, epoch: 0, inFlight: false, buffered: 0, failures: 0, retryTimer: undefined,
      });
    });
    this.pendingSeeks.clear();
    this.started = true;
    if (this.autoCommitIntervalMs > 0) {
      this.autoCommitTimer = setInterval(() => {
        // A failed auto-commit is retried at the next tick; close() reports its own.
        this.commitPositions(true).catch(() => undefined);
      }, this.autoCommitIntervalMs);
      this.autoCommitTimer.unref();
    }
    for (const s of this.states.values()) this.maybeFetch(s);
  }

  private async startOffset(conn: Connection, meta: PartitionMetadata): Promise<number> {
    const from = this.from;
    if (from === 'earliest') return meta.earliestOffset;
    if (from === 'latest') return meta.latestOffset;
    if (typeof from === 'number') return from;
    const response = await conn.request({
      case: 'listOffsets', value: { topic: this.topic, partition: meta.partition, spec: 'TIMESTAMP', timestamp: from.getTime() },
    });
    const body = response.header.body;
    const offset = body?.case === 'listOffsets' ? body.value.offset : -1;
    // No record at or after the time: start at the end, where the next one will be.
    return offset >= 0 ? offset : meta.latestOffset;
  }

  // ---- fetching -------------------------------------------------------------------

  private maybeFetch(s: PartitionState): void {
    if (this.closed || this.failure !== undefined || !this.started) return;
    if (s.inFlight || s.connecting || s.retryTimer !== undefined || s.buffered >= MAX_BUFFERED_CHUNKS) return;
    const conn = s.conn;
    if (conn === undefined || !conn.isOpen) {
      this.connectPartition(s);
      return;
    }
    s.inFlight = true;
    const epoch = s.epoch;
    const offset = s.fetchOffset;
    conn.request(
      {
        case: 'fetch',
        value: { topic: this.topic, partition: s.partition, offset, maxBytes: this.maxBytes, maxWaitMs: this.maxWaitMs, minBytes: this.minBytes },
      },
      undefined,
      this.fetchTimeoutMs,
    ).then(
      (response) => this.onFetched(s, epoch, offset, response.payload),
      (err: unknown) => this.onFetchFailed(s, epoch, err),
    );
  }

  private onFetched(s: PartitionState, epoch: number, offset: number, payload: Buffer): void {
    s.inFlight = false;
    s.failures = 0;
    if (this.closed || this.failure !== undefined) return;
    if (epoch === s.epoch && payload.length > 0) {
      let records: LogRecord[];
      try {
        records = decodeBatches(payload, 0, payload.length, offset);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (records.length > 0) {
        s.fetchOffset = records[records.length - 1]!.offset + 1;
        s.buffered++;
        this.chunks.push({ state: s, epoch, records, index: 0 });
        this.wake();
      } else {
        // Only records below `offset` came back (batches overlap it): move past them.
        s.fetchOffset = Math.max(offset, nextOffsetAfter(payload));
      }
    }
    this.maybeFetch(s);
  }

  private onFetchFailed(s: PartitionState, epoch: number, err: unknown): void {
    s.inFlight = false;
    if (this.closed || this.failure !== undefined) return;
    if (isRetriable(err)) {
      this.retryLater(s, err);
      return;
    }
    // An answer about an offset seek() has since moved away from.
    if (epoch !== s.epoch) {
      this.maybeFetch(s);
      return;
    }
    this.fail(err);
  }

  private connectPartition(s: PartitionState): void {
    s.connecting = true;
    Connection.connect(this.connectionOptions).then(
      (conn) => {
        s.connecting = false;
        if (this.closed) {
          conn.destroy();
          return;
        }
        s.conn = conn;
        this.maybeFetch(s);
      },
      (err: unknown) => {
        s.connecting = false;
        if (this.closed || this.failure !== undefined) return;
        if (isRetriable(err)) this.retryLater(s, err);
        else this.fail(err);
      },
    );
  }

  private retryLater(s: PartitionState, err: unknown): void {
    s.conn?.destroy();
    s.conn = undefined;
    if (s.failures >= this.retries) {
      this.fail(err);
      return;
    }
    const delay = backoffMs(s.failures, this.retryBackoffMs);
    s.failures++;
    s.retryTimer = setTimeout(() => {
      s.retryTimer = undefined;
      this.maybeFetch(s);
    }, delay);
  }

  // ---- commits, failure, close ------------------------------------------------------

  /**
   * commit(): every partition's handed-out position. Auto-commit: the processed
   * positions of the partitions that moved since this consumer last committed them.
   */
  private commitPositions(auto: boolean): Promise<void> {
    const run = async (): Promise<void> => {
      const group = this.group!;
      const moved = [...this.states.values()]
        .map((s) => ({ s, offset: auto ? s.processed : s.position }))
        .filter(({ s, offset }) => !auto || offset !== s.committed);
      if (moved.length === 0) return;
      const conn = await this.controlConnection();
      await conn.request({
        case: 'offsetCommit',
        value: { group, offsets: moved.map(({ s, offset }) => ({ topic: this.topic, partition: s.partition, offset, metadata: '' })) },
      });
      for (const { s, offset } of moved) s.committed = offset;
    };
    // One commit at a time, in call order: a later position never loses to an earlier one.
    const result = this.commitChain.then(run, run);
    this.commitChain = result.catch(() => undefined);
    return result;
  }

  /** The connection for metadata, offsets and commits, reconnecting with backoff. */
  private controlConnection(): Promise<Connection> {
    if (this.control !== undefined && this.control.isOpen) return Promise.resolve(this.control);
    this.controlConnecting ??= (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const conn = await Connection.connect(this.connectionOptions);
          this.control = conn;
          return conn;
        } catch (err) {
          if (attempt >= this.retries || !isRetriable(err)) throw err;
          await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt, this.retryBackoffMs)));
        }
      }
    })().finally(() => {
      this.controlConnecting = undefined;
    });
    return this.controlConnecting;
  }

  private stateOf(partition: number): PartitionState {
    const s = this.states.get(partition);
    if (s === undefined) {
      const detail = this.started ? `it reads ${[...this.states.keys()].join(', ')}` : 'call connect() first';
      throw invalidArgument(`consumer of ${this.topic} has no partition ${String(partition)}: ${detail}`);
    }
    return s;
  }

  /** Stops the consumer for good: every waiting and later next() rejects with err. */
  private fail(err: unknown): void {
    if (this.failure !== undefined || this.closed) return;
    this.failure = err;
    this.stopFetching();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private stopFetching(): void {
    clearInterval(this.autoCommitTimer);
    this.autoCommitTimer = undefined;
    for (const s of this.states.values()) {
      clearTimeout(s.retryTimer);
      s.retryTimer = undefined;
      s.conn?.destroy();
      s.conn = undefined;
    }
  }

  private async shutdown(): Promise<void> {
    let commitError: unknown;
    if (this.started && this.autoCommitIntervalMs > 0 && this.failure === undefined) {
      try {
        await this.commitPositions(true);
      } catch (err) {
        commitError = err;
      }
    }
    this.closed = true;
    this.stopFetching();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(DONE);
    this.chunks = [];
    this.chunkHead = 0;
    await this.starting?.catch(() => undefined);
    await this.controlConnecting?.catch(() => undefined);
    await this.control?.close();
    this.stopFetching(); // connections a start still in progress opened
    if (commitError !== undefined) throw commitError;
  }

  private closedError(): CommitLogError {
    return new CommitLogError(ErrorCode.LOG_CLOSED, `consumer of ${this.topic} is closed`, { topic: this.topic });
  }
}

/** One past the last offset of the batches in payload. */
function nextOffsetAfter(payload: Buffer): number {
  let next = 0;
  for (let p = 0; payload.length - p >= BATCH_HEADER_BYTES;) {
    const h = readBatchHeader(payload, p);
    if (h.batchLength <= 0) break;
    next = h.baseOffset + h.lastOffsetDelta + 1;
    p += h.size;
  }
  return next;
}
