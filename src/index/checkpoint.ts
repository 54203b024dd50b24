/**
 * Small metadata files guarded by XXH3: the partition recovery point and the topic
 * configuration. Format: one line of JSON, then one line `xxh3:<16 hex digits>` over
 * the JSON line's bytes. Written to a temporary file, fsynced, renamed over the old
 * one, and the directory fsynced, so a crash leaves either the old or the new file.
 * A file whose checksum does not match reads as missing (`null`): both kinds are
 * derived or defaulted state, and the caller falls back to a full scan.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ioError } from '../errors.js';
import { xxh3Hex } from '../hash.js';

function guardedText(value: unknown): string {
  const json = JSON.stringify(value);
  return `${json}\nxxh3:${xxh3Hex(json)}\n`;
}

/**
 * writeGuardedJson on the thread pool: writes, fsyncs and renames off the event loop,
 * so a checkpoint or topic file written while the broker serves traffic never stalls
 * it. Writes of the same file must not overlap (the caller serialises them).
 */
export async function writeGuardedJsonAsync(file: string, value: unknown, what = 'writing metadata file failed'): Promise<void> {
  const text = guardedText(value);
  const tmp = `${file}.tmp`;
  try {
    const handle = await fs.promises.open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
    await fsyncDirAsync(path.dirname(file));
  } catch (err) {
    // A half-written temporary file (ENOSPC) would hold space the disk has no more of.
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(err, what, { path: file });
  }
}

/** The synchronous form, for open paths that run before any traffic. */
export function writeGuardedJson(file: string, value: unknown): void {
  const text = guardedText(value);
  const tmp = `${file}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(path.dirname(file));
  } catch (err) {
    // As the async form; a failure to remove it must not hide the write's own error.
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // left behind: the next write of the same file overwrites it (a partition's open also removes *.tmp)
    }
    throw ioError(err, 'writing metadata file failed', { path: file });
  }
}

/** The stored value, or null when the file is missing, torn or fails its checksum. */
export function readGuardedJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(err, 'reading metadata file failed', { path: file });
  }
  const lines = text.split('\n');
  if (lines.length < 2 || !lines[1].startsWith('xxh3:')) return null;
  if (xxh3Hex(lines[0]) !== lines[1].slice(5)) return null;
  try {
    return JSON.parse(lines[0]) as unknown;
  } catch {
    return null;
  }
}

/** fsync of a directory on the thread pool (a rename or unlink in it made durable). */
export async function fsyncDirAsync(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The recovery point of a partition: every byte of the log before (segmentBaseOffset,
 * position) is flushed and valid, and so are the index entries describing it.
 */
export interface RecoveryPoint {
  segmentBaseOffset: number;
  position: number;
  nextOffset: number;
  /** The epoch the partition stamps into its batches (absent in files of older versions). */
  epoch?: number;
}

export function readRecoveryPoint(file: string): RecoveryPoint | null {
  const v = readGuardedJson(file) as Partial<RecoveryPoint> | null;
  if (v === null || typeof v !== 'object') return null;
  const { segmentBaseOffset, position, nextOffset, epoch } = v;
  if (![segmentBaseOffset, position, nextOffset].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) return null;
  const point: RecoveryPoint = { segmentBaseOffset: segmentBaseOffset!, position: position!, nextOffset: nextOffset! };
  if (Number.isInteger(epoch) && epoch! >= 0 && epoch! <= 0x7fffffff) point.epoch = epoch;
  return point;
}

export function writeRecoveryPoint(file: string, point: RecoveryPoint): void {
  writeGuardedJson(file, { v: 1, ...point });
}

export function writeRecoveryPointAsync(file: string, point: RecoveryPoint): Promise<void> {
  return writeGuardedJsonAsync(file, { v: 1, ...point });
}
