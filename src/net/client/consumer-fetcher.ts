/**
 * The Consumer's fetching (Kafka's Fetcher): one MultiFetch at a time over the
 * Consumer's one connection to the broker, naming every partition that may fetch; the
 * checks of what comes back, the reset of an out-of-range position, and retrying with
 * backoff. What it fetches goes to the Consumer's queue (FetchQueue), in order:
 * records, a reset (the position jumps once the records before it are handed out) or
 * the partition's failure.
 *
 * A partition is left out of the next MultiFetch while it is in the one in flight,
 * while `maxBufferedChunks` of its chunks wait in the queue, and for good once its
 * stream failed (PartitionState.error) until seek() clears it. A partition that
 * becomes ready while a MultiFetch is in flight joins the next one (the broker answers
 * the one in flight as soon as any of its partitions has data, or after maxWaitMs).
 * Answers for an older epoch (before a seek()) are dropped. A lost connection or a
 * broker shutting down is retried for all partitions at once, with capped jittered
 * backoff, until reconnectTimeoutMs (or `retries`) of failing in a row. See
 * consumer.ts for what the application sees; the checks of a payload are
 * fetched-batches.ts's.
 *
 * Concurrency: single JS thread; the Consumer calls fetch() whenever a partition may
 * go on, and stop() when it closes.
 */
import { CommitLogError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log/commit-log.js';
import type { LogRecord } from '../../log/record.js';
import { backoffMs, isRetriable, type RetryPolicy } from './client-types.js';
import type { Connection, Response } from './connection.js';
import { readFetched } from './fetched-batches.js';
import type { MultiFetchPartitionResult } from '../protocol/messages.js';

/** What a partition whose position is out of range does (Kafka's auto.offset.reset). */
export type AutoOffsetReset = 'earliest' | 'latest' | 'none';

/** A partition's position moved because it was out of range; see autoOffsetReset. */
export interface OffsetReset {
  topic: string;
  partition: number;
  /** The position the broker answered ERR_OFFSET_OUT_OF_RANGE for. */
  offset: number;
  /** Where the partition continues. */
  resetTo: number;
  policy: 'earliest' | 'latest';
  /** The partition's log start and end offsets when it was reset. */
  logStartOffset: number;
  logEndOffset: number;
}

/** One partition being read: the Consumer's positions and the fetcher's state. */
export interface PartitionState {
  partition: number;
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
  /** In the MultiFetch in flight. */
  inFlight: boolean;
  /** Chunks of the current epoch in the queue. */
  buffered: number;
  /** The partition's stream failed with this: nothing is fetched until seek(). */
  error: CommitLogError | undefined;
}

/** Something the fetcher hands to the Consumer's queue. */
export interface Fetched {
  records?: LogRecord[];
  /** The partition's stream failed: one next() rejects with this, after the records before it. */
  error?: CommitLogError;
  /** The position jumps here (a reset), after the records before it. */
  jumpTo?: number;
}

/** The Consumer, as its fetcher sees it. */
export interface FetchQueue {
  /** False once the consumer is closed (or failed to start): nothing more is fetched, answers are dropped. */
  readonly running: boolean;
  /** Queues `item` for the partition's current epoch (counted in s.buffered) and hands what it can to waiting next() calls. */
  enqueue(s: PartitionState, item: Fetched): void;
  /** The partition's position jumps now: nothing of it is queued. */
  jump(s: PartitionState, offset: number): void;
  /** The consumer's connection to the broker (reconnecting with backoff; rejects once that is given up). */
  connection(): Promise<Connection>;
}

export interface FetcherSettings {
  topic: string;
  /** Per partition: soft cap of its batches in one response. */
  maxBytes: number;
  /** Soft cap of one whole response (at least one batch always comes back). */
  fetchMaxBytes: number;
  maxWaitMs: number;
  minBytes: number;
  /** requestTimeoutMs plus maxWaitMs. */
  fetchTimeoutMs: number;
  /** Chunks a partition may have queued before its next fetch waits. */
  maxBufferedChunks: number;
  checkCrcs: boolean;
  autoOffsetReset: AutoOffsetReset;
  onOffsetReset: ((reset: OffsetReset) => void) | undefined;
  logger: Logger;
  retries: number;
  retry: RetryPolicy;
  reconnectTimeoutMs: number;
}

export class Fetcher {
  /** Partitions being fetched (fetch() adds, stop() removes). */
  private readonly active = new Set<PartitionState>();
  private inFlight = false;
  private connecting = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Consecutive retriable failures, and Date.now() at the first of them. */
  private failures = 0;
  private failingSince = 0;
  private stopped = false;
  private pumpScheduled = false;

  constructor(private readonly settings: FetcherSettings, private readonly queue: FetchQueue) {}

  /** True while a MultiFetch is in flight on the consumer's connection. */
  get fetching(): boolean {
    return this.inFlight;
  }

  /**
   * The partition may fetch (again): it joins the next MultiFetch unless something holds
   * it back. Calls in one synchronous run (a start, a rebalance) share one request; and
   * while other partitions still have records waiting to be handed out, a request waits
   * until at least half the partitions are ready, so a consumer working through its
   * buffer sends few large requests rather than one per partition that drained.
   */
  fetch(s: PartitionState): void {
    if (!this.queue.running || this.stopped || s.error !== undefined) return;
    this.active.add(s);
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      let ready = 0;
      let waiting = false;
      for (const p of this.active) {
        if (this.ready(p)) ready++;
        if (p.buffered > 0) waiting = true;
      }
      if (waiting && ready * 2 < this.active.size) return;
      this.pump();
    });
  }

  private ready(s: PartitionState): boolean {
    return s.error === undefined && !s.inFlight && s.buffered < this.settings.maxBufferedChunks;
  }

  /** Sends a MultiFetch for every ready partition, unless one is in flight or a connect or backoff is under way. */
  private pump(): void {
    if (!this.queue.running || this.stopped || this.inFlight || this.connecting || this.retryTimer !== undefined) return;
    const batch = [...this.active].filter((s) => this.ready(s)).sort((a, b) => a.partition - b.partition);
    if (batch.length === 0) return;
    this.connecting = true;
    this.queue.connection().then(
      (conn) => {
        this.connecting = false;
        this.send(conn);
      },
      (err: unknown) => {
        this.connecting = false;
        // The consumer's reconnecting gave up (or the error is not retriable).
        this.failAll(err, true);
      },
    );
  }

  private send(conn: Connection): void {
    if (!this.queue.running || this.stopped || this.inFlight) return;
    // Partitions may have changed while connecting.
    const batch = [...this.active].filter((s) => this.ready(s)).sort((a, b) => a.partition - b.partition);
    if (batch.length === 0) return;
    const { topic, maxBytes, fetchMaxBytes, maxWaitMs, minBytes, fetchTimeoutMs } = this.settings;
    const sent = batch.map((s) => ({ s, epoch: s.epoch, offset: s.fetchOffset }));
    for (const s of batch) s.inFlight = true;
    this.inFlight = true;
    conn.request({
      case: 'multiFetch',
      value: { partitions: sent.map(({ s, offset }) => ({ topic, partition: s.partition, offset, maxBytes })), maxBytes: fetchMaxBytes, maxWaitMs, minBytes },
    }, undefined, fetchTimeoutMs).then(
      (response) => this.onFetched(sent, response),
      (err: unknown) => this.onFetchFailed(sent, err),
    );
  }

  private onFetched(sent: { s: PartitionState; epoch: number; offset: number }[], response: Response): void {
    this.inFlight = false;
    for (const { s } of sent) s.inFlight = false;
    if (!this.queue.running || this.stopped) return;
    const body = response.header.body;
    const results = body?.case === 'multiFetch' ? body.value.partitions : [];
    if (results.length !== sent.length) {
      this.failAll(new CommitLogError(ErrorCode.BAD_FRAME, `multiFetch answered ${results.length} partitions for ${sent.length} asked`), false);
      return;
    }
    this.failures = 0;
    this.failingSince = 0;
    let at = 0;
    let retriable: CommitLogError | undefined;
    for (let i = 0; i < sent.length; i++) {
      const { s, epoch, offset } = sent[i]!;
      const r = results[i]!;
      const payload = response.payload.subarray(at, at + r.bytes);
      at += r.bytes;
      if (!this.active.has(s)) continue; // stopped (revoked) meanwhile
      if (r.errorCode !== '') {
        const err = new CommitLogError(r.errorCode as ConstructorParameters<typeof CommitLogError>[0], r.errorMessage, { topic: this.settings.topic, partition: s.partition, offset });
        if (isRetriable(err)) retriable = err;
        else this.onPartitionError(s, epoch, offset, err, r);
        continue;
      }
      if (epoch !== s.epoch || payload.length === 0) continue;
      const fetched = readFetched(payload, offset, this.settings.checkCrcs);
      // Past the batches before `offset` too, when those were all that came back.
      s.fetchOffset = fetched.nextOffset;
      if (fetched.records.length > 0) this.queue.enqueue(s, { records: fetched.records });
      if (fetched.damage !== undefined) {
        const { offset: bad, reason } = fetched.damage;
        this.failPartition(s, new CommitLogError(
          ErrorCode.CORRUPT_BATCH,
          `${this.settings.topic}/${s.partition}: the fetched batch at offset ${bad} is corrupt (${reason.message} of the fetch response)`,
          { topic: this.settings.topic, partition: s.partition, offset: bad, cause: reason },
        ));
      }
    }
    if (retriable !== undefined) this.retryLater(retriable);
    else this.pump();
  }

  private onFetchFailed(sent: { s: PartitionState }[], err: unknown): void {
    this.inFlight = false;
    for (const { s } of sent) s.inFlight = false;
    if (!this.queue.running || this.stopped) return;
    if (isRetriable(err)) this.retryLater(err);
    else this.failAll(err, false);
  }

  /**
   * A partition's own error: out of range is reset by autoOffsetReset (to the log start
   * or end the same answer reports), anything else fails the partition's stream.
   */
  private onPartitionError(s: PartitionState, epoch: number, offset: number, err: CommitLogError, r: MultiFetchPartitionResult): void {
    // An answer about an offset seek() has since moved away from.
    if (epoch !== s.epoch) return;
    const policy = this.settings.autoOffsetReset;
    if (err.code === ErrorCode.OFFSET_OUT_OF_RANGE && policy !== 'none') {
      const resetTo = policy === 'earliest' ? r.logStartOffset : r.highWatermark;
      // The broker refused the very offset it names as in range: resetting would loop.
      if (resetTo === offset) {
        this.failPartition(s, err);
        return;
      }
      s.fetchOffset = resetTo;
      if (s.buffered === 0) this.queue.jump(s, resetTo);
      else this.queue.enqueue(s, { jumpTo: resetTo });
      this.reportReset({ topic: this.settings.topic, partition: s.partition, offset, resetTo, policy, logStartOffset: r.logStartOffset, logEndOffset: r.highWatermark });
      return;
    }
    this.failPartition(s, err);
  }

  private reportReset(reset: OffsetReset): void {
    const { topic, partition, offset, resetTo, policy, logStartOffset, logEndOffset } = reset;
    this.settings.logger.warn(
      { ...reset },
      `reset ${topic}/${partition} from offset ${offset}, out of the log's range [${logStartOffset}, ${logEndOffset}], to ${resetTo} (autoOffsetReset '${policy}')`,
    );
    try {
      this.settings.onOffsetReset?.(reset);
    } catch (err) {
      // The application's callback threw: its error surfaces as its own, not as ours.
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** Fetches again after backoff, unless fetching has failed for reconnectTimeoutMs (or `retries` times) in a row. */
  private retryLater(err: unknown): void {
    const now = Date.now();
    if (this.failures === 0) this.failingSince = now;
    const elapsed = now - this.failingSince;
    if (this.failures >= this.settings.retries || elapsed >= this.settings.reconnectTimeoutMs) {
      this.failAll(err, true, elapsed);
      return;
    }
    const delay = Math.min(backoffMs(this.failures, this.settings.retry.backoffMs, this.settings.retry.backoffMaxMs), this.settings.reconnectTimeoutMs - elapsed);
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
  }

  /** Fails every partition being fetched with `err` (named per partition). */
  private failAll(err: unknown, gaveUp: boolean, elapsed = Date.now() - this.failingSince): void {
    for (const s of [...this.active]) {
      if (s.error !== undefined) continue;
      const e = this.partitionError(s, err);
      this.failPartition(s, gaveUp
        ? new CommitLogError(e.code, `${this.settings.topic}/${s.partition}: gave up after ${this.failures + 1} failed attempts in ${elapsed} ms: ${e.message}`,
          { topic: this.settings.topic, partition: s.partition, offset: s.fetchOffset, errno: e.errno, syscall: e.syscall, cause: err })
        : e);
    }
    this.failures = 0;
    this.failingSince = 0;
  }

  /**
   * Fails the partition's stream: it fetches nothing more until seek(), and once the
   * records queued before the failure are handed out, one next() rejects with `err`.
   */
  private failPartition(s: PartitionState, err: CommitLogError): void {
    s.error = err;
    this.active.delete(s);
    this.queue.enqueue(s, { error: err });
  }

  /** `err` as a CommitLogError naming the partition (the broker's codes already do). */
  private partitionError(s: PartitionState, err: unknown): CommitLogError {
    if (err instanceof CommitLogError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new CommitLogError(ErrorCode.IO, `${this.settings.topic}/${s.partition}: ${message}`, { topic: this.settings.topic, partition: s.partition, offset: s.fetchOffset, cause: err });
  }

  /** The partition leaves fetching (revoked or failed); an answer in flight for it is dropped. */
  stop(s: PartitionState): void {
    this.active.delete(s);
  }

  /** Stops all fetching for good (the consumer closes or failed); the connection is the consumer's. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.active.clear();
  }
}
