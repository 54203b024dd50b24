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
 * fetching itself (connections, checks, resets, reconnects) is consumer-fetcher.ts's,
 * the options (their defaults and validation) consumer-options.ts's, the connection
 * and its retried requests consumer-link.ts's; this module owns the queue of what is
 * handed out, positions, start and commits.
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
import type { ConsumerRecord } from './client-types.js';
import type { ConnectionOptions } from './connection.js';
import { Fetcher, type Fetched, type PartitionState } from './consumer-fetcher.js';
import { ConsumerGroup, type GroupOptions } from './consumer-group.js';
import { ConsumerLink } from './consumer-link.js';
import { resolveConsumerOptions, type ConsumerOptions, type ConsumerStart } from './consumer-options.js';
import type { PartitionMetadata } from '../protocol/messages.js';

export type { AutoOffsetReset, OffsetReset } from './consumer-fetcher.js';
export type { GroupOptions } from './consumer-group.js';
export type { ConsumerOptions, ConsumerStart } from './consumer-options.js';

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

const DONE: IteratorResult<ConsumerRecord> = Object.freeze({ done: true, value: undefined });
const NO_RECORDS: LogRecord[] = [];

export class Consumer implements AsyncIterable<ConsumerRecord> {
  readonly topic: string;
  readonly group: string | undefined;
  private readonly connectionOptions: ConnectionOptions;
  private readonly wantedPartitions: number[] | undefined;
  private readonly from: ConsumerStart;
  private readonly autoCommitIntervalMs: number;
  private readonly fetcher: Fetcher;
  /** The connection and the requests on it (consumer-link.ts). */
  private readonly link: ConsumerLink;

  private readonly states = new Map<number, PartitionState>();
  private readonly pendingSeeks = new Map<number, number>();
  private chunks: Chunk[] = [];
  private chunkHead = 0;
  private waiters: Waiter[] = [];
  /** The partition of the record handed out last, until the user asks for the next. */
  private lastYielded: PartitionState | undefined;
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
    const settings = resolveConsumerOptions(options);
    this.topic = settings.topic;
    this.group = settings.group;
    this.wantedPartitions = settings.wantedPartitions;
    this.from = settings.from;
    this.autoCommitIntervalMs = settings.autoCommitIntervalMs;
    this.connectionOptions = settings.connectionOptions;
    this.logger = settings.logger;
    this.groupOptions = settings.groupOptions;
    this.link = new ConsumerLink(settings.connectionOptions, settings.retries, settings.retry, settings.reconnectTimeoutMs, () => this.closed);
    // The fetcher's view of this consumer: a getter cannot close over `this` otherwise.
    const consumer = this;
    this.fetcher = new Fetcher(
      settings.fetcher,
      {
        get running() {
          return consumer.started && !consumer.closed && consumer.failure === undefined;
        },
        enqueue: (s, item) => this.enqueue(s, item),
        jump: (s, offset) => this.jump(s, offset),
        connection: () => this.link.connection(),
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
    const topicMeta = await this.link.topicMetadata(this.topic);
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
      const response = await this.link.request({ case: 'offsetFetch', value: { group: this.group, topic: this.topic, partitions } });
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
        const meta = await this.link.topicMetadata(topic);
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
    const meta = await this.link.topicMetadata(this.topic);
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
    const response = await this.link.request({
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
      await this.link.request({
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
    await this.link.idle();
    this.fetcher.close();
    await this.link.close(this.fetcher.fetching);
    if (commitError !== undefined) throw commitError;
  }

  private closedError(): CommitLogError {
    return new CommitLogError(ErrorCode.LOG_CLOSED, `consumer of ${this.topic} is closed`, { topic: this.topic });
  }
}
