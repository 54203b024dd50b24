/**
 * What a read of the log reads through mappings on the calling thread, brought into the
 * page cache on the thread pool first (issue 9.3; architecture.md, "Fetch path").
 *
 * A read (readSlice) is synchronous. On data that is not in the page cache it can wait
 * for the disk in two places, on the event loop of a broker:
 *   - opening a sealed segment that is not open (SegmentCache): validating its consume
 *     queue (the whole .cq), its time index and the last batch header of its .log;
 *   - the lookup of the offset: the batch header the consume-queue entry points at.
 * A page fault through a mapping reads that page and, by the kernel's read-around, up
 * to `read_ahead_kb` about it, synchronously. `warmForRead` reads the same bytes with
 * pread on the pool (native.prefetch, through descriptors of its own, so no segment
 * descriptor can close under a pool job), then opens the segment, so that the read
 * that follows finds every page resident. It is an optimisation only: it never
 * throws, and whatever it missed (a segment evicted again, a file deleted meanwhile)
 * the read still does correctly, on the calling thread.
 */
import fs from 'node:fs';
import * as native from '../native.js';
import { CQ_ENTRY_BYTES } from '../index/consume-queue.js';
import { BATCH_HEADER_BYTES } from './batch.js';
import { segmentPaths } from './file-names.js';
import type { Segment } from './segment.js';

/**
 * Warms what a read of `offset` in `segment` reads on the calling thread. `use` opens a
 * sealed segment through the partition's segment cache (called only once its files are
 * in the page cache); it is not called for a segment that was deleted meanwhile.
 */
export async function warmForRead(segment: Segment, offset: number, use: (segment: Segment) => void): Promise<void> {
  try {
    if (segment.sealed && !segment.isOpen) {
      const paths = segmentPaths(segment.dir, segment.baseOffset);
      const [lastPosition] = await Promise.all([warmConsumeQueue(paths.cq), warmFile(paths.tix, 0, -1)]);
      // Opening reads the last batch's header (its maximum timestamp).
      if (lastPosition >= 0) await warmFile(paths.log, lastPosition, BATCH_HEADER_BYTES);
      if (segment.deleted || segment.isOpen) return;
      use(segment);
    }
    if (!segment.isOpen || segment.deleted) return;
    const cq = segment.cq;
    const i = Math.max(0, cq.lookup(offset - segment.baseOffset));
    if (i >= cq.entries) return;
    const position = cq.positionAt(i);
    const data = segment.data;
    const end = Math.min(position + BATCH_HEADER_BYTES, data.length);
    if (end <= position) return;
    const cold = native.firstNonResident(data.buffer as ArrayBuffer, data.byteOffset + position, end - position) - data.byteOffset;
    if (cold >= end) return;
    await warmFile(segment.logPath, cold, end - cold);
  } catch {
    // An optimisation: the read itself reports what is wrong.
  }
}

/**
 * Reads [position, position + length) of `file` (length -1: to its end) into the page
 * cache on the pool, through a descriptor of its own. Missing files are skipped.
 */
async function warmFile(file: string, position: number, length: number): Promise<void> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY);
  } catch {
    return;
  }
  try {
    const n = length >= 0 ? length : (await handle.stat()).size - position;
    // Exactly the range: the kernel's readahead would read pages no read here needs.
    if (n > 0) await native.prefetch(handle.fd, position, n, { path: file }, true);
  } finally {
    await handle.close();
  }
}

/**
 * Warms a sealed segment's whole consume queue (opening validates every entry) and
 * returns the log position of its last batch, -1 when there is none or it cannot tell.
 */
async function warmConsumeQueue(file: string): Promise<number> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY);
  } catch {
    return -1;
  }
  try {
    const size = (await handle.stat()).size;
    if (size < CQ_ENTRY_BYTES) return -1;
    await native.prefetch(handle.fd, 0, size, { path: file });
    // The queue is trimmed to its entries when sealed; read its last page (now cached)
    // and take the last entry with a size (0 marks unused space).
    const tail = Math.min(size - (size % CQ_ENTRY_BYTES), 4096 - (4096 % CQ_ENTRY_BYTES));
    const start = size - (size % CQ_ENTRY_BYTES) - tail;
    const buf = Buffer.alloc(tail);
    const { bytesRead } = await handle.read(buf, 0, tail, start);
    for (let at = bytesRead - CQ_ENTRY_BYTES; at >= 0; at -= CQ_ENTRY_BYTES) {
      if (buf.readUInt32LE(at + 8) !== 0) return buf.readUInt32LE(at + 4);
    }
    return -1;
  } finally {
    await handle.close();
  }
}
