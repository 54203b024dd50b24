/**
 * The write warm-up window of an active segment (a Segment holds one): the pages just
 * ahead of the writer are faulted in on the thread pool, a chunk at a time, so the
 * first touch of a page does not happen on the append path. Kept apart from segment.ts
 * because it only needs the mapping and two positions, never the files or the indexes;
 * read warm-up (pages behind a reader) is read-warmup.ts.
 */
import * as native from '../native.js';

/** Warm-up window kept ahead of the writer, and the size of one populate call. */
export const WARM_AHEAD_BYTES = 32 * 1024 * 1024;
export const WARM_CHUNK_BYTES = 16 * 1024 * 1024;

export class WarmAhead {
  /** Pages below this position were faulted in ahead of the writer (warm-up). */
  warmedUpTo = 0;
  /** A populate call runs over the mapping (munmap would refuse it: EBUSY). */
  warming = false;
  /** Settles when the warm-up in flight (if any) is done with the mapping. */
  warmed: Promise<void> = Promise.resolve();

  /**
   * Keeps the pages ahead of the writer faulted in: when fewer than WARM_AHEAD_BYTES
   * are warm past writePosition, the next WARM_CHUNK_BYTES are populated on the thread
   * pool (RocketMQ's warm-up, done as a sliding window so an idle partition never pins
   * a whole segment of page cache). The first touch of a page never happens on the
   * append path while the writer is slower than the warm-up.
   */
  advance(mapping: ArrayBuffer, writePosition: number, allocatedBytes: number, path: string): void {
    if (this.warming) return;
    // Never past the allocation: populating a hole would allocate it behind our back.
    const limit = roundDownToPage(allocatedBytes);
    if (this.warmedUpTo - writePosition >= WARM_AHEAD_BYTES || this.warmedUpTo >= limit) return;
    const from = Math.max(this.warmedUpTo, writePosition);
    const length = Math.min(WARM_CHUNK_BYTES, limit - from);
    if (length <= 0) return;
    this.warming = true;
    this.warmed = native.populate(mapping, from, length, { path }).then(
      () => {
        this.warming = false;
        this.warmedUpTo = from + length;
      },
      () => {
        // Warm-up is an optimisation; a failure (e.g. the mapping closed) only costs speed.
        this.warming = false;
        this.warmedUpTo = limit;
      },
    );
  }
}

function roundDownToPage(n: number): number {
  return Math.floor(n / native.pageSize) * native.pageSize;
}
