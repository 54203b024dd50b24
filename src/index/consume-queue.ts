/**
 * The consume queue (`.cq`): dense, one entry per batch of its segment, in offset order.
 *
 *   +----------------+----------------+----------------+
 *   | relativeOffset |    position    |      size      |   12 bytes, u32 LE each
 *   +----------------+----------------+----------------+
 *   relativeOffset = batch base offset - segment base offset
 *   position       = byte position of the batch in the .log file
 *   size           = LOG_OVERHEAD + batchLength (never 0, so 0 marks unused space)
 *
 * Lookup of an offset is a binary search over a Uint32Array view of the mapping.
 * Concurrency and crash behaviour: see MappedIndex. `validate` checks the chain of
 * entries against the log's end so an inconsistent queue is rebuilt, never trusted.
 */
import { MappedIndex } from './mapped-index.js';

export const CQ_ENTRY_BYTES = 12;

export class ConsumeQueue extends MappedIndex {
  private u32: Uint32Array;

  private constructor(file: string, maxEntries: number, writable: boolean) {
    super(file, CQ_ENTRY_BYTES, maxEntries, writable);
    this.u32 = this.mapping === null ? new Uint32Array(0) : new Uint32Array(this.mapping);
    this.entries = this.countEntries();
  }

  static open(file: string, maxEntries: number, writable: boolean): ConsumeQueue {
    return new ConsumeQueue(file, maxEntries, writable);
  }

  /** Entries are contiguous from 0, so the first zero size marks the end (binary search). */
  private countEntries(): number {
    let lo = 0;
    let hi = Math.min(this.capacity, Math.floor(this.fileBytes / CQ_ENTRY_BYTES));
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.u32[mid * 3 + 2] !== 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  append(relativeOffset: number, position: number, size: number): void {
    this.ensureRoom();
    const i = this.entries * 3;
    this.u32[i] = relativeOffset;
    this.u32[i + 1] = position;
    this.u32[i + 2] = size;
    this.entries++;
  }

  relativeOffsetAt(i: number): number {
    return this.u32[i * 3];
  }

  positionAt(i: number): number {
    return this.u32[i * 3 + 1];
  }

  sizeAt(i: number): number {
    return this.u32[i * 3 + 2];
  }

  /** Index of the last entry whose relative offset is <= `relativeOffset`, or -1. */
  lookup(relativeOffset: number): number {
    let lo = 0;
    let hi = this.entries - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.u32[mid * 3] <= relativeOffset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Number of entries whose batch starts before byte `position`. */
  countBefore(position: number): number {
    let lo = 0;
    let hi = this.entries;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.u32[mid * 3 + 1] < position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * True when the entries form an unbroken chain from position 0 with increasing
   * offsets and the last ends exactly at `logEnd` (the segment's data end).
   */
  validate(logEnd: number): boolean {
    const u = this.u32;
    let expectedPos = 0;
    let lastRel = -1;
    for (let i = 0; i < this.entries; i++) {
      const rel = u[i * 3];
      const pos = u[i * 3 + 1];
      const size = u[i * 3 + 2];
      if (pos !== expectedPos || rel <= lastRel || size === 0) return false;
      expectedPos = pos + size;
      lastRel = rel;
    }
    return expectedPos === logEnd;
  }
}
