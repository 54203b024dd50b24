/**
 * Read-only access to a data directory's files for the offline tools (dump, verify,
 * `topics describe --dir`): which topics, partitions and segments are there, a
 * segment mapped read-only, and the native batch scan over it. Nothing here takes the
 * directory's lock or writes a byte; a directory served by a running broker can be
 * read, but its active segments change underneath (the tools say so).
 *
 * A target is a data directory (`<dir>/<topic>/<partition>/`), one partition's
 * directory (holding `.log` files), or a single `.log` file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../errors.js';
import { readGuardedJson } from '../index/checkpoint.js';
import { verifyBatch } from '../log/batch.js';
import { CQ_SUFFIX, LOG_SUFFIX, TIX_SUFFIX, parseBaseOffset, segmentPaths } from '../log/file-names.js';
import * as native from '../native.js';

export interface SegmentFiles {
  baseOffset: number;
  log: string;
  cq: string;
  tix: string;
  /** Size of the .log file. */
  logBytes: number;
}

export interface PartitionFiles {
  /** '' when the target was a bare partition directory or file outside a data directory. */
  topic: string;
  partition: number;
  dir: string;
  /** Sorted by base offset. */
  segments: SegmentFiles[];
}

export interface TopicFiles {
  name: string;
  dir: string;
  /** `topic.json`'s content; null when missing or failing its checksum. */
  config: Record<string, unknown> | null;
  partitions: PartitionFiles[];
}

export interface Located {
  /** The data directory, when the target was one (where `.lock` and `.clean-shutdown` live). */
  dataDir: string | null;
  topics: TopicFiles[];
}

export interface Filter {
  topic?: string;
  partition?: number;
}

/** Finds the segments of `target` (a data directory, a partition directory or a .log file). */
export function locate(target: string, filter: Filter = {}): Located {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (err) {
    throw new CommitLogError(ErrorCode.IO, `cannot read ${target}: ${(err as Error).message}`, { path: target, errno: (err as NodeJS.ErrnoException).code });
  }
  const abs = path.resolve(target);
  if (stat.isFile()) {
    const base = parseBaseOffset(path.basename(abs), LOG_SUFFIX);
    if (base < 0) throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `${target} is not a segment file (<20 digits>.log)`, { path: target });
    const dir = path.dirname(abs);
    const p = partitionFiles(dir, guessTopic(dir), guessPartition(dir));
    p.segments = p.segments.filter((s) => s.baseOffset === base);
    return { dataDir: null, topics: [{ name: p.topic, dir: path.dirname(dir), config: null, partitions: [p] }] };
  }
  const names = fs.readdirSync(abs);
  if (names.some((n) => parseBaseOffset(n, LOG_SUFFIX) >= 0)) {
    const p = partitionFiles(abs, guessTopic(abs), guessPartition(abs));
    return { dataDir: null, topics: [{ name: p.topic, dir: path.dirname(abs), config: null, partitions: [p] }] };
  }
  const topics: TopicFiles[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || (filter.topic !== undefined && name !== filter.topic)) continue;
    const dir = path.join(abs, name);
    if (!fs.statSync(dir).isDirectory()) continue;
    const stored = readGuardedJson(path.join(dir, 'topic.json'));
    const config = stored !== null && typeof stored === 'object' ? (stored as Record<string, unknown>) : null;
    const partitions = fs.readdirSync(dir)
      .filter((n) => /^\d+$/.test(n) && fs.statSync(path.join(dir, n)).isDirectory())
      .map(Number)
      .filter((p) => filter.partition === undefined || p === filter.partition)
      .sort((a, b) => a - b)
      .map((p) => partitionFiles(path.join(dir, String(p)), name, p));
    topics.push({ name, dir, config, partitions });
  }
  if (filter.topic !== undefined && topics.length === 0) {
    throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `no topic ${filter.topic} in ${target}`, { topic: filter.topic, path: target });
  }
  return { dataDir: abs, topics };
}

function guessTopic(partitionDir: string): string {
  return path.basename(path.dirname(partitionDir));
}

function guessPartition(partitionDir: string): number {
  const n = Number(path.basename(partitionDir));
  return Number.isSafeInteger(n) ? n : 0;
}

function partitionFiles(dir: string, topic: string, partition: number): PartitionFiles {
  const segments = fs.readdirSync(dir)
    .map((n) => parseBaseOffset(n, LOG_SUFFIX))
    .filter((b) => b >= 0)
    .sort((a, b) => a - b)
    .map((baseOffset) => {
      const paths = segmentPaths(dir, baseOffset);
      return { baseOffset, ...paths, logBytes: fs.statSync(paths.log).size };
    });
  return { topic, partition, dir, segments };
}

/** A file mapped read-only (an empty Buffer for an empty file); close() unmaps it. */
export interface MappedFile {
  data: Buffer;
  close(): void;
}

/** Maps `file` read-only; null when it does not exist. */
export function mapFile(file: string): MappedFile | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CommitLogError(ErrorCode.IO, `cannot open ${file}: ${(err as Error).message}`, { path: file });
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return { data: Buffer.alloc(0), close: () => undefined };
    const mapping = native.mmap(fd, size, 0, false, { path: file });
    return { data: Buffer.from(mapping), close: () => native.munmap(mapping, { path: file }) };
  } finally {
    fs.closeSync(fd);
  }
}

export interface ScanOutcome {
  /** End of the valid batches (the first byte not part of one). */
  dataEnd: number;
  batches: number;
  records: number;
  /** One past the last valid batch's last offset (the expected offset when there is none). */
  nextOffset: number;
  /** null when the scan ended at a batch length of 0 or the end of the file. */
  problem: string | null;
  /** Where unreadable non-zero bytes end (> dataEnd: a torn or corrupt tail). */
  extent: number;
}

const SCAN_STEP_BATCHES = 64 * 1024;
/** A run of zeros this long after the data ends the search for garbage (recovery's rule). */
export const TAIL_ZERO_RUN = 64 * 1024;

/**
 * Scans data[0, end) with the native scanner (length, magic, CRC32C, record count and
 * offset continuity from `expected`; -1 accepts any first offset), in steps so that
 * `onProgress` can report positions.
 */
export function scanSegment(data: Buffer, expected: number, onProgress?: (position: number) => void): ScanOutcome {
  const end = data.length;
  let position = 0;
  let batches = 0;
  let records = 0;
  let next = expected;
  let status: number = native.ScanStatus.END;
  for (;;) {
    const r = native.scanBatches(data, position, end, next, SCAN_STEP_BATCHES);
    position = r.position;
    batches += r.batches;
    records += r.records;
    if (r.batches > 0) next = r.nextOffset;
    status = r.status;
    onProgress?.(position);
    if (status !== native.ScanStatus.END || r.batches < SCAN_STEP_BATCHES) break;
  }
  const extent = position < end ? native.dataExtent(data, position, end, TAIL_ZERO_RUN) : position;
  let problem: string | null = null;
  if (status !== native.ScanStatus.END) problem = explain(data, position, status, next);
  else if (extent > position) problem = `${extent - position} bytes after the last valid batch are not a batch (torn write)`;
  return { dataEnd: position, batches, records, nextOffset: next, problem, extent };
}

/** Why the batch at `position` failed, in words (with the numbers verifyBatch gives). */
function explain(data: Buffer, position: number, status: number, expected: number): string {
  if (status === native.ScanStatus.BAD_OFFSET) {
    const base = Number(data.readBigInt64BE(position));
    return `batch base offset ${base}, expected ${expected} (offsets not contiguous)`;
  }
  try {
    verifyBatch(data, position, data.length);
  } catch (err) {
    return (err as Error).message.replace(/^corrupt batch at position \d+: /, '');
  }
  return native.scanStatusNames[status] ?? `scan status ${status}`;
}
