/**
 * The time index (`.tix`): sparse, one entry when at least `indexIntervalBytes` of log
 * were written since the last one and the largest timestamp seen grew, plus one at seal.
 *
 *   +-------------------------------+----------------+----------------+
 *   |   maxTimestamp (f64 LE, ms)   | relativeOffset |    position    |   16 bytes
 *   +-------------------------------+----------------+----------------+
 *   maxTimestamp   = largest record timestamp in the segment up to and including the
 *                    batch at relativeOffset (non-decreasing along the file)
 *   relativeOffset = base offset of that batch - segment base offset
 *   position       = its byte position in the .log file
 *
 * Answers "where to start looking for the first record at or after time T": the last
 * entry whose timestamp is < T bounds the search from below. Concurrency and crash
 * behaviour: see MappedIndex (derived, rebuilt from the log).
 */
import { MappedIndex } from './mapped-index.js';

export const TIX_ENTRY_BYTES = 16;

export class TimeIndex extends MappedIndex {
  private f64: Float64Array;
  private u32: Uint32Array;

  private constructor(file: string, maxEntries: number, writable: boolean) {
    super(file, TIX_ENTRY_BYTES, maxEntries, writable);
    this.f64 = this.mapping === null ? new Float64Array(0) : new Float64Array(this.mapping);
    this.u32 = this.mapping === null ? new Uint32Array(0) : new Uint32Array(this.mapping);
    this.entries = this.countEntries();
  }

  static open(file: string, maxEntries: number, writable: boolean): TimeIndex {
    return new TimeIndex(file, maxEntries, writable);
  }

  /**
   * Every entry but the first has a non-zero relative offset and position. The first
   * may be all zeros (timestamp 0 at offset 0, position 0): it is counted when a second
   * entry follows, and alone it says nothing an empty index does not (lookups start at
   * position 0 either way).
   */
  private countEntries(): number {
    const n = Math.min(this.capacity, Math.floor(this.fileBytes / TIX_ENTRY_BYTES));
    if (n === 0) return 0;
    const used = (i: number): boolean => this.f64[i * 2] !== 0 || this.u32[i * 4 + 2] !== 0 || this.u32[i * 4 + 3] !== 0;
    let count = used(0) ? 1 : 0;
    // Sparse and small (one entry per indexIntervalBytes): a linear scan is cheap.
    for (let i = 1; i < n && used(i); i++) count = i + 1;
    return count;
  }

  get lastTimestamp(): number {
    return this.entries === 0 ? -1 : this.f64[(this.entries - 1) * 2];
  }

  get lastRelativeOffset(): number {
    return this.entries === 0 ? -1 : this.u32[(this.entries - 1) * 4 + 2];
  }

  timestampAt(i: number): number {
    return this.f64[i * 2];
  }

  relativeOffsetAt(i: number): number {
    return this.u32[i * 4 + 2];
  }

  positionAt(i: number): number {
    return this.u32[i * 4 + 3];
  }

  /** Appends when the timestamp grew (or `force` at seal and the entry is new). */
  maybeAppend(maxTimestamp: number, relativeOffset: number, position: number, force = false): boolean {
    if (this.entries > 0) {
      const lastTs = this.lastTimestamp;
      if (maxTimestamp < lastTs) return false;
      if (maxTimestamp === lastTs && !force) return false;
      if (relativeOffset <= this.lastRelativeOffset) return false;
    }
    this.ensureRoom();
    const i = this.entries;
    this.f64[i * 2] = maxTimestamp;
    this.u32[i * 4 + 2] = relativeOffset;
    this.u32[i * 4 + 3] = position;
    this.entries++;
    return true;
  }

  /** Index of the last entry with timestamp < `timestamp`, or -1. */
  lookupBefore(timestamp: number): number {
    let lo = 0;
    let hi = this.entries - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.f64[mid * 2] < timestamp) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * True when offsets and positions increase, timestamps never decrease, and every
   * entry lies inside the segment's data (relativeOffset < `relativeEnd`, position <
   * `logEnd`).
   */
  validate(relativeEnd: number, logEnd: number): boolean {
    let lastRel = -1;
    let lastPos = -1;
    let lastTs = -Infinity;
    for (let i = 0; i < this.entries; i++) {
      const ts = this.f64[i * 2];
      const rel = this.u32[i * 4 + 2];
      const pos = this.u32[i * 4 + 3];
      if (!(ts >= lastTs) || rel <= lastRel || pos <= lastPos || rel >= relativeEnd || pos >= logEnd) return false;
      lastTs = ts;
      lastRel = rel;
      lastPos = pos;
    }
    return true;
  }

  /** Drops entries at or past `relativeOffset`. */
  truncateFromOffset(relativeOffset: number): void {
    let n = this.entries;
    while (n > 0 && this.u32[(n - 1) * 4 + 2] >= relativeOffset) n--;
    this.truncateTo(n);
  }
}
