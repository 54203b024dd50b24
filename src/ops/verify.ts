/**
 * Offline verification of a data directory (`commitlog verify`), and its repair.
 *
 * verify reads every segment without writing anything: the native scanner checks each
 * batch (length, magic 2, CRC32C, record count, offsets contiguous within and across
 * segments), the bytes after the last valid batch must be zeros, each consume queue
 * must hold exactly one entry per batch, each time-index entry must name a batch and
 * carry the segment's running maximum timestamp at it, the recovery point must lie
 * on a batch boundary inside valid data, and topic.json must pass its checksum. Every
 * problem is reported as `FILE:POSITION: what` (POSITION is a byte in that file).
 * Files are read with pread, never mapped (data-dir.ts): a broker serving the
 * directory may seal a segment under the scan, truncating it and its indexes, and a
 * read past the new end comes back short where a mapping would raise SIGBUS.
 *
 * repair reuses the engine rather than a second implementation of truncation: it
 * deletes the index files verify found inconsistent (derived data), removes the clean
 * marker so that opening runs recovery (which truncates a torn tail at the first bad
 * batch past the recovery point and rebuilds index entries), opens every sealed
 * segment once (which rebuilds its indexes when they do not match its log), closes the
 * log cleanly and verifies again. Damage before a recovery point is not a torn write:
 * recovery refuses it (ERR_LOG_CORRUPT) and so does repair.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../errors.js';
import { readRecoveryPoint, type RecoveryPoint } from '../index/checkpoint.js';
import { BatchWalker } from '../log/batch-walker.js';
import { CommitLog } from '../log/commit-log.js';
import { CHECKPOINT_FILE } from '../log/file-names.js';
import * as native from '../native.js';
import { FileReader, locate, scanSegment, type Located, type PartitionFiles, type SegmentFiles } from './data-dir.js';

export interface Problem {
  file: string;
  position: number;
  message: string;
  /** 'index': derived data repair rebuilds; 'data': batches or metadata. */
  kind: 'data' | 'index';
}

export interface VerifyReport {
  problems: Problem[];
  topics: number;
  partitions: number;
  segments: number;
  batches: number;
  records: number;
  /** Bytes of valid batches. */
  bytes: number;
  /** The data directory had its clean-shutdown marker (null: the target was not a data directory). */
  cleanShutdown: boolean | null;
}

export interface VerifyOptions {
  topic?: string;
  partition?: number;
  /** Called with (bytes scanned so far, bytes in all, current file). */
  onProgress?: (done: number, total: number, file: string) => void;
}

const CLEAN_MARKER = '.clean-shutdown';
const CQ_ENTRY = 12;
const TIX_ENTRY = 16;

export function verifyTarget(target: string, options: VerifyOptions = {}): VerifyReport {
  const located = locate(target, options);
  return verifyLocated(located, options);
}

export function verifyLocated(located: Located, options: VerifyOptions = {}): VerifyReport {
  const report: VerifyReport = {
    problems: [], topics: located.topics.length, partitions: 0, segments: 0, batches: 0, records: 0, bytes: 0,
    cleanShutdown: located.dataDir === null ? null : fs.existsSync(path.join(located.dataDir, CLEAN_MARKER)),
  };
  const total = located.topics.reduce((n, t) => n + t.partitions.reduce((m, p) => m + p.segments.reduce((k, s) => k + s.logBytes, 0), 0), 0);
  let done = 0;
  for (const topic of located.topics) {
    if (located.dataDir !== null && topic.config === null) {
      report.problems.push({ file: path.join(topic.dir, 'topic.json'), position: 0, kind: 'data', message: 'topic metadata is missing or fails its checksum (opening rebuilds it with default settings)' });
    }
    for (const p of topic.partitions) {
      report.partitions++;
      verifyPartition(p, report, (position, file) => options.onProgress?.(done + position, total, file), (bytes) => (done += bytes));
    }
  }
  return report;
}

function verifyPartition(p: PartitionFiles, report: VerifyReport, progress: (position: number, file: string) => void, finished: (bytes: number) => void): void {
  const checkpoint = path.join(p.dir, CHECKPOINT_FILE);
  const point = fs.existsSync(checkpoint) ? readRecoveryPoint(checkpoint) : undefined;
  if (point === null) {
    report.problems.push({ file: checkpoint, position: 0, kind: 'index', message: 'recovery point fails its checksum (opening after a crash then scans the whole partition)' });
  } else if (point !== undefined && p.segments.length > 0 && point.segmentBaseOffset > p.segments[p.segments.length - 1]!.baseOffset) {
    report.problems.push({ file: checkpoint, position: 0, kind: 'data', message: `recovery point names segment ${point.segmentBaseOffset}, past the last segment` });
  }
  let expected = -1;
  let epoch = -1;
  p.segments.forEach((s, i) => {
    report.segments++;
    if (expected >= 0 && s.baseOffset !== expected) {
      report.problems.push({ file: s.log, position: 0, kind: 'data', message: `segment starts at offset ${s.baseOffset}, but the previous one ends at ${expected} (opening fails with ERR_LOG_CORRUPT; verify --repair drops it and the segments after it)` });
    }
    const file = FileReader.open(s.log);
    if (file === null) return;
    try {
      const scan = scanSegment(file, s.baseOffset, (position) => progress(position, s.log), epoch);
      epoch = scan.epoch;
      report.batches += scan.batches;
      report.records += scan.records;
      report.bytes += scan.dataEnd;
      const isLast = i === p.segments.length - 1;
      if (scan.problem !== null) {
        const where = isLast
          ? 'recovery truncates the log here if it lies past the recovery point'
          : 'a sealed segment with later segments: opening fails with ERR_LOG_CORRUPT; verify --repair cuts the log here and drops the later segments';
        report.problems.push({ file: s.log, position: scan.dataEnd, kind: 'data', message: `${scan.problem} (${where})` });
      }
      const batches = batchesOf(file, scan.dataEnd, s.baseOffset);
      // Past damaged data the index entries describe what the batches were, not stale state.
      const damaged = scan.problem !== null;
      checkConsumeQueue(s, batches, report, damaged);
      checkTimeIndex(s, batches, report, scan.dataEnd, damaged);
      if (point !== null && point !== undefined && point.segmentBaseOffset === s.baseOffset) checkRecoveryPoint(checkpoint, point, s, batches, scan.dataEnd, report);
      expected = scan.batches > 0 ? scan.nextOffset : s.baseOffset;
    } finally {
      file.close();
      finished(s.logBytes);
    }
  });
}

/** The valid batches' headers as parallel arrays (base offsets, positions, sizes, running max timestamps). */
interface Batches {
  count: number;
  relativeOffsets: Float64Array;
  positions: Float64Array;
  sizes: Float64Array;
  runningMax: Float64Array;
  nextOffsets: Float64Array;
}

function batchesOf(file: FileReader, end: number, baseOffset: number): Batches {
  const relativeOffsets: number[] = [];
  const positions: number[] = [];
  const sizes: number[] = [];
  const runningMax: number[] = [];
  const nextOffsets: number[] = [];
  let max = -1;
  // The scan saw whole batches up to `end`; a walk that stops earlier means the file shrank since.
  const walker = new BatchWalker(file, { end });
  for (let b = walker.next(); b !== null; b = walker.next()) {
    const h = b.header;
    max = Math.max(max, h.maxTimestamp);
    relativeOffsets.push(h.baseOffset - baseOffset);
    positions.push(b.position);
    sizes.push(h.size);
    runningMax.push(max);
    nextOffsets.push(h.baseOffset + h.lastOffsetDelta + 1);
  }
  return {
    count: positions.length, relativeOffsets: Float64Array.from(relativeOffsets), positions: Float64Array.from(positions), sizes: Float64Array.from(sizes),
    runningMax: Float64Array.from(runningMax), nextOffsets: Float64Array.from(nextOffsets),
  };
}

/** One entry per batch, exactly, then nothing but zeros. */
function checkConsumeQueue(s: SegmentFiles, b: Batches, report: VerifyReport, damaged: boolean): void {
  const file = FileReader.open(s.cq);
  if (file === null) {
    report.problems.push({ file: s.cq, position: 0, kind: 'index', message: 'consume queue is missing (rebuilt from the log when the segment is opened)' });
    return;
  }
  try {
    const capacity = Math.floor(file.size / CQ_ENTRY);
    for (let i = 0; i < b.count; i++) {
      const at = i * CQ_ENTRY;
      const e = i < capacity ? file.bytes(at, CQ_ENTRY) : null;
      if (e === null || e.length < CQ_ENTRY) {
        report.problems.push({ file: s.cq, position: at, kind: 'index', message: `consume queue ends after ${i} entries, the log has ${b.count} batches` });
        return;
      }
      const rel = e.readUInt32LE(0);
      const pos = e.readUInt32LE(4);
      const size = e.readUInt32LE(8);
      if (size === 0) {
        report.problems.push({ file: s.cq, position: at, kind: 'index', message: `consume queue has ${i} entries, the log has ${b.count} batches` });
        return;
      }
      if (rel !== b.relativeOffsets[i] || pos !== b.positions[i] || size !== b.sizes[i]) {
        report.problems.push({
          file: s.cq, position: at, kind: 'index',
          message: `entry ${i} is (relative offset ${rel}, position ${pos}, size ${size}); the log's batch ${i} is (${b.relativeOffsets[i]}, ${b.positions[i]}, ${b.sizes[i]})`,
        });
        return;
      }
    }
    const after = b.count * CQ_ENTRY;
    const next = damaged ? null : file.bytes(after, CQ_ENTRY);
    if (next !== null && next.length === CQ_ENTRY && next.readUInt32LE(8) !== 0) {
      report.problems.push({ file: s.cq, position: after, kind: 'index', message: `consume queue has entries past the log's ${b.count} batches (stale entries)` });
    }
  } finally {
    file.close();
  }
}

/** Every entry names a batch and holds the segment's running max timestamp there; order holds. */
function checkTimeIndex(s: SegmentFiles, b: Batches, report: VerifyReport, dataEnd: number, damaged: boolean): void {
  const file = FileReader.open(s.tix);
  if (file === null) {
    report.problems.push({ file: s.tix, position: 0, kind: 'index', message: 'time index is missing (rebuilt from the log when the segment is opened)' });
    return;
  }
  try {
    const n = Math.floor(file.size / TIX_ENTRY);
    // Short (the file was trimmed by a seal meanwhile) counts as unused.
    const entry = (i: number): Buffer | null => {
      const e = file.bytes(i * TIX_ENTRY, TIX_ENTRY);
      return e.length === TIX_ENTRY ? e : null;
    };
    const used = (i: number): boolean => {
      const e = entry(i);
      return e !== null && (e.readDoubleLE(0) !== 0 || e.readUInt32LE(8) !== 0 || e.readUInt32LE(12) !== 0);
    };
    // As TimeIndex counts them: an all-zero first entry counts only when a second follows.
    let entries = n > 0 && used(0) ? 1 : 0;
    for (let i = 1; i < n && used(i); i++) entries = i + 1;
    let lastTs = -Infinity;
    let lastRel = -1;
    for (let k = 0; k < entries; k++) {
      const at = k * TIX_ENTRY;
      const e = entry(k);
      if (e === null) return;
      const ts = e.readDoubleLE(0);
      const rel = e.readUInt32LE(8);
      const pos = e.readUInt32LE(12);
      if (damaged && pos >= dataEnd) return;
      const j = lastAtOrBefore(b.relativeOffsets, b.count, rel);
      const i = j >= 0 && b.relativeOffsets[j] === rel ? j : undefined;
      let problem: string | null = null;
      if (i === undefined || b.positions[i] !== pos) problem = `entry ${k} (relative offset ${rel}, position ${pos}) names no batch of the log`;
      else if (ts !== b.runningMax[i]) problem = `entry ${k} has timestamp ${ts}; the largest timestamp up to that batch is ${b.runningMax[i]}`;
      else if (ts < lastTs || rel <= lastRel) problem = `entry ${k} is out of order (timestamps and offsets must increase along the file)`;
      if (problem !== null) {
        report.problems.push({ file: s.tix, position: at, kind: 'index', message: problem });
        return;
      }
      lastTs = ts;
      lastRel = rel;
    }
  } finally {
    file.close();
  }
}

/** The recovery point must be a batch boundary inside valid data, with the right next offset. */
function checkRecoveryPoint(file: string, point: RecoveryPoint, s: SegmentFiles, b: Batches, dataEnd: number, report: VerifyReport): void {
  let next = point.position === 0 ? s.baseOffset : -1;
  const i = lastAtOrBefore(b.positions, b.count, point.position - 1);
  if (point.position > 0 && i >= 0 && b.positions[i]! + b.sizes[i]! === point.position) next = b.nextOffsets[i]!;
  if (point.position > dataEnd || next !== point.nextOffset) {
    report.problems.push({
      file, position: 0, kind: 'data',
      message: `recovery point (segment ${point.segmentBaseOffset}, position ${point.position}, next offset ${point.nextOffset}) is not the end of a valid batch (valid data of ${s.log} ends at ${dataEnd}): data before it is damaged and opening fails with ERR_LOG_CORRUPT`,
    });
  }
}

/** Index of the last element of sorted `values[0, count)` that is <= `value`, or -1. */
function lastAtOrBefore(values: Float64Array, count: number, value: number): number {
  let lo = 0;
  let hi = count - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= value) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

export interface RepairResult {
  /** Index files deleted before opening (rebuilt by the engine). */
  removedIndexes: string[];
  /** What the engine's recovery reported (one line per partition that changed). */
  recovered: string[];
  /** Sealed segments whose indexes the engine checked by opening them. */
  sealedChecked: number;
  /** Verification after the repair. */
  after: VerifyReport;
}

/**
 * Repairs the data directory `dir` with the engine (see the head of this file). The
 * directory must not be in use (ERR_LOCKED); ERR_LOG_CORRUPT when damage lies before a
 * recovery point.
 */
export async function repairDataDir(dir: string, before: VerifyReport, options: VerifyOptions = {}): Promise<RepairResult> {
  const located = locate(dir);
  if (located.dataDir === null) throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `--repair needs a data directory, not ${dir}`, { path: dir });
  ensureUnlocked(located.dataDir);
  const removedIndexes: string[] = [];
  for (const problem of before.problems) {
    if (problem.kind !== 'index' || problem.file.endsWith(CHECKPOINT_FILE) || removedIndexes.includes(problem.file)) continue;
    try {
      fs.unlinkSync(problem.file);
      removedIndexes.push(problem.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  fs.rmSync(path.join(located.dataDir, CLEAN_MARKER), { force: true });
  const recovered: string[] = [];
  const logger = {
    info: () => undefined,
    warn: (_fields: object, message: string) => void recovered.push(message),
  };
  const log = await CommitLog.open({ dir: located.dataDir, logger, retentionCheckIntervalMs: 0, repair: true });
  let sealedChecked = 0;
  try {
    for (const topic of log.listTopics()) {
      for (const p of log.describeTopic(topic).partitions) {
        const files = locate(path.join(located.dataDir, topic, String(p.partition))).topics[0]!.partitions[0]!;
        // Reading a sealed segment opens it, which checks its indexes against its log
        // and rebuilds them from a CRC scan when they do not match.
        for (const s of files.segments.slice(0, -1)) {
          if (s.baseOffset < p.logStartOffset) continue;
          log.read(topic, p.partition, s.baseOffset, { maxBytes: 1 });
          sealedChecked++;
        }
      }
    }
  } finally {
    await log.close();
  }
  return { removedIndexes, recovered, sealedChecked, after: verifyTarget(located.dataDir, options) };
}

/** ERR_LOCKED when a broker (or any CommitLog) holds the directory. */
function ensureUnlocked(dataDir: string): void {
  const lock = path.join(dataDir, '.lock');
  if (!fs.existsSync(lock)) return;
  const fd = fs.openSync(lock, 'r');
  try {
    if (!native.tryLock(fd, { path: lock })) {
      throw new CommitLogError(ErrorCode.LOCKED, `data directory ${dataDir} is in use (lock file ${lock}); stop the broker first`, { path: dataDir });
    }
  } finally {
    fs.closeSync(fd); // closing the descriptor releases the flock
  }
}

/**
 * Takes the directory's lock for the duration of a read-only verify, so no broker
 * starts writing meanwhile. Returns the release function, or null when another process
 * holds it (the caller warns: live segments change under the scan).
 */
export function lockForReading(dataDir: string): (() => void) | null {
  const lock = path.join(dataDir, '.lock');
  if (!fs.existsSync(lock)) return () => undefined;
  const fd = fs.openSync(lock, 'r');
  if (!native.tryLock(fd, { path: lock })) {
    fs.closeSync(fd);
    return null;
  }
  return () => fs.closeSync(fd);
}
