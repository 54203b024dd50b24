/**
 * The reading side of the CommitLog facade (CommitLog extends it): the registry of
 * open topics as lookups see it (topic and partition by name, ERR_UNKNOWN_TOPIC /
 * ERR_UNKNOWN_PARTITION / ERR_LOG_CLOSED), and the reads that delegate to a
 * partition's PartitionLog: records, slices, offsets, long-poll waits over one or many
 * partitions, prefetch and tail. Kept apart from commit-log.ts, which opens,
 * recovers, creates and deletes topics, appends, runs the timers and closes: nothing
 * here writes, and none of it needs the lock, the settings or the timers.
 */
import { setMaxListeners } from 'node:events';
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import * as native from '../native.js';
import type { LogRecord } from './record.js';
import type { LogSlice, PartitionLog } from './partition-log.js';
import { ensureTopicName, type TopicConfig } from './topic-config.js';

export type StartPosition = number | 'earliest' | 'latest';

export interface TailOptions {
  from?: StartPosition;
  /** Batches read per step. Default 1 MiB. */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** A topic as the CommitLog holds it. */
export interface Topic {
  name: string;
  config: TopicConfig;
  partitions: PartitionLog[];
  /** addPartitions is running. */
  growing?: boolean;
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal !== undefined && signal.aborted;
}

/** CommitLog.prefetch on one partition's log. */
async function prefetchSlice(log: PartitionLog, offset: number, maxBytes: number): Promise<number> {
  // A closed sealed segment's indexes and the lookup's batch header are read on the pool first.
  await log.prepareRead(offset);
  const slice = log.readSlice(offset, maxBytes);
  if (slice === null) return 0;
  try {
    const data = slice.segment.data;
    const end = slice.position + slice.length;
    const cold = native.firstNonResident(data.buffer as ArrayBuffer, data.byteOffset + slice.position, slice.length) - data.byteOffset;
    if (cold >= end) return 0;
    return await native.prefetch(slice.fd, cold, end - cold, { path: slice.segment.logPath, topic: log.topic, partition: log.partition });
  } finally {
    // Held until the pool job is done, so the segment's fd cannot close under it.
    slice.release();
  }
}

/** An integer option of at least `min`, `fallback` when absent (open()'s settings, the reads' maxBytes). */
export function ensurePositiveInt(name: string, v: number | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < min) throw invalidArgument(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

export abstract class CommitLogReads {
  readonly dir: string;
  protected readonly topics = new Map<string, Topic>();
  protected closed = false;

  protected constructor(dir: string) {
    this.dir = dir;
  }

  protected ensureOpen(): void {
    if (this.closed) throw new CommitLogError(ErrorCode.LOG_CLOSED, `commit log ${this.dir} is closed`, { path: this.dir });
  }

  protected topicOf(name: string): Topic {
    this.ensureOpen();
    ensureTopicName(name);
    const topic = this.topics.get(name);
    if (topic === undefined) throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `unknown topic ${name}`, { topic: name });
    return topic;
  }

  /** The partition's log; ERR_UNKNOWN_TOPIC / ERR_UNKNOWN_PARTITION otherwise. */
  partition(topic: string, partition: number): PartitionLog {
    const t = this.topicOf(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions.length) {
      throw new CommitLogError(ErrorCode.UNKNOWN_PARTITION, `topic ${topic} has no partition ${String(partition)} (it has ${t.partitions.length})`, { topic, partition: Number.isInteger(partition) ? partition : undefined });
    }
    return t.partitions[partition];
  }

  /**
   * Records from `offset`, up to about `maxBytes` of batches (at least one batch).
   * Synchronous: batches whose pages are not in the page cache (old data, a cold start)
   * are read from disk right here, on the event loop. To keep the loop free, await
   * `prefetch()` with the same arguments first, or use `tail()`, which does.
   */
  read(topic: string, partition: number, offset: number, options: { maxBytes?: number } = {}): LogRecord[] {
    const maxBytes = ensurePositiveInt('maxBytes', options.maxBytes, 1024 * 1024);
    return this.partition(topic, partition).read(offset, maxBytes);
  }

  /** Byte range of whole batches from `offset`, held until release() (for zero-copy transfer). */
  readSlice(topic: string, partition: number, offset: number, maxBytes: number): LogSlice | null {
    return this.partition(topic, partition).readSlice(offset, ensurePositiveInt('maxBytes', maxBytes, 1));
  }

  earliestOffset(topic: string, partition: number): number {
    return this.partition(topic, partition).logStartOffset;
  }

  /**
   * The latest offset a reader sees: the high watermark (under `sync`, the end of what
   * is flushed; under `async`/`os`, the log end offset). What `tail({ from: 'latest' })`,
   * ListOffsets LATEST and the broker's Metadata report.
   */
  latestOffset(topic: string, partition: number): number {
    return this.partition(topic, partition).highWatermark;
  }

  /** The log end offset: one past the last record written (where the next append goes). */
  logEndOffset(topic: string, partition: number): number {
    return this.partition(topic, partition).nextOffset;
  }

  offsetForTimestamp(topic: string, partition: number, timestamp: number): number | null {
    if (!Number.isFinite(timestamp)) throw invalidArgument(`timestamp must be a finite number, got ${timestamp}`);
    return this.partition(topic, partition).offsetForTimestamp(timestamp);
  }

  /** Resolves true once `offset` exists, false on timeout or abort. */
  waitForData(topic: string, partition: number, offset: number, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      return this.partition(topic, partition).waitForData(offset, options.timeoutMs, options.signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * waitForData over several partitions at once: resolves with the index in `wanted`
   * of the first partition whose high watermark passes its offset (at once when one
   * already has), or -1 when `timeoutMs` passes or `signal` aborts first. The waits of
   * the other partitions end with it. A partition that is closed or deleted counts as
   * ready (its reader then gets the error). No polling: each wait wakes on append.
   */
  async waitForAny(wanted: readonly { topic: string; partition: number; offset: number }[], options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    if (wanted.length === 0) return -1;
    const done = new AbortController();
    setMaxListeners(0, done.signal); // one listener per partition waited on
    const outer = options.signal;
    const onAbort = (): void => done.abort();
    if (outer?.aborted) return -1;
    outer?.addEventListener('abort', onAbort, { once: true });
    try {
      const waits = wanted.map((w, i) =>
        this.waitForData(w.topic, w.partition, w.offset, { timeoutMs: options.timeoutMs, signal: done.signal }).then(
          (arrived) => (arrived ? i : -1),
          () => i,
        ));
      // The first partition ready wins; timeouts and the abort all resolve -1 together.
      return await new Promise<number>((resolve) => {
        let pending = waits.length;
        for (const w of waits) {
          void w.then((i) => {
            if (i >= 0) resolve(i);
            else if (--pending === 0) resolve(-1);
          });
        }
      });
    } finally {
      outer?.removeEventListener('abort', onAbort);
      done.abort();
    }
  }

  /**
   * Reads the batches `read(topic, partition, offset, { maxBytes })` would return into
   * the page cache on libuv's thread pool, unless their pages are all resident already
   * (mincore). Resolves with the bytes read from the file (0 when nothing was cold).
   * Locating the range reads the first batch's header (one page) on the calling thread.
   */
  async prefetch(topic: string, partition: number, offset: number, options: { maxBytes?: number } = {}): Promise<number> {
    const maxBytes = ensurePositiveInt('maxBytes', options.maxBytes, 1024 * 1024);
    return prefetchSlice(this.partition(topic, partition), offset, maxBytes);
  }

  /**
   * Every record from `from` on, waiting for new ones at the end (no polling). Ends
   * when `signal` aborts or the log closes. Each step's batches are made resident on
   * the thread pool (prefetch) before they are decoded, so tailing cold data does not
   * wait for the disk on the event loop.
   */
  async *tail(topic: string, partition: number, options: TailOptions = {}): AsyncGenerator<LogRecord> {
    const log = this.partition(topic, partition);
    const maxBytes = ensurePositiveInt('maxBytes', options.maxBytes, 1024 * 1024);
    const from = options.from ?? 'earliest';
    let next = from === 'earliest' ? log.logStartOffset : from === 'latest' ? log.highWatermark : from;
    const signal = options.signal;
    while (!isAborted(signal)) {
      if (this.closed) return;
      await prefetchSlice(log, next, maxBytes);
      if (this.closed || isAborted(signal)) return;
      const records = log.read(next, maxBytes);
      if (records.length === 0) {
        await log.waitForData(next, undefined, signal).catch((err: unknown) => {
          if (err instanceof CommitLogError && err.code === ErrorCode.LOG_CLOSED) return false;
          throw err;
        });
        continue;
      }
      for (const r of records) {
        yield r;
        if (isAborted(signal)) return;
      }
      next = records[records.length - 1].offset + 1;
    }
  }
}
