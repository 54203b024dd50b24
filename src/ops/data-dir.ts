/**
 * Read-only access to a data directory's files for the offline tools (dump, verify,
 * `topics describe --dir`): which topics, partitions and segments are there, a file
 * read through a bounded window, and the native batch scan over it. Nothing here
 * takes the directory's lock or writes a byte.
 *
 * A directory served by a running broker can be read: its active segments change
 * underneath (their last batches may be half written), a segment may be deleted by
 * retention (an open file stays readable; one gone before it was opened is skipped),
 * and the broker seals an active segment by truncating it (and its indexes) to the
 * data they hold. That is why files are read with pread, never mapped: touching a
 * mapping past a file's new end raises SIGBUS and kills the process, while a read
 * there just comes back short, which the readers take as the end of the file.
 *
 * A target is a data directory (`<dir>/<topic>/<partition>/`), one partition's
 * directory (holding `.log` files), or a single `.log` file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode, ioError } from '../errors.js';
import { readGuardedJson } from '../index/checkpoint.js';
import { BATCH_HEADER_BYTES, BATCH_LENGTH_POS, LOG_OVERHEAD, verifyBatch } from '../log/batch.js';
import { LOG_SUFFIX, parseBaseOffset, segmentPaths } from '../log/file-names.js';
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
  const segments: SegmentFiles[] = [];
  const bases = fs.readdirSync(dir).map((n) => parseBaseOffset(n, LOG_SUFFIX)).filter((b) => b >= 0).sort((a, b) => a - b);
  for (const baseOffset of bases) {
    const paths = segmentPaths(dir, baseOffset);
    // Deleted since readdir (retention on a live directory): not there any more.
    const stat = fs.statSync(paths.log, { throwIfNoEntry: false });
    if (stat !== undefined) segments.push({ baseOffset, ...paths, logBytes: stat.size });
  }
  return { topic, partition, dir, segments };
}

/** Bytes a reader asks the kernel for at a time. */
export const WINDOW_BYTES = 1024 * 1024;

/**
 * A file read with pread into one reusable window. Reads past the end come back
 * short, also when the file shrank after it was opened (see the head of this file).
 * Memory: the window, grown to the largest single read asked for (a whole batch).
 * Not for concurrent use; close() releases the descriptor.
 */
export class FileReader {
  private window = Buffer.alloc(0);
  /** File position of window[0], and how many bytes of the window hold file data. */
  private windowStart = 0;
  private windowBytes = 0;

  private constructor(
    readonly path: string,
    private fd: number,
    /** Bytes when opened; the file may have shrunk since (currentSize()). */
    readonly size: number,
  ) {}

  /** Opens `file` for reading; null when it does not exist. */
  static open(file: string): FileReader | null {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError(err, 'cannot open', { path: file });
    }
    try {
      return new FileReader(file, fd, fs.fstatSync(fd).size);
    } catch (err) {
      fs.closeSync(fd);
      throw ioError(err, 'cannot stat', { path: file });
    }
  }

  /**
   * The bytes [position, position + length), fewer where the file ends now. A view of
   * the window: valid until the next call.
   */
  bytes(position: number, length: number): Buffer {
    const offset = position - this.windowStart;
    if (offset >= 0 && offset + length <= this.windowBytes) return this.window.subarray(offset, offset + length);
    const want = Math.max(length, WINDOW_BYTES);
    if (this.window.length < want) this.window = Buffer.allocUnsafe(want);
    let got = 0;
    try {
      while (got < want) {
        const n = fs.readSync(this.fd, this.window, got, want - got, position + got);
        if (n === 0) break; // the end of the file, wherever it is now
        got += n;
      }
    } catch (err) {
      this.windowBytes = 0;
      throw ioError(err, 'read failed', { path: this.path, position: position + got });
    }
    this.windowStart = position;
    this.windowBytes = got;
    return this.window.subarray(0, Math.min(length, got));
  }

  /** Position just past the last non-zero byte in [from, end), `from` when none (holes skipped). */
  lastDataByte(from: number, end: number): number {
    return native.lastDataByte(this.fd, from, end, { path: this.path });
  }

  /** The file's size now: below `size` once a broker sealed it meanwhile. */
  currentSize(): number {
    return fs.fstatSync(this.fd).size;
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
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
  /** The last stamped epoch seen (the one given when none was): the next segment's starting epoch. */
  epoch: number;
}

/** A run of zeros this long after the data ends the search for garbage (recovery's rule). */

/**
 * Scans `file` from position 0 with the native scanner (length, magic, CRC32C, record
 * count and offset continuity from `expected`; -1 accepts any first offset), one
 * window at a time, calling `onProgress` with the position after each.
 */
export function scanSegment(file: FileReader, expected: number, onProgress?: (position: number) => void, epoch = -1): ScanOutcome {
  let position = 0;
  let batches = 0;
  let records = 0;
  let next = expected;
  let status: number = native.ScanStatus.END;
  for (let want = WINDOW_BYTES; ; ) {
    const window = file.bytes(position, want);
    // Epochs never fall along a log (recovery's rule): carried across windows and segments.
    const r = native.scanBatches(window, 0, window.length, next, Number.MAX_SAFE_INTEGER, epoch);
    epoch = r.epoch;
    position += r.position;
    batches += r.batches;
    records += r.records;
    if (r.batches > 0) next = r.nextOffset;
    status = r.status;
    onProgress?.(position);
    if (window.length < want) break; // the file ends in this window
    want = WINDOW_BYTES;
    if (status === native.ScanStatus.END) {
      if (r.position + LOG_OVERHEAD <= window.length) break; // a batch length of 0: the end of the data
      // else the window ends inside a batch header: read on from it
    } else if (status === native.ScanStatus.TRUNCATED) {
      // The window ends inside a batch: read on from it with room for the whole batch,
      // unless it runs past the end of the file (then it is truncated indeed).
      const batchBytes = LOG_OVERHEAD + window.readInt32BE(r.position + BATCH_LENGTH_POS);
      if (batchBytes > file.size - position) break;
      want = Math.max(WINDOW_BYTES, batchBytes);
    } else {
      break;
    }
  }
  const extent = tailExtent(file, position, file.size);
  let problem: string | null = null;
  if (status !== native.ScanStatus.END) problem = explain(file, position, status, next);
  else if (extent > position) problem = `${extent - position} bytes after the last valid batch are not a batch (torn write)`;
  return { dataEnd: position, batches, records, nextOffset: next, problem, extent, epoch };
}

/**
 * Position just past the last non-zero byte of file[from, end): recovery wipes
 * everything up to it, however many zeros lie between.
 */
export function tailExtent(file: FileReader, from: number, end: number): number {
  return file.lastDataByte(from, end);
}

/** Why the scan stopped at `position`, in words (with the numbers verifyBatch gives). */
function explain(file: FileReader, position: number, status: number, expected: number): string {
  if (status === native.ScanStatus.BAD_OFFSET) {
    const base = Number(file.bytes(position, LOG_OVERHEAD).readBigInt64BE(0));
    return `batch base offset ${base}, expected ${expected} (offsets not contiguous)`;
  }
  return batchProblem(file, position) ?? native.scanStatusNames[status] ?? `scan status ${status}`;
}

/**
 * What is wrong with the batch at `position` (verifyBatch's reason, without its
 * position prefix), null when nothing is. Reads the whole batch only when the file
 * holds it, so a torn length cannot make it read the rest of the file.
 */
export function batchProblem(file: FileReader, position: number): string | null {
  const head = file.bytes(position, BATCH_HEADER_BYTES);
  const left = head.length < BATCH_HEADER_BYTES ? head.length : file.size - position;
  let batch = head;
  if (head.length >= LOG_OVERHEAD) {
    const batchLength = head.readInt32BE(BATCH_LENGTH_POS);
    if (batchLength >= BATCH_HEADER_BYTES - LOG_OVERHEAD) {
      if (batchLength > left - LOG_OVERHEAD) return `truncated: batch length ${batchLength} runs past the end (${left - LOG_OVERHEAD} bytes left)`;
      batch = file.bytes(position, LOG_OVERHEAD + batchLength);
    }
  }
  try {
    verifyBatch(batch, 0, batch.length);
    return null;
  } catch (err) {
    return withoutPosition(err);
  }
}

/** A batch error's message without its `corrupt batch at position N: ` prefix (the caller names the position). */
export function withoutPosition(err: unknown): string {
  return (err as Error).message.replace(/^corrupt batch at position \d+: /, '');
}
