/**
 * Shared by the fault tests: a seeded PRNG, temp directories, the paths of a data
 * directory's files, an independent walk of the batches in a segment file (so tests
 * know batch boundaries without asking the code under test), a JS model of the
 * recovery's "extent of non-zero data" rule, and "crash" helpers that turn a cleanly
 * closed log into one that must be recovered.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { writeRecoveryPoint, type RecoveryPoint } from '../../src/index/checkpoint.js';
import { CQ_SUFFIX, LOG_SUFFIX, TIX_SUFFIX, parseBaseOffset } from '../../src/log/file-names.js';
export { rng, randInt, randBytes, testSeed as resolveSeed, type Rng } from '../helpers/tmp.js';

export const TOPIC = 't';
/** Recovery treats a run of this many zero bytes as the end of written data. */

/** A fresh directory removed when the test ends. */
export function tempDir(t: ExecutionContext, prefix = 'commitlog-fault-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function partitionDir(dir: string, topic = TOPIC, partition = 0): string {
  return path.join(dir, topic, String(partition));
}

export function markerPath(dir: string): string {
  return path.join(dir, '.clean-shutdown');
}

export function checkpointPath(dir: string, topic = TOPIC, partition = 0): string {
  return path.join(partitionDir(dir, topic, partition), 'recovery.checkpoint');
}

function stem(pdir: string, base: number): string {
  return path.join(pdir, String(base).padStart(20, '0'));
}

export function logPath(pdir: string, base: number): string {
  return stem(pdir, base) + LOG_SUFFIX;
}

export function cqPath(pdir: string, base: number): string {
  return stem(pdir, base) + CQ_SUFFIX;
}

export function tixPath(pdir: string, base: number): string {
  return stem(pdir, base) + TIX_SUFFIX;
}

/** Base offsets of the segments in a partition directory, ascending. */
export function segmentBases(pdir: string): number[] {
  return fs.readdirSync(pdir).map((n) => parseBaseOffset(n, LOG_SUFFIX)).filter((b) => b >= 0).sort((a, b) => a - b);
}

export interface DiskBatch {
  /** Base offset of the segment holding it. */
  segment: number;
  position: number;
  size: number;
  baseOffset: number;
  records: number;
}

/** Walks batch headers from position 0 until a zero length or the end of the buffer (no CRC checks). */
export function walkBatches(buf: Buffer, segment: number): DiskBatch[] {
  const out: DiskBatch[] = [];
  let pos = 0;
  while (pos + 61 <= buf.length) {
    const length = buf.readInt32BE(pos + 8);
    if (length <= 0 || pos + 12 + length > buf.length) break;
    out.push({ segment, position: pos, size: 12 + length, baseOffset: Number(buf.readBigInt64BE(pos)), records: buf.readInt32BE(pos + 57) });
    pos += 12 + length;
  }
  return out;
}

export interface DiskSegment {
  base: number;
  bytes: Buffer;
  batches: DiskBatch[];
  /** End of the last batch. */
  dataEnd: number;
}

/** Every segment of the partition as read from disk, with its batches. */
export function readSegments(pdir: string): DiskSegment[] {
  return segmentBases(pdir).map((base) => {
    const bytes = fs.readFileSync(logPath(pdir, base));
    const batches = walkBatches(bytes, base);
    const last = batches[batches.length - 1];
    return { base, bytes, batches, dataEnd: last === undefined ? 0 : last.position + last.size };
  });
}

/**
 * Model of recovery's tail sizing: the position just past the last non-zero byte in
 * buf[start, end) (recovery wipes everything past the new end, however many zeros
 * come between).
 */
export function dataExtent(buf: Uint8Array, start: number, end: number): number {
  for (let i = end; i > start; i--) if (buf[i - 1] !== 0) return i;
  return start;
}

/**
 * Model of the scanner's epoch rule: a batch's partition leader epoch (bytes 12..15),
 * when not negative, must not be below the last non-negative one before it. Returns
 * the epoch to compare the next batch with, or null when this batch breaks the rule.
 */
export function nextEpoch(data: Buffer, position: number, previous: number): number | null {
  const epoch = data.readInt32BE(position + 12);
  if (epoch < 0) return previous;
  return epoch < previous ? null : epoch;
}

/**
 * Turns a cleanly closed data directory into a crashed one: the clean-shutdown marker
 * is removed and the partition's recovery point is set to `point` (null: deleted, so
 * recovery scans every segment from the first).
 */
export function simulateCrash(dir: string, point: RecoveryPoint | null | 'keep', topic = TOPIC, partition = 0): void {
  fs.rmSync(markerPath(dir), { force: true });
  if (point === 'keep') return;
  const file = checkpointPath(dir, topic, partition);
  if (point === null) fs.rmSync(file, { force: true });
  else writeRecoveryPoint(file, point);
}

/** Writes bytes at a position of a file (no fsync needed: the process stays up). */
export function writeAt(file: string, position: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    fs.closeSync(fd);
  }
}

export function readAt(file: string, position: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    const n = fs.readSync(fd, b, 0, length, position);
    return b.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
