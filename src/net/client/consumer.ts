/**
 * Consumer: reads one topic's partitions from a broker as an async iterator of
 * records, in offset order per partition.
 *
 *   for await (const record of consumer) { ... }
 *
 * Fetching: one connection to the broker carries everything (metadata, offsets,
 * commits and the fetches): one MultiFetch at a time names every partition that may
 * fetch, and the broker answers it as soon as any of them has data (or after
 * maxWaitMs). A partition has at most two fetched chunks buffered: it joins the next
 * MultiFetch as soon as a response arrives (while the user works through it) and is
 * left out only while two chunks wait, so memory stays near 2 x maxBytes per
 * partition (and one response is at most fetchMaxBytes). A request other than a fetch
 * (a commit) may wait behind the long poll in flight, up to maxWaitMs. A fetch response is whole batches, the first
 * of which may start before the offset asked for; its records below that offset are
 * skipped. Keys, values and header values are views of the response's buffer. The
 * fetching itself (connections, checks, resets, reconnects) is consumer-fetcher.ts's;
 * this module owns the queue of what is handed out, positions, start and commits.
 *
 * Positions and commits (Kafka's poll semantics): a partition's position is the offset
 * after the last record the iterator handed out. `commit()` commits every partition's
 * position for the group. Auto-commit (autoCommitIntervalMs) commits only records the
 * user is done with, i.e. those handed out before the latest next() call or before the
 * loop was left, so a crash re-delivers rather than loses (at least once). On start,
 * a partition with a committed offset for the group resumes there; the others start
 * at `from`.
 *
 * Checks (checkCrcs, default true, as Kafka's check.crcs): every fetched batch's
 * frame, CRC32C (one native call per batch) and base offset are checked before its
 * records are handed out (fetched-batches.ts).
 *
 * Out of range (a fetch answered ERR_OFFSET_OUT_OF_RANGE: retention deleted the
 * position, or a committed offset lies past the log end after a recovery): with
 * autoOffsetReset 'earliest' (default) or 'latest' the partition continues at the log
 * start or end, as the MultiFetch answer reports them; every reset is logged (logger.warn) and
 * passed to onOffsetReset. Records fetched before it are still handed out first.
 * With 'none' the partition fails with ERR_OFFSET_OUT_OF_RANGE.
 *
 * Failures are per partition. A lost connection (refused, reset, timed out) or a
 * broker shutting down (ERR_LOG_CLOSED) is retried: the consumer reconnects with
 * capped jittered exponential backoff (retryBackoffMs doubling up to
 * retryBackoffMaxMs) until it fetches again, or until reconnectTimeoutMs (default
 * 120 s) of failing in a row, or `retries` attempts (default unlimited), have passed.
 * It then resumes at its next offset: nothing handed out is fetched again, nothing is
 * skipped. Anything else (a corrupt batch, out of range with 'none', the topic
 * deleted, reconnecting given up) fails that partition's stream: once the records
 * fetched before the failure have been handed out, one next() rejects with a
 * CommitLogError naming topic, partition and offset (the first offset not handed
 * out). The other partitions carry on: iterate again to go on reading them. The failed
 * partition fetches nothing more until seek() moves it; while every partition has
 * failed, each next() rejects with the error of the lowest-numbered one. A failure
 * before any partition is read (connect(): unknown topic, broker unreachable for
 * reconnectTimeoutMs) fails the whole consumer: every next() rejects with it. Leaving
 * a for-await loop (break, return, throw) does not close the consumer: iterate again
 * to continue, call close() to stop.
 *
 * Concurrency: single JS thread; one iteration at a time is the intended use (two
 * concurrent iterations share the records between them).
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import type { Logger } from '../../log/commit-log.js';
import type { LogRecord } from '../../log/record.js';
import {
  backoffMs,
  intOption,
  isRetriable,
  parseBroker,
  retryPolicy,
  sleep,
  type ClientOptions,
  type ConsumerRecord,
  type RetryOptions,
  type RetryPolicy,
} from './client-types.js';
import { Connection, type ConnectionOptions, type Response } from './connection.js';
import { Fetcher, type AutoOffsetReset, type Fetched, type OffsetReset, type PartitionState } from './consumer-fetcher.js';
import { ConsumerGroup, resolveGroupOptions, type GroupOptions } from './consumer-group.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frame.js';
import type { PartitionMetadata, RequestBody } from '../protocol/messages.js';

export type { AutoOffsetReset, OffsetReset } from './consumer-fetcher.js';
export type { GroupOptions } from './consumer-group.js';

/** Where partitions without a committed offset start: an offset, the first record at or after a time, or either end. */
export type ConsumerStart = 'earliest' | 'latest' | number | Date;

export interface ConsumerOptions extends ClientOptions, RetryOptions, GroupOptions {
  topic: string;
  /**
   * Partitions to read (Kafka's assign()); default all of the topic's, or, with
   * `group`, those the group assigns this member (Kafka's subscribe(); consumer-group.ts).
   */
  partitions?: number[];
  /** Default 'earliest' (as CommitLog.tail). */
  from?: ConsumerStart;
  /**
   * Consumer group whose committed offsets are resumed from and committed to. Without
   * `partitions` the consumer joins the group and reads only the partitions assigned
   * to it, which move between the group's members as they join and leave.
   */
  group?: string;
  /** Commit consumed positions this often (needs group); default 0: only commit() commits. */
  autoCommitIntervalMs?: number;
  /** Soft cap of one partition's batches in a fetch response; default 1 MiB. */
  maxBytes?: number;
  /**
   * Soft cap of one whole fetch response (all partitions; Kafka's fetch.max.bytes);
   * default 4 MiB or maxFrameBytes less 256 KiB, whichever is smaller (measured: a
   * 16-partition catch-up ran slower with 8 and 16 MiB responses, which are received
   * and decoded whole before their first record is handed out; bench/multi-fetch.ts).
   * The first partition with data always gets at least one batch.
   */
  fetchMaxBytes?: number;
  /** How long a fetch at the end of a partition waits for new records; default 500. */
  maxWaitMs?: number;
  /** A fetch returns early once this many bytes are there; default 1. */
  minBytes?: number;
  /** Check every fetched batch's CRC32C (Kafka's check.crcs); default true. Framing and decoding are checked either way. */
  checkCrcs?: boolean;
  /**
   * A position out of range continues at the log start ('earliest', default: skips
   * only what is gone), at the log end ('latest': skips everything stored), or fails
   * the partition ('none'). Where partitions without a committed offset start is `from`.
   */
  autoOffsetReset?: AutoOffsetReset;
  /** Called with every reset autoOffsetReset makes (it is logged as well). */
  onOffsetReset?: (reset: OffsetReset) => void;
  /** Where resets are reported (warn); default: a line on stderr. */
  logger?: Logger;
  /**
   * How long a partition, or connect(), keeps retrying a broker that cannot be reached
   * (or is shutting down) before it fails with the last error. Default 120000.
   */
  reconnectTimeoutMs?: number;
  /** Attempts after consecutive retriable failures, per partition; default unlimited: reconnectTimeoutMs bounds them. */
  retries?: number;
}


/**
 * Fetched records waiting to be handed out, in the order they arrived; or a marker
 * that takes effect at its place in that order: the partition's failure (next()
 * rejects with it) or a reset (its position jumps).
 */
interface Chunk {
  state: PartitionState;
  epoch: number;
  records: LogRecord[];
  index: number;
  error?: CommitLogError;
  jumpTo?: number;
}

interface Waiter {
  resolve: (result: IteratorResult<ConsumerRecord>) => void;
  reject: (err: unknown) => void;
}

/** Marks a partition given up in a rebalance: the fetcher leaves it alone (it is no longer in `states`). */
const REVOKED = new CommitLogError(ErrorCode.INVALID_ARGUMENT, 'partition revoked from this group member');

/** Fetched chunks a partition may hold before its next fetch waits. */
const MAX_BUFFERED_CHUNKS = 2;
const FRAME_HEADROOM_BYTES = 4096;
/** Room for a MultiFetch response's header (its per-partition results) within maxFrameBytes. */
const MULTI_FETCH_HEADROOM_BYTES = 256 * 1024;
const DONE: IteratorResult<ConsumerRecord> = Object.freeze({ done: true, value: undefined });
const NO_RECORDS: LogRecord[] = [];

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (fields, message) => process.stderr.write(`commitlog consumer: ${message} ${JSON.stringify(fields)}\n`),
};

export class Consumer implements AsyncIterable<ConsumerRecord> {
  readonly topic: string;
  readonly group: string | undefined;
  private readonly connectionOptions: ConnectionOptions;
  private readonly wantedPartitions: number[] | undefined;
  private readonly from: ConsumerStart;
  private readonly autoCommitIntervalMs: number;
  private readonly retries: number;
  private readonly retry: RetryPolicy;
  private readonly reconnectTimeoutMs: number;
  private readonly fetcher: Fetcher;

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
  /** Group membership (group without partitions); undefined otherwise. */
  private membership: ConsumerGroup | undefined;
  private readonly groupOptions: GroupOptions;
  private readonly logger: Logger;

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
    const maxBytes = intOption('maxBytes', options.maxBytes, 1024 * 1024, 1, Math.min(maxFrameBytes - FRAME_HEADROOM_BYTES, 0xffffffff));
    const maxWaitMs = intOption('maxWaitMs', options.maxWaitMs, 500, 0, 0xffffffff);
    const minBytes = intOption('minBytes', options.minBytes, 1, 0, 0xffffffff);
    const fetchMaxBytes = intOption('fetchMaxBytes', options.fetchMaxBytes, Math.min(4 * 1024 * 1024, maxFrameBytes - MULTI_FETCH_HEADROOM_BYTES),
      1, Math.min(maxFrameBytes - MULTI_FETCH_HEADROOM_BYTES, 0xffffffff));
    this.retries = intOption('retries', options.retries, Number.MAX_SAFE_INTEGER);
    this.retry = retryPolicy(options);
    this.reconnectTimeoutMs = intOption('reconnectTimeoutMs', options.reconnectTimeoutMs, 120_000, 0);
    if (options.checkCrcs !== undefined && typeof options.checkCrcs !== 'boolean') throw invalidArgument(`checkCrcs must be a boolean, got ${String(options.checkCrcs)}`);
    const autoOffsetReset: AutoOffsetReset = options.autoOffsetReset ?? 'earliest';
    if (autoOffsetReset !== 'earliest' && autoOffsetReset !== 'latest' && autoOffsetReset !== 'none') {
      throw invalidArgument(`autoOffsetReset must be 'earliest', 'latest' or 'none', got ${String(autoOffsetReset)}`);
    }
    if (options.onOffsetReset !== undefined && typeof options.onOffsetReset !== 'function') throw invalidArgument('onOffsetReset must be a function');
    const requestTimeoutMs = intOption('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1);
    this.connectionOptions = {
      host,
      port,
      clientId: options.clientId,
      connectTimeoutMs: options.connectTimeoutMs,
      requestTimeoutMs,
      maxFrameBytes,
    };
    this.logger = options.logger ?? stderrLogger;
    this.groupOptions = {
      sessionTimeoutMs: options.sessionTimeoutMs, rebalanceTimeoutMs: options.rebalanceTimeoutMs, heartbeatIntervalMs: options.heartbeatIntervalMs,
      groupInstanceId: options.groupInstanceId, assignors: options.assignors, onAssigned: options.onAssigned, onRevoked: options.onRevoked,
    };
    if (this.group === undefined || this.wantedPartitions !== undefined) {
      for (const name of Object.keys(this.groupOptions) as (keyof GroupOptions)[]) {
        if (this.groupOptions[name] !== undefined) throw invalidArgument(`${name} needs group membership: options.group without options.partitions`);
      }
    } else {
      resolveGroupOptions(this.groupOptions);
    }
    // The fetcher's view of this consumer: a getter cannot close over `this` otherwise.
    const consumer = this;
    this.fetcher = new Fetcher(
      {
        topic: this.topic,
        maxBytes,
        fetchMaxBytes,
        maxWaitMs,
        minBytes,
        fetchTimeoutMs: requestTimeoutMs + maxWaitMs,
        maxBufferedChunks: MAX_BUFFERED_CHUNKS,
        checkCrcs: options.checkCrcs ?? true,
        autoOffsetReset,
        onOffsetReset: options.onOffsetReset,
        logger: this.logger,
        retries: this.retries,
        retry: this.retry,
        reconnectTimeoutMs: this.reconnectTimeoutMs,
      },
      {
        get running() {
          return consumer.started && !consumer.closed && consumer.failure === undefined;
        },
        enqueue: (s, item) => this.enqueue(s, item),
        jump: (s, offset) => this.jump(s, offset),
        connection: () => this.controlConnection(),
      },
    );
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

  /** The partitions being read (after connect()); with group membership, those assigned now. */
  get partitions(): number[] {
    return [...this.states.keys()].sort((a, b) => a - b);
  }

  /** The next offset the iterator will hand out for `partition` (after connect()). */
  position(partition: number): number {
    return this.stateOf(partition).position;
  }

  /**
   * Moves `partition` to `offset`: records already fetched for it are dropped and the
   * next one handed out for it is `offset`'s. A partition whose stream failed resumes.
   * Before connect(), overrides the start.
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
    s.committed = -1; // auto-commit stores the new position, even one behind the last commit
    s.error = undefined;
    if (this.lastYielded === s) this.lastYielded = undefined;
    this.fetcher.fetch(s);
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
      const item = this.take();
      if (item instanceof CommitLogError) return Promise.reject(item);
      if (item !== undefined) return Promise.resolve({ done: false, value: item });
      const stuck = this.everyPartitionFailed();
      if (stuck !== undefined && this.failure === undefined && !this.closed) return Promise.reject(stuck);
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

  /** The next buffered record, or a partition's failure that comes before it, or undefined. */
  private take(): ConsumerRecord | CommitLogError | undefined {
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
      if (chunk.epoch !== s.epoch) continue;
      if (chunk.jumpTo !== undefined) this.jump(s, chunk.jumpTo);
      if (chunk.error !== undefined) return chunk.error;
    }
    return undefined;
  }

  /** The position moves to `offset` (a reset); so does what auto-commit commits, unless the user still holds a record of this partition. */
  private jump(s: PartitionState, offset: number): void {
    s.position = offset;
    if (this.lastYielded !== s) s.processed = offset;
  }

  /** Queues fetched records or a marker for the partition's current epoch, then serves waiting next() calls. */
  private enqueue(s: PartitionState, item: Fetched): void {
    s.buffered++;
    this.chunks.push({ state: s, epoch: s.epoch, records: item.records ?? NO_RECORDS, index: 0, error: item.error, jumpTo: item.jumpTo });
    this.wake();
  }

  /** The error of the lowest-numbered partition when every partition has failed. */
  private everyPartitionFailed(): CommitLogError | undefined {
    if (!this.started || this.states.size === 0) return undefined;
    let first: CommitLogError | undefined;
    for (const s of this.states.values()) {
      if (s.error === undefined) return undefined;
      first ??= s.error;
    }
    return first;
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
      this.fetcher.fetch(s);
    }
  }

  /** Hands buffered records, and failures, to waiting next() calls. */
  private wake(): void {
    while (this.waiters.length > 0) {
      const item = this.take();
      if (item === undefined) return;
      const waiter = this.waiters.shift()!;
      if (item instanceof CommitLogError) waiter.reject(item);
      else waiter.resolve({ done: false, value: item });
    }
  }

  // ---- start ----------------------------------------------------------------------

  private async start(): Promise<void> {
    const metadata = await this.controlRequest({ case: 'metadata', value: { topics: [this.topic] } });
    const body = metadata.header.body;
    const topicMeta = body?.case === 'metadata' ? body.value.topics.find((t) => t.name === this.topic) : undefined;
    if (topicMeta === undefined || topicMeta.partitions.length === 0) {
      throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `unknown topic ${this.topic}`, { topic: this.topic });
    }
    const byPartition = new Map<number, PartitionMetadata>(topicMeta.partitions.map((p) => [p.partition, p]));
    if (this.group !== undefined && this.wantedPartitions === undefined) return this.startMembership();
    const partitions = this.wantedPartitions ?? [...byPartition.keys()].sort((a, b) => a - b);
    for (const p of partitions) {
      if (!byPartition.has(p)) {
        throw new CommitLogError(ErrorCode.UNKNOWN_PARTITION, `topic ${this.topic} has no partition ${p} (it has ${byPartition.size})`, { topic: this.topic, partition: p });
      }
    }
    for (const p of this.pendingSeeks.keys()) {
      if (!partitions.includes(p)) throw invalidArgument(`seek(${p}, ...) before connect(): the consumer of ${this.topic} reads partitions ${partitions.join(', ')}`);
    }
    const added = await this.resolveStarts(partitions, byPartition);
    if (this.closed) return;
    this.pendingSeeks.clear();
    this.started = true;
    this.startAutoCommit();
    for (const s of added) this.fetcher.fetch(s);
  }

  /** States for `partitions` at their start offsets (a seek before connect(), the group's committed offset, else `from`). */
  private async resolveStarts(partitions: number[], byPartition: Map<number, PartitionMetadata>): Promise<PartitionState[]> {
    const committed = new Map<number, number>();
    if (this.group !== undefined && partitions.length > 0) {
      const response = await this.controlRequest({ case: 'offsetFetch', value: { group: this.group, topic: this.topic, partitions } });
      const fetched = response.header.body;
      if (fetched?.case === 'offsetFetch') for (const c of fetched.value.offsets) if (c.offset >= 0) committed.set(c.partition, c.offset);
    }
    const offsets = await Promise.all(partitions.map(async (p) => {
      const seek = this.pendingSeeks.get(p);
      if (seek !== undefined) return seek;
      const c = committed.get(p);
      if (c !== undefined) return c;
      const meta = byPartition.get(p);
      if (meta === undefined) throw new CommitLogError(ErrorCode.UNKNOWN_PARTITION, `topic ${this.topic} has no partition ${p}`, { topic: this.topic, partition: p });
      return this.startOffset(meta);
    }));
    return partitions.map((partition, i) => {
      const offset = offsets[i]!;
      const s: PartitionState = {
        partition, fetchOffset: offset, position: offset, processed: offset,
        committed: committed.get(partition) ?? -1, epoch: 0, inFlight: false, buffered: 0, error: undefined,
      };
      this.states.set(partition, s);
      return s;
    });
  }

  private startAutoCommit(): void {
    if (this.autoCommitIntervalMs <= 0 || this.autoCommitTimer !== undefined) return;
    this.autoCommitTimer = setInterval(() => {
      // A failed auto-commit is retried at the next tick; close() reports its own.
      this.commitPositions(true).catch(() => undefined);
    }, this.autoCommitIntervalMs);
    this.autoCommitTimer.unref();
  }

  // ---- group membership (consumer-group.ts) ---------------------------------------

  /** Joins the group; connect() resolves once the first assignment's partitions are added. */
  private async startMembership(): Promise<void> {
    const group = new ConsumerGroup({
      topic: this.topic,
      group: this.group!,
      partitionCount: async (topic) => {
        const response = await this.controlRequest({ case: 'metadata', value: { topics: [topic] } });
        const body = response.header.body;
        const meta = body?.case === 'metadata' ? body.value.topics.find((t) => t.name === topic) : undefined;
        if (meta === undefined) throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `unknown topic ${topic}`, { topic });
        return meta.partitions.length;
      },
      addPartitions: (partitions) => this.addPartitions(partitions),
      removePartitions: (partitions, lost) => this.removePartitions(partitions, lost),
      failed: (err) => this.fail(err),
    }, this.connectionOptions, this.groupOptions);
    this.membership = group;
    this.started = true;
    this.startAutoCommit();
    await group.start();
    if (this.failure !== undefined) throw this.failure;
  }

  private async addPartitions(partitions: number[]): Promise<void> {
    if (this.closed) return;
    const response = await this.controlRequest({ case: 'metadata', value: { topics: [this.topic] } });
    const body = response.header.body;
    const meta = body?.case === 'metadata' ? body.value.topics.find((t) => t.name === this.topic) : undefined;
    const byPartition = new Map<number, PartitionMetadata>((meta?.partitions ?? []).map((p) => [p.partition, p]));
    const added = await this.resolveStarts(partitions.filter((p) => !this.states.has(p)), byPartition);
    for (const p of partitions) this.pendingSeeks.delete(p);
    for (const s of added) this.fetcher.fetch(s);
  }

  private async removePartitions(partitions: number[], lost: boolean): Promise<void> {
    const leaving = partitions.map((p) => this.states.get(p)).filter((s): s is PartitionState => s !== undefined);
    if (leaving.length === 0) return;
    // Nothing more of them is handed out from here on (their queued chunks and the
    // answer in flight are dropped), so the commit below covers all that was: the
    // commit may wait behind the long poll on the connection.
    for (const s of leaving) {
      s.epoch++;
      this.fetcher.stop(s);
    }
    if (!lost) {
      // A failed commit leaves the next owner at the last commit: those records come again.
      await this.commitPositions(true, leaving).catch((err: unknown) => {
        this.logger.warn({ topic: this.topic, group: this.group, err: String(err) }, 'commit on revoke failed');
      });
    }
    for (const s of leaving) {
      // Responses and queued chunks of the partition are dropped; fetch() does nothing more for it.
      s.epoch++;
      s.error = REVOKED;
      this.fetcher.stop(s);
      if (this.lastYielded === s) this.lastYielded = undefined;
      this.states.delete(s.partition);
    }
  }

  private async startOffset(meta: PartitionMetadata): Promise<number> {
    const from = this.from;
    if (from === 'earliest') return meta.earliestOffset;
    if (from === 'latest') return meta.latestOffset;
    if (typeof from === 'number') return from;
    const response = await this.controlRequest({
      case: 'listOffsets', value: { topic: this.topic, partition: meta.partition, spec: 'TIMESTAMP', timestamp: from.getTime() },
    });
    const body = response.header.body;
    const offset = body?.case === 'listOffsets' ? body.value.offset : -1;
    // No record at or after the time: start at the end, where the next one will be.
    return offset >= 0 ? offset : meta.latestOffset;
  }

  // ---- commits, failure, close

  /**
   * commit(): every partition's handed-out position. Auto-commit: the processed
   * positions of the partitions that moved since this consumer last committed them.
   */
  private commitPositions(auto: boolean, only?: PartitionState[]): Promise<void> {
    const run = async (): Promise<void> => {
      const group = this.group!;
      const moved = (only ?? [...this.states.values()])
        .map((s) => ({ s, offset: auto ? s.processed : s.position }))
        // Auto-commit never moves a partition back behind what commit() stored (a record
        // commit() covered may not be marked processed yet); after a seek() it commits anew.
        .filter(({ s, offset }) => !auto || offset > s.committed);
      if (moved.length === 0) return;
      // A member commits with its generation (the coordinator refuses a stale one).
      const member = this.membership?.identity;
      await this.controlRequest({
        case: 'offsetCommit',
        value: {
          group,
          offsets: moved.map(({ s, offset }) => ({ topic: this.topic, partition: s.partition, offset, metadata: '' })),
          ...(member === undefined ? {} : {
            memberId: member.memberId, generationId: member.generationId, ...(member.groupInstanceId === null ? {} : { groupInstanceId: member.groupInstanceId }),
          }),
        },
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
    this.controlConnecting ??= this.retrying(() => Connection.connect(this.connectionOptions))
      .then((conn) => {
        this.control = conn;
        return conn;
      })
      .finally(() => {
        this.controlConnecting = undefined;
      });
    return this.controlConnecting;
  }

  /** A request on the control connection, sent again after a retriable failure (all of them are idempotent). */
  private controlRequest(body: RequestBody): Promise<Response> {
    return this.retrying(async () => (await this.controlConnection()).request(body));
  }

  /** Runs `attempt` until it succeeds, fails for good, or retrying is over (reconnectTimeoutMs, `retries`, close()). */
  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const elapsed = Date.now() - started;
        if (!isRetriable(err) || n >= this.retries || elapsed >= this.reconnectTimeoutMs || this.closed) throw err;
        await sleep(Math.min(backoffMs(n, this.retry.backoffMs, this.retry.backoffMaxMs), this.reconnectTimeoutMs - elapsed));
      }
    }
  }

  private stateOf(partition: number): PartitionState {
    const s = this.states.get(partition);
    if (s === undefined) {
      const detail = this.started ? `it reads ${[...this.states.keys()].join(', ')}` : 'call connect() first';
      throw invalidArgument(`consumer of ${this.topic} has no partition ${String(partition)}: ${detail}`);
    }
    return s;
  }

  /** Stops the consumer for good (its start failed): every waiting and later next() rejects with err. */
  private fail(err: unknown): void {
    if (this.failure !== undefined || this.closed) return;
    this.failure = err;
    this.stopFetching();
    this.fetcher.close();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private stopFetching(): void {
    clearInterval(this.autoCommitTimer);
    this.autoCommitTimer = undefined;
    for (const s of this.states.values()) this.fetcher.stop(s);
  }

  /** Closes the connection; at once when nothing but the fetcher's long poll is in flight on it (nothing to wait for). */
  private async closeConnection(): Promise<void> {
    const conn = this.control;
    if (conn === undefined) return;
    if (conn.inFlight <= (this.fetcher.fetching ? 1 : 0)) conn.destroy();
    else await conn.close();
  }

  private async shutdown(): Promise<void> {
    let commitError: unknown;
    // Leaving the group revokes every partition first: their positions are committed.
    if (this.membership !== undefined) await this.membership.close().catch(() => undefined);
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
    this.fetcher.close();
    await this.closeConnection();
    if (commitError !== undefined) throw commitError;
  }

  private closedError(): CommitLogError {
    return new CommitLogError(ErrorCode.LOG_CLOSED, `consumer of ${this.topic} is closed`, { topic: this.topic });
  }
}
