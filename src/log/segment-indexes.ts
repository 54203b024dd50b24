/**
 * The index side of a segment (Segment, in segment.ts, extends it): what its consume
 * queue and time index describe of its log, how a batch is indexed, and how the indexes
 * are checked against the log and rebuilt from it (a sealed segment at open, a damaged
 * entry a read found, recovery re-verifying the tail). Kept apart from segment.ts, which
 * owns the files, the mapping, appends, allocation, flush and seal: nothing here writes
 * or allocates the log, it only reads it through `data`.
 */
import { CommitLogError, ErrorCode } from '../errors.js';
import * as native from '../native.js';
import { ConsumeQueue } from '../index/consume-queue.js';
import { TimeIndex } from '../index/time-index.js';
import { segmentPaths } from './file-names.js';
import { BATCH_HEADER_BYTES, BATCH_LENGTH_POS, LAST_OFFSET_DELTA_POS, LOG_OVERHEAD, readBaseOffset, readMaxTimestamp } from './batch.js';
import type { SegmentLimits } from './segment.js';

/** Batches are at least this big, which bounds the entries a consume queue can need. */
const MIN_BATCH_BYTES = BATCH_HEADER_BYTES + 7;

export function corruptError(path: string, position: number, reason: string): CommitLogError {
  return new CommitLogError(ErrorCode.LOG_CORRUPT, `${path}: ${reason} at position ${position}, before the recovery point`, { path, position });
}

export function maxCqEntries(segmentBytes: number): number {
  return Math.floor(segmentBytes / MIN_BATCH_BYTES) + 1;
}

export function maxTixEntries(segmentBytes: number, indexIntervalBytes: number): number {
  return Math.floor(segmentBytes / Math.max(indexIntervalBytes, MIN_BATCH_BYTES)) + 2;
}

export abstract class SegmentIndexes {
  readonly dir: string;
  readonly baseOffset: number;
  logPath: string;
  /** One past the last offset held. */
  nextOffset: number;
  writePosition: number;
  /** Largest record timestamp held, -1 when unknown or empty. */
  maxTimestamp: number;
  /** Bytes of the .log file: capacity (logical, sparse) while active, data size once sealed. */
  fileBytes: number;
  sealed: boolean;

  protected cqIndex: ConsumeQueue | null = null;
  protected tixIndex: TimeIndex | null = null;
  private bytesSinceTimeEntry = 0;
  protected readonly limits: SegmentLimits;

  protected constructor(dir: string, baseOffset: number, limits: SegmentLimits, sealed: boolean, nextOffset: number, fileBytes: number) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.limits = limits;
    this.logPath = segmentPaths(dir, baseOffset).log;
    this.sealed = sealed;
    this.nextOffset = nextOffset;
    this.fileBytes = fileBytes;
    this.writePosition = sealed ? fileBytes : 0;
    this.maxTimestamp = -1;
  }

  get cq(): ConsumeQueue {
    if (this.cqIndex === null) throw this.closedError();
    return this.cqIndex;
  }

  get tix(): TimeIndex {
    if (this.tixIndex === null) throw this.closedError();
    return this.tixIndex;
  }

  /** The log's mapping as a Buffer (Segment owns the mapping). */
  abstract get data(): Buffer;

  protected closedError(): CommitLogError {
    return new CommitLogError(ErrorCode.LOG_CLOSED, `segment ${this.logPath} is not open`, { path: this.logPath });
  }

  /**
   * A sealed segment opened read-only must have indexes that describe its whole log;
   * when they do not, they are rebuilt from a CRC scan, which must reach the end of the
   * file (anything else is corruption before the recovery point: ERR_LOG_CORRUPT).
   */
  protected ensureSealedIndexes(): void {
    const relEnd = this.nextOffset - this.baseOffset;
    const cq = this.cq;
    const tix = this.tix;
    const empty = this.fileBytes === 0;
    // An empty file where offsets belong is lost data, not an empty segment.
    if (empty && relEnd > 0) throw corruptError(this.logPath, 0, `empty file, but the segment holds offsets ${this.baseOffset} to ${this.nextOffset - 1}`);
    if (cq.validate(this.fileBytes) && tix.validate(Math.max(relEnd, 1), Math.max(this.fileBytes, 1)) && (empty || this.sealedTimeIndexComplete())) {
      this.maxTimestamp = tix.lastTimestamp;
      return;
    }
    this.rebuildSealedIndexes();
  }

  /** Rebuilds a sealed segment's indexes from a CRC scan that must reach the end of the file; ERR_LOG_CORRUPT otherwise. */
  private rebuildSealedIndexes(): void {
    const empty = this.fileBytes === 0;
    const cq = this.cq;
    const tix = this.tix;
    const scan = native.scanBatches(this.data, 0, this.fileBytes, this.baseOffset);
    if (scan.position !== this.fileBytes || (!empty && scan.nextOffset !== this.nextOffset)) {
      throw corruptError(this.logPath, scan.position, native.scanStatusNames[scan.status] ?? 'unknown');
    }
    const paths = segmentPaths(this.dir, this.baseOffset);
    cq.close();
    tix.close();
    const { segmentBytes, indexIntervalBytes } = this.limits;
    const size = Math.max(segmentBytes, this.fileBytes);
    this.cqIndex = ConsumeQueue.open(paths.cq, maxCqEntries(size), true);
    this.tixIndex = TimeIndex.open(paths.tix, maxTixEntries(size, indexIntervalBytes), true);
    this.rebuildIndexes(this.fileBytes);
    const last = this.cqIndex.entries - 1;
    if (last >= 0) this.tixIndex.maybeAppend(this.maxTimestamp, this.cqIndex.relativeOffsetAt(last), this.cqIndex.positionAt(last), true);
    this.cqIndex.trimSync();
    this.tixIndex.trimSync();
    this.cqIndex.close();
    this.tixIndex.close();
    this.cqIndex = ConsumeQueue.open(paths.cq, 1, false);
    this.tixIndex = TimeIndex.open(paths.tix, 1, false);
    this.limits.onIndexRebuilt?.(this.logPath);
  }

  /**
   * Whether a time-index entry's timestamp covers the batch it names (not backdated
   * below that batch's MaxTimestamp). Checked for the first and last entries: a
   * lowered entry in between is caught by the order check (it falls below the entry
   * before it); a lowered first entry is not, and a lowered last one would make
   * restoreMaxTimestamp (which reads the batches after it) start too low.
   */
  timeEntryCoversBatch(k: number, logEnd: number): boolean {
    const pos = this.tix.positionAt(k);
    return pos + BATCH_HEADER_BYTES <= logEnd && this.tix.timestampAt(k) >= readMaxTimestamp(this.data, pos);
  }

  /**
   * A sealed segment's time index ends with an entry for its last batch (seal adds it),
   * whose timestamp is the segment's maximum: at least that batch's own. A shorter index
   * (truncated, or zeroed from some entry on) would pass as valid and understate
   * maxTimestamp, and timestamp lookups would skip the segment.
   */
  private sealedTimeIndexComplete(): boolean {
    const cq = this.cq;
    const tix = this.tix;
    if (cq.entries === 0 || tix.entries === 0 || tix.lastRelativeOffset !== cq.relativeOffsetAt(cq.entries - 1)) return false;
    const lastMaxTs = readMaxTimestamp(this.data, cq.positionAt(cq.entries - 1));
    return tix.lastTimestamp >= lastMaxTs && this.timeEntryCoversBatch(0, this.fileBytes);
  }

  /**
   * Whether consume-queue entry `i` agrees with the batch header at its position (base
   * offset and size) and that batch holds `offset`. Validation at open checks the
   * queue's chain of positions, not every relative offset against the log; a read
   * checks the entry it lands on.
   */
  entryHolds(i: number, offset: number): boolean {
    const cq = this.cq;
    const data = this.data;
    const position = cq.positionAt(i);
    // Bounded by the data the file really holds, not the mapping: a sealed segment's
    // file was truncated under its (larger) active mapping, and a page past the end of
    // the file is a SIGBUS, not zeros.
    const dataEnd = Math.min(data.length, this.sealed ? this.fileBytes : this.writePosition);
    if (position + BATCH_HEADER_BYTES > dataEnd || position + cq.sizeAt(i) > dataEnd) return false;
    const base = readBaseOffset(data, position);
    const last = base + data.readInt32BE(position + LAST_OFFSET_DELTA_POS);
    return base === this.baseOffset + cq.relativeOffsetAt(i) && LOG_OVERHEAD + data.readInt32BE(position + BATCH_LENGTH_POS) === cq.sizeAt(i)
      && base <= offset && offset <= last;
  }

  /**
   * Rebuilds both indexes from a CRC scan of the log, after a read found an entry that
   * disagrees with the log. ERR_LOG_CORRUPT when the log itself fails the scan.
   */
  rebuildIndexesFromLog(): void {
    if (this.sealed) {
      this.rebuildSealedIndexes();
      return;
    }
    const end = this.writePosition;
    const scan = native.scanBatches(this.data, 0, end, this.baseOffset);
    if (scan.position !== end || (scan.batches > 0 && scan.nextOffset !== this.nextOffset)) {
      throw corruptError(this.logPath, scan.position, native.scanStatusNames[scan.status] ?? 'unknown');
    }
    this.rebuildIndexes(end);
    this.limits.onIndexRebuilt?.(this.logPath);
  }

  /** Adds the index entries of a batch at `position` (append and index rebuild). */
  indexBatch(baseOffset: number, position: number, size: number, maxTimestamp: number): void {
    const relativeOffset = baseOffset - this.baseOffset;
    this.cqIndex!.append(relativeOffset, position, size);
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
    this.bytesSinceTimeEntry += size;
    if (this.bytesSinceTimeEntry >= this.limits.indexIntervalBytes || this.tixIndex!.entries === 0) {
      if (this.tixIndex!.maybeAppend(this.maxTimestamp, relativeOffset, position)) this.bytesSinceTimeEntry = 0;
    }
  }

  /** Rebuilds both indexes from the batches in [0, end) (their CRCs already verified). */
  rebuildIndexes(end: number): void {
    this.cq.reset();
    this.tix.reset();
    this.maxTimestamp = -1;
    this.bytesSinceTimeEntry = 0;
    this.reindexFrom(0, end);
  }

  /** Adds index entries for the batches in [from, end); entries at or past `from` are dropped first. */
  reindexFrom(from: number, end: number): void {
    const cq = this.cq;
    cq.truncateTo(cq.countBefore(from));
    const buf = this.data;
    let pos = from;
    // Time entries past the last batch kept in the queue are stale, even when no batch follows `from`.
    const firstRel = cq.entries > 0 ? cq.relativeOffsetAt(cq.entries - 1) + 1 : 0;
    this.tix.truncateFromOffset(firstRel);
    this.restoreMaxTimestamp(from);
    while (pos < end) {
      const baseOffset = readBaseOffset(buf, pos);
      const size = 12 + buf.readInt32BE(pos + 8);
      const maxTs = readMaxTimestamp(buf, pos);
      this.indexBatch(baseOffset, pos, size, maxTs);
      this.nextOffset = baseOffset + buf.readInt32BE(pos + LAST_OFFSET_DELTA_POS) + 1;
      pos += size;
    }
  }

  /**
   * Raises maxTimestamp to the largest record timestamp of the batches indexed before
   * `end`. The time index only samples it (its last entry may predate later batches
   * with larger timestamps), so the batch headers after that entry are read too.
   */
  restoreMaxTimestamp(end: number): void {
    const cq = this.cq;
    const tix = this.tix;
    let max = tix.lastTimestamp;
    let i = tix.entries > 0 ? cq.lookup(tix.lastRelativeOffset) + 1 : 0;
    for (; i < cq.entries && cq.positionAt(i) < end; i++) {
      const ts = readMaxTimestamp(this.data, cq.positionAt(i));
      if (ts > max) max = ts;
    }
    if (max > this.maxTimestamp) this.maxTimestamp = max;
  }
}
