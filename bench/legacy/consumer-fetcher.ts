// The Consumer's fetcher before MultiFetch (commit 80a604d^, src/net/client/consumer-fetcher.ts), kept only
// as the baseline of bench/multi-fetch.ts. Not part of the library.
/**
 * The Consumer's fetching (Kafka's Fetcher): for each partition, one connection of its
 * own, at most one fetch in flight, the checks of what comes back, the reset of an
 * out-of-range position, and reconnecting with backoff. What it fetches goes to the
 * Consumer's queue (FetchQueue), in order: records, a reset (the position jumps once
 * the records before it are handed out) or the partition's failure.
 *
 * A partition stops fetching while a fetch, a connect or a backoff is under way,
 * while `maxBufferedChunks` of its chunks wait in the queue, and for good once its
 * stream failed (PartitionState.error) until seek() clears it. Answers to a fetch of
 * an older epoch (before a seek()) are dropped. See consumer.ts for what the
 * application sees; the checks of a payload are fetched-batches.ts's.
 *
 * Concurrency: single JS thread; the Consumer calls fetch() whenever a partition may
 * go on, and stop() when it closes.
 */
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import type { Logger } from '../../src/log/commit-log.js';
import type { LogRecord } from '../../src/log/record.js';
import { backoffMs, isRetriable, type RetryPolicy } from '../../src/net/client/client-types.js';
import { Connection, type ConnectionOptions } from '../../src/net/client/connection.js';
import { readFetched } from '../../src/net/client/fetched-batches.js';
import type { OffsetSpec } from '../../src/net/protocol/messages.js';

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
  /** Consecutive retriable failures, and Date.now() at the first of them (0: none). */
  failures: number;
  failingSince: number;
  retryTimer: NodeJS.Timeout | undefined;
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
}

export interface FetcherSettings {
  topic: string;
  connectionOptions: ConnectionOptions;
  maxBytes: number;
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
  constructor(private readonly settings: FetcherSettings, private readonly queue: FetchQueue) {}

  /** Fetches for the partition unless something holds it back (a fetch or a reconnect under way, a full buffer, a failure). */
  fetch(s: PartitionState): void {
    if (!this.queue.running) return;
    if (s.error !== undefined || s.inFlight || s.connecting || s.retryTimer !== undefined || s.buffered >= this.settings.maxBufferedChunks) return;
    const conn = s.conn;
    if (conn === undefined || !conn.isOpen) {
      this.connectPartition(s);
      return;
    }
    s.inFlight = true;
    const epoch = s.epoch;
    const offset = s.fetchOffset;
    const { topic, maxBytes, maxWaitMs, minBytes, fetchTimeoutMs } = this.settings;
    conn.request({ case: 'fetch', value: { topic, partition: s.partition, offset, maxBytes, maxWaitMs, minBytes } }, undefined, fetchTimeoutMs).then(
      (response) => this.onFetched(s, epoch, offset, response.payload),
      (err: unknown) => this.onFetchFailed(s, epoch, offset, err),
    );
  }

  private onFetched(s: PartitionState, epoch: number, offset: number, payload: Buffer): void {
    s.inFlight = false;
    s.failures = 0;
    s.failingSince = 0;
    if (!this.queue.running) return;
    if (epoch === s.epoch && payload.length > 0) {
      const fetched = readFetched(payload, offset, this.settings.checkCrcs);
      // Past the batches before `offset` too, when those were all that came back.
      s.fetchOffset = fetched.nextOffset;
      if (fetched.records.length > 0) this.queue.enqueue(s, { records: fetched.records });
      if (fetched.damage !== undefined) {
        const { offset: at, reason } = fetched.damage;
        this.failPartition(s, new CommitLogError(
          ErrorCode.CORRUPT_BATCH,
          `${this.settings.topic}/${s.partition}: the fetched batch at offset ${at} is corrupt (${reason.message} of the fetch response)`,
          { topic: this.settings.topic, partition: s.partition, offset: at, cause: reason },
        ));
        return;
      }
    }
    this.fetch(s);
  }

  private onFetchFailed(s: PartitionState, epoch: number, offset: number, err: unknown): void {
    s.inFlight = false;
    if (!this.queue.running) return;
    if (isRetriable(err)) {
      this.retryLater(s, err);
      return;
    }
    // An answer about an offset seek() has since moved away from.
    if (epoch !== s.epoch) {
      this.fetch(s);
      return;
    }
    if (err instanceof CommitLogError && err.code === ErrorCode.OFFSET_OUT_OF_RANGE && this.settings.autoOffsetReset !== 'none') {
      this.resetOffset(s, epoch, offset, this.settings.autoOffsetReset, err);
      return;
    }
    this.failPartition(s, this.partitionError(s, err));
  }

  /**
   * Moves an out-of-range partition to its log start or end (ListOffsets on its own
   * connection), reports the reset and fetches on. Records buffered before it are
   * handed out first: the position jumps once they are.
   */
  private resetOffset(s: PartitionState, epoch: number, offset: number, policy: 'earliest' | 'latest', outOfRange: CommitLogError): void {
    const conn = s.conn;
    if (conn === undefined || !conn.isOpen) {
      this.fetch(s);
      return;
    }
    s.inFlight = true;
    const list = (spec: OffsetSpec): Promise<number> =>
      conn.request({ case: 'listOffsets', value: { topic: this.settings.topic, partition: s.partition, spec, timestamp: 0 } }).then((response) => {
        const body = response.header.body;
        return body?.case === 'listOffsets' ? body.value.offset : -1;
      });
    Promise.all([list('EARLIEST'), list('LATEST')]).then(
      ([logStartOffset, logEndOffset]) => {
        s.inFlight = false;
        if (!this.queue.running) return;
        if (epoch !== s.epoch) {
          this.fetch(s);
          return;
        }
        const resetTo = policy === 'earliest' ? logStartOffset : logEndOffset;
        // The broker refused the very offset it names as in range: resetting would loop.
        if (resetTo < 0 || resetTo === offset) {
          this.failPartition(s, this.partitionError(s, outOfRange));
          return;
        }
        s.fetchOffset = resetTo;
        if (s.buffered === 0) this.queue.jump(s, resetTo);
        else this.queue.enqueue(s, { jumpTo: resetTo });
        this.reportReset({ topic: this.settings.topic, partition: s.partition, offset, resetTo, policy, logStartOffset, logEndOffset });
        this.fetch(s);
      },
      (err: unknown) => this.onFetchFailed(s, epoch, offset, err),
    );
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

  private connectPartition(s: PartitionState): void {
    s.connecting = true;
    Connection.connect(this.settings.connectionOptions).then(
      (conn) => {
        s.connecting = false;
        if (!this.queue.running) {
          conn.destroy();
          return;
        }
        s.conn = conn;
        this.fetch(s);
      },
      (err: unknown) => {
        s.connecting = false;
        if (!this.queue.running) return;
        if (isRetriable(err)) this.retryLater(s, err);
        else this.failPartition(s, this.partitionError(s, err));
      },
    );
  }

  /** Reconnects after backoff, unless the partition has failed for reconnectTimeoutMs (or `retries` times) in a row. */
  private retryLater(s: PartitionState, err: unknown): void {
    s.conn?.destroy();
    s.conn = undefined;
    const now = Date.now();
    if (s.failures === 0) s.failingSince = now;
    const elapsed = now - s.failingSince;
    if (s.failures >= this.settings.retries || elapsed >= this.settings.reconnectTimeoutMs) {
      const e = err instanceof CommitLogError ? err : this.partitionError(s, err);
      this.failPartition(s, new CommitLogError(
        e.code,
        `${this.settings.topic}/${s.partition}: gave up after ${s.failures + 1} failed attempts in ${elapsed} ms: ${e.message}`,
        { topic: this.settings.topic, partition: s.partition, offset: s.fetchOffset, errno: e.errno, syscall: e.syscall, cause: err },
      ));
      return;
    }
    const delay = Math.min(backoffMs(s.failures, this.settings.retry.backoffMs, this.settings.retry.backoffMaxMs), this.settings.reconnectTimeoutMs - elapsed);
    s.failures++;
    s.retryTimer = setTimeout(() => {
      s.retryTimer = undefined;
      this.fetch(s);
    }, delay);
  }

  /**
   * Fails the partition's stream: it fetches nothing more until seek(), and once the
   * records queued before the failure are handed out, one next() rejects with `err`.
   */
  private failPartition(s: PartitionState, err: CommitLogError): void {
    s.error = err;
    this.stop(s);
    this.queue.enqueue(s, { error: err });
  }

  /** `err` as a CommitLogError naming the partition (the broker's codes already do). */
  private partitionError(s: PartitionState, err: unknown): CommitLogError {
    if (err instanceof CommitLogError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new CommitLogError(ErrorCode.IO, `${this.settings.topic}/${s.partition}: ${message}`, { topic: this.settings.topic, partition: s.partition, offset: s.fetchOffset, cause: err });
  }

  /** Stops the partition's fetching for good: its backoff is cancelled, its connection closed. */
  stop(s: PartitionState): void {
    clearTimeout(s.retryTimer);
    s.retryTimer = undefined;
    s.conn?.destroy();
    s.conn = undefined;
  }
}
