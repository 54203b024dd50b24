/**
 * Allocate-ahead (RocketMQ's AllocateMappedFileService): the next segment of a
 * partition is created when the active one is close to full (PREPARE_AT), under a
 * temporary name (`next.log.prepared`, ...): a sparse file of the logical segment size,
 * its first allocation step reserved (posix_fallocate; zero-filled under the sync
 * policy) and, with warm-up on, those pages faulted in, all on the thread pool, so a
 * roll does not stall an append. Preparing costs one step of disk, never a whole
 * segment. A roll renames the prepared files to the new base offset. Prepared files
 * left by a crash are removed when the partition opens.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { ioError } from '../errors.js';
import * as native from '../native.js';
import { ConsumeQueue } from '../index/consume-queue.js';
import { TimeIndex } from '../index/time-index.js';
import { preparedPaths, segmentPaths } from './file-names.js';
import { MIN_STEP_BYTES, Segment, WARM_AHEAD_BYTES, maxCqEntries, maxTixEntries, type SegmentLimits } from './segment.js';

/** The next segment is prepared once the active one holds this fraction of its size. */
export const PREPARE_AT = 0.75;

const ftruncate = promisify(fs.ftruncate);

export interface PreparedSegment {
  fd: number;
  mapping: ArrayBuffer;
  cq: ConsumeQueue;
  tix: TimeIndex;
  /** Bytes from 0 with space reserved (the first allocation step). */
  allocatedBytes: number;
  /** Whether its first allocated bytes were faulted in. */
  warm: boolean;
  /** Set by discardPrepared: closed and removed (a second discard does nothing). */
  discarded?: boolean;
}

/** Creates, allocates and warms the next segment's files. Rejects with ERR_DISK_FULL on a full disk. */
export async function prepareSegment(dir: string, limits: SegmentLimits, warm: boolean): Promise<PreparedSegment> {
  const paths = preparedPaths(dir);
  let fd = -1;
  let mapping: ArrayBuffer | null = null;
  let cq: ConsumeQueue | null = null;
  try {
    try {
      fd = fs.openSync(paths.log, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
    } catch (err) {
      throw ioError(err, 'creating segment failed', { path: paths.log });
    }
    const allocatedBytes = Math.min(limits.segmentBytes, MIN_STEP_BYTES);
    try {
      await ftruncate(fd, limits.segmentBytes);
    } catch (err) {
      throw ioError(err, 'creating segment failed', { path: paths.log });
    }
    // Zero-filled page by page under the sync policy (see Segment.startStep).
    await native.fallocateAsync(fd, 0, allocatedBytes, { path: paths.log }, limits.zeroFill === true);
    // A new file holding no data yet: this fdatasync can see no writeback error of data.
    if (limits.zeroFill === true) await native.fdatasync(fd, { path: paths.log });
    mapping = native.mmap(fd, limits.segmentBytes, 0, true, { path: paths.log });
    if (warm) await native.populate(mapping, 0, Math.min(allocatedBytes, WARM_AHEAD_BYTES), { path: paths.log });
    removeIfExists(paths.cq);
    removeIfExists(paths.tix);
    cq = ConsumeQueue.open(paths.cq, maxCqEntries(limits.segmentBytes), true);
    const tix = TimeIndex.open(paths.tix, maxTixEntries(limits.segmentBytes, limits.indexIntervalBytes), true);
    return { fd, mapping, cq, tix, allocatedBytes, warm };
  } catch (err) {
    cq?.close();
    if (mapping !== null) native.munmap(mapping);
    if (fd >= 0) fs.closeSync(fd);
    removeIfExists(paths.log);
    throw err;
  }
}

/** Gives prepared files the names of `baseOffset` and wraps them in an active Segment. */
export function activatePrepared(dir: string, prepared: PreparedSegment, baseOffset: number, limits: SegmentLimits): Segment {
  const from = preparedPaths(dir);
  const to = segmentPaths(dir, baseOffset);
  try {
    fs.renameSync(from.log, to.log);
  } catch (err) {
    throw ioError(err, 'renaming prepared segment failed', { path: from.log });
  }
  prepared.cq.rename(to.cq);
  prepared.tix.rename(to.tix);
  const segment = new Segment(dir, baseOffset, limits, false, baseOffset, limits.segmentBytes);
  segment.adopt(prepared.fd, prepared.mapping, prepared.cq, prepared.tix, prepared.allocatedBytes, prepared.allocatedBytes);
  if (prepared.warm) segment.markWarm(Math.min(prepared.allocatedBytes, WARM_AHEAD_BYTES));
  return segment;
}

/** Closes and removes prepared files that were never used. */
export function discardPrepared(dir: string, prepared: PreparedSegment | null): void {
  if (prepared !== null) {
    if (prepared.discarded === true) return;
    prepared.discarded = true;
    prepared.cq.close();
    prepared.tix.close();
    native.munmap(prepared.mapping);
    fs.closeSync(prepared.fd);
  }
  const paths = preparedPaths(dir);
  for (const file of [paths.log, paths.cq, paths.tix]) removeIfExists(file);
}

/**
 * Creates the first segment of an empty partition synchronously (at open): a sparse
 * file of the logical size, no space allocated yet (the first append allocates a step).
 */
export function createSegmentSync(dir: string, baseOffset: number, limits: SegmentLimits): Segment {
  const paths = segmentPaths(dir, baseOffset);
  let fd = -1;
  try {
    fd = fs.openSync(paths.log, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
    fs.ftruncateSync(fd, limits.segmentBytes);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    removeIfExists(paths.log);
    throw ioError(err, 'creating segment failed', { path: paths.log });
  }
  fs.closeSync(fd);
  removeIfExists(paths.cq);
  removeIfExists(paths.tix);
  const segment = new Segment(dir, baseOffset, limits, false, baseOffset, limits.segmentBytes);
  segment.open(true);
  return segment;
}

export function removeIfExists(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, 'removing file failed', { path: file });
  }
}
