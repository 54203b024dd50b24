/**
 * The reading half of a partition (PartitionLog extends it): the segment queue as
 * readers see it, bounded by the high watermark; slices for sendfile, decoded records,
 * long-poll waits, lookups by timestamp, read warm-up, and the reference counts that
 * keep a read segment's files until the reader lets go. Nothing here writes the log.
 */
import { CommitLogError, ErrorCode } from '../errors.js';
import type { LogRecord } from './record.js';
import { warmForRead } from './read-warmup.js';
import { decodeSlice, entryFor, offsetForTimestampIn, segmentFor } from './segment-read.js';
import type { LogSlice, PartitionOptions } from './partition-types.js';
import { corruptError, type Segment } from './segment.js';

export abstract class PartitionReads {
  readonly dir: string;
  readonly topic: string;
  readonly partition: number;

  protected segments: Segment[];
  /** The segment appends go to (the last one). */
  protected active: Segment;
  protected readonly options: PartitionOptions;
  protected closed = false;
  /** Under sync: one past the last offset a completed flush covers (see highWatermark). */
  protected flushedOffset: number;
  private appendSignal: { promise: Promise<void>; resolve: () => void } | null = null;

  protected constructor(options: PartitionOptions, segments: Segment[]) {
    this.options = options;
    this.dir = options.dir;
    this.topic = options.topic;
    this.partition = options.partition;
    this.segments = segments;
    this.active = segments[segments.length - 1];
    // What an open finds is on disk: a clean close flushed it, recovery flushes it (open).
    this.flushedOffset = this.active.nextOffset;
  }

  /** First offset still stored. */
  get logStartOffset(): number {
    return this.segments[0].baseOffset;
  }

  /** One past the last offset written (the log end offset). */
  get nextOffset(): number {
    return this.active.nextOffset;
  }

  /**
   * One past the last offset readers may see. Under `sync`, the end of what a finished
   * flush covers: no reader, tail, long poll or fetch sees a record a power loss could
   * take back. Under `async` and `os`, the log end offset (what is written).
   */
  get highWatermark(): number {
    return this.options.flush === 'sync' ? this.flushedOffset : this.active.nextOffset;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  protected ensureOpen(): void {
    if (this.closed) throw new CommitLogError(ErrorCode.LOG_CLOSED, `partition ${this.topic}/${this.partition} is closed`, { topic: this.topic, partition: this.partition });
  }

  // ---- reading ----

  protected segmentFor(offset: number): Segment {
    return segmentFor(this.segments, offset);
  }

  protected outOfRange(offset: number): CommitLogError {
    return new CommitLogError(ErrorCode.OFFSET_OUT_OF_RANGE,
      `offset ${offset} is outside ${this.topic}/${this.partition}'s range [${this.logStartOffset}, ${this.nextOffset}]`,
      { topic: this.topic, partition: this.partition, offset });
  }

  /**
   * Reads into the page cache, on the thread pool, what readSlice(offset) would read
   * through mappings on the calling thread (read-warmup.ts). Never rejects.
   */
  prepareRead(offset: number): Promise<void> {
    if (this.closed || !Number.isSafeInteger(offset) || offset < this.logStartOffset || offset >= this.highWatermark) return Promise.resolve();
    return warmForRead(this.segmentFor(offset), offset, (s) => {
      if (!this.closed) this.use(s);
    });
  }

  protected use(segment: Segment): Segment {
    return segment === this.active || !segment.sealed ? segment : this.options.cache.use(segment);
  }

  /**
   * The byte range of whole batches starting with the one that holds `offset`, up to
   * `maxBytes` (at least one batch however large). Null at the end of the log. The
   * segment is held until `release()`: retention and close wait for it.
   */
  readSlice(offset: number, maxBytes: number): LogSlice | null {
    this.ensureOpen();
    if (!Number.isSafeInteger(offset) || offset < this.logStartOffset || offset > this.nextOffset) throw this.outOfRange(offset);
    const visibleEnd = this.highWatermark;
    // Between the high watermark and the log end: written, not yet visible.
    if (offset >= visibleEnd) return null;
    let segment = this.segmentFor(offset);
    if (offset >= segment.nextOffset) {
      // The offset lies past a sealed segment's end: start at the next segment.
      const i = this.segments.indexOf(segment) + 1;
      if (i >= this.segments.length) return null;
      segment = this.segments[i];
    }
    this.use(segment);
    const i = entryFor(segment, offset);
    const cq = segment.cq;
    const position = cq.positionAt(i);
    let end = position + cq.sizeAt(i);
    const visibleRel = visibleEnd - segment.baseOffset;
    for (let j = i + 1; j < cq.entries; j++) {
      const next = end + cq.sizeAt(j);
      if (next - position > maxBytes || cq.relativeOffsetAt(j) >= visibleRel) break;
      end = next;
    }
    segment.refs++;
    let released = false;
    return {
      segment,
      fd: segment.fdForTransfer,
      position,
      length: end - position,
      firstOffset: segment.baseOffset + cq.relativeOffsetAt(i),
      release: () => {
        if (released) return;
        released = true;
        segment.refs--;
        if (segment.refs === 0 && segment.deleted) void this.finishDelete(segment);
        // close() left the files of a held segment open for this holder.
        else if (segment.refs === 0 && this.closed) segment.closeFiles();
      },
    };
  }

  /**
   * Records from `offset` on, up to about `maxBytes` of batches (at least one batch).
   * Keys and values are views of the mapping, valid for as long as the caller keeps them.
   * Every batch's CRC is verified: damaged data is ERR_LOG_CORRUPT, never returned.
   */
  read(offset: number, maxBytes: number): LogRecord[] {
    const slice = this.readSlice(offset, maxBytes);
    if (slice === null) return [];
    try {
      return decodeSlice(slice, offset, this.topic, this.partition);
    } finally {
      slice.release();
    }
  }

  /**
   * Resolves true once the log holds an offset >= `offset`, false after `timeoutMs`
   * (when given) or when `signal` aborts. No polling: appends wake the waiters.
   */
  async waitForData(offset: number, timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.highWatermark > offset) return true;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const giveUp = new Promise<false>((resolve) => {
      if (timeoutMs !== undefined) timer = setTimeout(() => resolve(false), timeoutMs);
      if (signal !== undefined) {
        onAbort = () => resolve(false);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      while (this.highWatermark <= offset) {
        this.ensureOpen();
        if (this.appendSignal === null) {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => (resolve = r));
          this.appendSignal = { promise, resolve };
        }
        const woke = await Promise.race([this.appendSignal.promise.then(() => true as const), giveUp]);
        if (!woke) return this.highWatermark > offset;
      }
      return true;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      if (onAbort !== undefined) signal!.removeEventListener('abort', onAbort);
    }
  }

  /** The first offset whose record timestamp is >= `timestamp`, or null when none is. */
  offsetForTimestamp(timestamp: number): number | null {
    this.ensureOpen();
    for (const candidate of this.segments) {
      const segment = this.use(candidate);
      let found = offsetForTimestampIn(segment, timestamp, this.topic, this.partition);
      if (found === undefined) {
        // An index entry disagrees with the log: rebuilt from it, then looked up again.
        segment.rebuildIndexesFromLog();
        found = offsetForTimestampIn(segment, timestamp, this.topic, this.partition);
        if (found === undefined) throw corruptError(segment.logPath, 0, 'its indexes disagree with its log after a rebuild');
      }
      // A record past the high watermark is not visible yet.
      if (found !== null) return found < this.highWatermark ? found : null;
    }
    return null;
  }

  protected finishDelete(segment: Segment): Promise<void> {
    this.options.cache.forget(segment);
    segment.closeFiles();
    // Freeing a large file's blocks takes milliseconds: done on the thread pool. A file
    // that survives a failed unlink is older than the log start: the next open lists it
    // again and retention deletes it again.
    return segment.unlinkFilesAsync().catch(() => undefined);
  }

  protected wakeWaiters(): void {
    const signal = this.appendSignal;
    this.appendSignal = null;
    signal?.resolve();
  }
}
