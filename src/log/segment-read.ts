/**
 * Reads within a partition's segments that need nothing of the partition but its
 * segments: finding the segment and consume-queue entry of an offset, decoding a
 * slice with every batch verified, and the timestamp search. partition-log.ts owns
 * the segments' life (holds, the segment cache, retention); these only look.
 */
import { CommitLogError, ErrorCode } from '../errors.js';
import { decodeBatches, readMaxTimestamp, verifyBatch } from './batch.js';
import type { LogRecord } from './record.js';
import { corruptError, type Segment } from './segment.js';

/** The segment whose range holds `offset` (the last one starting at or before it); `segments` is sorted, non-empty. */
export function segmentFor(segments: readonly Segment[], offset: number): Segment {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (segments[mid]!.baseOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return segments[lo]!;
}

/**
 * The consume-queue entry of the batch holding `offset` (which the segment holds). An
 * entry that disagrees with the batch header it points at is a damaged index that
 * passed validation: the indexes are rebuilt from the log and the lookup repeated
 * (ERR_LOG_CORRUPT when the log itself fails).
 */
export function entryFor(segment: Segment, offset: number): number {
  for (let attempt = 0; ; attempt++) {
    const cq = segment.cq;
    const i = Math.max(0, cq.lookup(offset - segment.baseOffset));
    if (i < cq.entries && segment.entryHolds(i, offset)) return i;
    if (attempt > 0) throw corruptError(segment.logPath, i < cq.entries ? cq.positionAt(i) : 0, `no batch holds offset ${offset}`);
    segment.rebuildIndexesFromLog();
  }
}

/** ERR_CORRUPT_BATCH of stored data as ERR_LOG_CORRUPT naming the file and position; anything else as it is. */
function asLogCorrupt(err: unknown, segment: Segment, position: number, topic: string, partition: number, suffix = ''): unknown {
  if (!(err instanceof CommitLogError) || err.code !== ErrorCode.CORRUPT_BATCH) return err;
  return new CommitLogError(ErrorCode.LOG_CORRUPT, `${segment.logPath}: ${err.message}${suffix}`,
    { path: segment.logPath, position: position + (err.position ?? 0), topic, partition, cause: err });
}

/**
 * The records from `offset` on of a held slice (whole batches starting at
 * `firstOffset`), every batch's CRC verified and its base offset (outside the CRC)
 * continuing from the consume queue's: damage is ERR_LOG_CORRUPT, never returned.
 */
export function decodeSlice(slice: { segment: Segment; position: number; length: number; firstOffset: number }, offset: number, topic: string, partition: number): LogRecord[] {
  const view = slice.segment.view(slice.position, slice.length);
  try {
    let expectedBase = slice.firstOffset;
    for (let p = 0; p < view.length;) {
      const header = verifyBatch(view, p, view.length);
      if (header.baseOffset !== expectedBase) {
        throw new CommitLogError(ErrorCode.CORRUPT_BATCH, `corrupt batch at position ${p}: base offset ${header.baseOffset}, expected ${expectedBase}`, { position: p });
      }
      expectedBase = header.baseOffset + header.lastOffsetDelta + 1;
      p += header.size;
    }
    return decodeBatches(view, 0, view.length, offset);
  } catch (err) {
    throw asLogCorrupt(err, slice.segment, slice.position, topic, partition);
  }
}

/**
 * The batch of consume-queue entry `i` with its CRC checked (ERR_LOG_CORRUPT when it
 * fails); null when the batch is sound but the entry names another offset or size.
 */
function verifiedBatch(segment: Segment, i: number, topic: string, partition: number): Buffer | null {
  const cq = segment.cq;
  const position = cq.positionAt(i);
  const view = segment.view(position, cq.sizeAt(i));
  try {
    const header = verifyBatch(view, 0, view.length);
    if (header.size !== view.length || header.baseOffset !== segment.baseOffset + cq.relativeOffsetAt(i)) return null;
  } catch (err) {
    throw asLogCorrupt(err, segment, position, topic, partition, ` at position ${position}`);
  }
  return view;
}

/**
 * The first offset in `segment` whose record timestamp is >= `timestamp`: null when no
 * record there is late enough, undefined when an index entry disagrees with the log.
 */
export function offsetForTimestampIn(segment: Segment, timestamp: number, topic: string, partition: number): number | null | undefined {
  if (segment.sealed && segment.maxTimestamp >= 0 && segment.maxTimestamp < timestamp) return null;
  const cq = segment.cq;
  const t = segment.tix.lookupBefore(timestamp);
  let i = t < 0 ? 0 : Math.max(0, cq.lookup(segment.tix.relativeOffsetAt(t)));
  for (; i < cq.entries; i++) {
    // Verified like a read: a damaged timestamp must not answer, it is ERR_LOG_CORRUPT.
    const view = verifiedBatch(segment, i, topic, partition);
    if (view === null) return undefined;
    const maxTs = readMaxTimestamp(view, 0);
    if (maxTs < timestamp) continue;
    for (const record of decodeBatches(view, 0, view.length, 0)) {
      if (record.timestamp >= timestamp) return record.offset;
    }
  }
  return null;
}
