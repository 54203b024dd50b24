/**
 * Test helpers for cold reads: whether a directory's filesystem can drop pages at all
 * (tmpfs keeps every page in memory, so nothing there is ever cold), and dropping the
 * pages of a segment the CommitLog has mapped (writes through the mapping left them in
 * this process's page tables, where fadvise cannot drop them).
 */
import fs from 'node:fs';
import type { CommitLog } from '../../src/log/commit-log.js';
import { Advice, dropPageCache, madvise } from '../../src/native.js';

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** True when `dir` is on a filesystem whose pages cannot leave memory (tmpfs, ramfs). */
export function inMemoryFs(dir: string): boolean {
  const type = fs.statfsSync(dir).type;
  return type === TMPFS_MAGIC || type === RAMFS_MAGIC;
}

/**
 * Drops every page of the segment holding `offset` from the page cache: unmaps them
 * from this process (MADV_DONTNEED on a shared file mapping keeps the data), writes
 * them back, then POSIX_FADV_DONTNEED. Returns the segment's mapping view.
 */
export function dropSegmentPages(log: CommitLog, topic: string, partition: number, offset: number): Buffer {
  const slice = log.readSlice(topic, partition, offset, 1);
  if (slice === null) throw new Error(`no data at ${topic}/${partition} offset ${offset}`);
  try {
    const data = slice.segment.data;
    madvise(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength, Advice.DONTNEED);
    dropPageCache(slice.fd, 0, 0);
    return data;
  } finally {
    slice.release();
  }
}

/**
 * MADV_RANDOM on a segment's mapping: a fault on it then reads only the page it needs.
 * Without it, the one page a fetch's index lookup reads through the mapping (the first
 * batch header, partition-log.ts) is a fault with "mmap read-around" of the device's
 * read_ahead_kb (8 MiB on some virtual disks), which would make most of a test's range
 * resident before the broker's residency check ever looks at it.
 */
export function noReadAround(view: Buffer): void {
  madvise(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength, Advice.RANDOM);
}
