/**
 * Recovery of one partition at open (Kafka's LogLoader, in small).
 *
 * After a clean close the recovery point is the exact end of the log: the active
 * segment is opened there and its indexes are only checked (and rebuilt from the log
 * when missing, short or inconsistent).
 *
 * After a crash, every segment from the recovery point on is scanned by the native
 * scanner (length, magic, record count, CRC32C, offset continuity per batch). The
 * first batch that fails ends the log: the bytes from there to the end of written data
 * are zeroed (so no stale bytes can ever parse as a batch), later segments are deleted,
 * the index entries past the recovery point are rebuilt from the scanned headers, and
 * what was dropped is reported. Damage before the recovery point is not a torn write:
 * it is ERR_LOG_CORRUPT naming the file and position, and nothing is truncated.
 */
import fs from 'node:fs';
import * as native from '../native.js';
import type { RecoveryPoint } from '../index/checkpoint.js';
import { CommitLogError, ErrorCode } from '../errors.js';
import { Segment, corruptError } from './segment.js';

/** What recovery did for one partition. */
export interface PartitionRecoveryReport {
  topic: string;
  partition: number;
  /** True when the log was closed cleanly and nothing had to be scanned. */
  clean: boolean;
  /** Where the scan started: segment base offset and byte position. */
  fromSegment: number;
  fromPosition: number;
  scannedBytes: number;
  /** Batches (or unparseable runs of bytes) dropped from the tail. */
  droppedBatches: number;
  /** Bytes dropped from the tail, across segments. */
  droppedBytes: number;
  /** Whole segments deleted because they followed the end of valid data. */
  droppedSegments: number;
  /** Segments whose .cq/.tix were rebuilt from the log. */
  rebuiltIndexes: number;
  /** Why the scan stopped where it did ('end of data' when nothing was dropped). */
  stopReason: string;
  durationMs: number;
  /**
   * Set when the recovery point could not be written after recovery because the disk
   * is full: the log opened (every record is readable, appends get ERR_DISK_FULL) and
   * the next crash scans from the older point again.
   */
  checkpointError?: string;
}

/** How recovery treats damage in a sealed segment that has later segments. */
export interface RecoverOptions {
  /**
   * false (open): ERR_LOG_CORRUPT naming file and position, nothing deleted.
   * true (`verify --repair`): the log is cut there and the later segments dropped.
   */
  repair: boolean;
}

/**
 * Recovers `segments` (sorted, at least one; the last becomes the active segment, open
 * read-write on return). Segments before the recovery point are left closed. Returns
 * the kept segments and the last epoch stamped in the log (the recovery point's when
 * no stamped batch was scanned).
 */
export async function recoverSegments(
  segments: Segment[],
  point: RecoveryPoint | null,
  clean: boolean,
  report: PartitionRecoveryReport,
  options: RecoverOptions = { repair: false },
): Promise<{ kept: Segment[]; epoch: number }> {
  const started = performance.now();
  const last = segments[segments.length - 1];
  const pointEpoch = point?.epoch ?? -1;
  if (clean && point !== null && point.segmentBaseOffset === last.baseOffset && point.position <= sizeOf(last)) {
    openActiveAt(last, point, report);
    report.clean = true;
    report.fromSegment = last.baseOffset;
    report.fromPosition = point.position;
    report.durationMs = performance.now() - started;
    return { kept: segments, epoch: pointEpoch };
  }
  report.clean = false;
  let startIdx = point === null ? -1 : segments.findIndex((s) => s.baseOffset === point.segmentBaseOffset);
  let startPos = 0;
  let expected = segments[0].baseOffset;
  let epoch = -1;
  if (startIdx < 0) startIdx = 0;
  else {
    startPos = point!.position;
    expected = point!.nextOffset;
    epoch = pointEpoch;
  }
  report.fromSegment = segments[startIdx].baseOffset;
  report.fromPosition = startPos;
  let keep = segments.length;
  for (let i = startIdx; i < segments.length; i++) {
    const segment = segments[i];
    const isLast = i === segments.length - 1;
    const fileBytes = sizeOf(segment);
    const from = i === startIdx ? startPos : 0;
    // Checked before open(true) extends the file: a failed open must leave it as found.
    if (from > fileBytes) throw corruptError(segment.logPath, fileBytes, `file is ${fileBytes} bytes, shorter than the recovery point ${from}`);
    // A sealed segment was trimmed to its data; a rolled one that crashed before its
    // seal still has its preallocated size, and its tail may be torn like the active one.
    const sealedOnDisk = !isLast && fileBytes < segment.segmentBytesLimit;
    segment.fileBytes = isLast ? Math.max(fileBytes, segment.fileBytes) : fileBytes;
    segment.open(true);
    if (from > 0) ensurePrefixIndexed(segment, from, expected, report);
    const data = segment.data;
    const scan = native.scanBatches(data, from, segment.fileBytes, expected, Number.MAX_SAFE_INTEGER, Math.max(epoch, -1));
    report.scannedBytes += scan.position - from;
    const end = scan.position;
    const nextBase = isLast ? -1 : segments[i + 1].baseOffset;
    const scanNext = scan.batches === 0 ? (from === 0 ? segment.baseOffset : expected) : scan.nextOffset;
    if (sealedOnDisk && !options.repair && (end !== fileBytes || nextBase !== scanNext)) {
      const reason = end !== fileBytes ? native.scanStatusNames[scan.status] ?? 'unknown' : `the next segment starts at offset ${nextBase}, this one ends at ${scanNext}`;
      segment.closeFiles();
      throw new CommitLogError(ErrorCode.LOG_CORRUPT,
        `${segment.logPath}: ${reason} at position ${end} of a sealed segment with later segments; nothing was deleted (commitlog verify --repair cuts the log here and drops what follows)`,
        { path: segment.logPath, position: end });
    }
    epoch = scan.epoch;
    // Everything past the new end is wiped, however it looks (a hole of zeros, then
    // old batches, is what a power loss can leave): no byte of an earlier life of the
    // file can be read, or parsed by a later recovery, again.
    const dataEnd = native.lastDataByte(segment.fdForTransfer, end, segment.fileBytes, { path: segment.logPath });
    const torn = dataEnd > end;
    if (torn) {
      report.droppedBytes += dataEnd - end;
      const found = native.countBatches(data, end, dataEnd);
      report.droppedBatches += found.batches + found.runs;
      report.stopReason = scan.status === native.ScanStatus.END
        ? 'a batch length of 0 followed by non-zero bytes'
        : native.scanStatusNames[scan.status] ?? 'unknown';
      native.zeroRange(segment.fdForTransfer, end, dataEnd - end, { path: segment.logPath });
      await native.fdatasync(segment.fdForTransfer, { path: segment.logPath });
    }
    segment.reindexFrom(from, end);
    if (scan.batches === 0 && from === 0) segment.nextOffset = segment.baseOffset;
    else if (scan.batches === 0) segment.nextOffset = expected;
    segment.writePosition = end;
    segment.flushPosition = from;
    expected = segment.nextOffset;
    if (torn || (!isLast && nextBase !== expected)) {
      if (!torn) report.stopReason = `next segment starts at offset ${nextBase}, expected ${expected}`;
      keep = i + 1;
      break;
    }
  }
  for (let j = keep; j < segments.length; j++) {
    const dropped = segments[j];
    report.droppedSegments++;
    const lost = droppedDataOf(dropped);
    report.droppedBytes += lost.bytes;
    report.droppedBatches += lost.batches;
    dropped.closeFiles();
    dropped.unlinkFiles();
  }
  const kept = segments.slice(0, keep);
  const active = kept[kept.length - 1];
  for (let i = startIdx; i < kept.length - 1; i++) {
    // A segment rolled just before the crash may not have been trimmed yet: seal it
    // again (idempotent for one that was: its data end is its file end).
    kept[i].sealed = false;
    await kept[i].seal();
    kept[i].closeFiles();
  }
  if (!active.isOpen || active.sealed || active.fileBytes < active.segmentBytesLimit) active.reopenActive();
  report.durationMs = performance.now() - started;
  return { kept, epoch };
}

/** Clean open: the log ends exactly at the recovery point; only the indexes are checked. */
function openActiveAt(segment: Segment, point: RecoveryPoint, report: PartitionRecoveryReport): void {
  segment.open(true);
  segment.writePosition = point.position;
  segment.flushPosition = point.position;
  segment.nextOffset = point.nextOffset;
  const relEnd = point.nextOffset - segment.baseOffset;
  const tix = segment.tix;
  const covered = tix.entries === 0 || (segment.timeEntryCoversBatch(0, point.position) && segment.timeEntryCoversBatch(tix.entries - 1, point.position));
  if (segment.cq.validate(point.position) && tix.validate(Math.max(relEnd, 1), Math.max(point.position, 1)) && covered) {
    segment.restoreMaxTimestamp(point.position);
    return;
  }
  const scan = native.scanBatches(segment.data, 0, point.position, segment.baseOffset);
  if (scan.position !== point.position || (scan.batches > 0 && scan.nextOffset !== point.nextOffset)) {
    throw corruptError(segment.logPath, scan.position, native.scanStatusNames[scan.status] ?? 'unknown');
  }
  segment.rebuildIndexes(point.position);
  report.rebuiltIndexes++;
}

/**
 * Before scanning from `from`, the index entries for [0, from) must describe exactly
 * that prefix; when they do not (deleted or damaged .cq), they are rebuilt from a CRC
 * scan of the prefix, which must itself be clean.
 */
function ensurePrefixIndexed(segment: Segment, from: number, expected: number, report: PartitionRecoveryReport): void {
  const cq = segment.cq;
  const n = cq.countBefore(from);
  let ok = n > 0 && cq.positionAt(0) === 0 && cq.relativeOffsetAt(0) === 0;
  for (let i = 0; ok && i < n; i++) {
    const endOfEntry = cq.positionAt(i) + cq.sizeAt(i);
    const nextStart = i + 1 < n ? cq.positionAt(i + 1) : from;
    if (endOfEntry !== nextStart) ok = false;
  }
  if (ok && n > 0) {
    const lastBase = segment.baseOffset + cq.relativeOffsetAt(n - 1);
    if (lastBase >= expected) ok = false;
  }
  if (ok) {
    trimTimeIndexTo(segment, from, expected);
    return;
  }
  const scan = native.scanBatches(segment.data, 0, from, segment.baseOffset);
  if (scan.position !== from || scan.nextOffset !== expected) {
    throw corruptError(segment.logPath, scan.position, native.scanStatusNames[scan.status] ?? 'unknown');
  }
  segment.rebuildIndexes(from);
  report.rebuiltIndexes++;
}

/**
 * Keeps the leading time-index entries that can describe the prefix [0, from): in
 * order, inside it, and each naming a batch the (already checked) consume queue holds.
 * The rest (stale entries past the point, or damage) is dropped; the index is sparse,
 * so fewer entries only mean longer lookups.
 */
function trimTimeIndexTo(segment: Segment, from: number, expected: number): void {
  const cq = segment.cq;
  const tix = segment.tix;
  const relEnd = expected - segment.baseOffset;
  let lastTs = -Infinity;
  let lastRel = -1;
  let lastPos = -1;
  let k = 0;
  for (; k < tix.entries; k++) {
    const ts = tix.timestampAt(k);
    const rel = tix.relativeOffsetAt(k);
    const pos = tix.positionAt(k);
    if (!(ts >= lastTs) || !Number.isFinite(ts) || rel <= lastRel || pos <= lastPos || rel >= relEnd || pos >= from) break;
    const j = cq.lookup(rel);
    if (j < 0 || cq.relativeOffsetAt(j) !== rel || cq.positionAt(j) !== pos) break;
    lastTs = ts;
    lastRel = rel;
    lastPos = pos;
  }
  // Sparse: dropping a backdated first entry (and everything after it) or a backdated
  // last one only lengthens lookups.
  if (k > 0 && !segment.timeEntryCoversBatch(0, from)) k = 0;
  while (k > 0 && !segment.timeEntryCoversBatch(k - 1, from)) k--;
  tix.truncateTo(k);
}

function sizeOf(segment: Segment): number {
  try {
    return fs.statSync(segment.logPath).size;
  } catch {
    return 0;
  }
}

/**
 * Bytes of data in a whole segment about to be deleted, and the batches (and runs of
 * other bytes) they hold: its file mapped read-only on its own (opening it as a sealed
 * segment would validate, even rebuild, its indexes, and fails for an active segment's
 * preallocated file).
 */
function droppedDataOf(segment: Segment): { bytes: number; batches: number } {
  const size = sizeOf(segment);
  if (size === 0) return { bytes: 0, batches: 0 };
  let fd = -1;
  try {
    fd = fs.openSync(segment.logPath, 'r');
    const bytes = native.lastDataByte(fd, 0, size, { path: segment.logPath });
    if (bytes === 0) return { bytes: 0, batches: 0 };
    const mapping = native.mmap(fd, size, 0, false, { path: segment.logPath });
    try {
      const found = native.countBatches(Buffer.from(mapping), 0, bytes);
      return { bytes, batches: found.batches + found.runs };
    } finally {
      native.munmap(mapping, { path: segment.logPath });
    }
  } catch {
    return { bytes: size, batches: 0 };
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}
