/**
 * Allocate-ahead (RocketMQ's AllocateMappedFileService): the next segment of a
 * partition is created before the active one is full, under a temporary name
 * (`next.log.prepared`, ...), with posix_fallocate and its pages faulted in on the
 * thread pool, so neither a roll nor the first touch of a page stalls an append.
 * A roll renames the prepared files to the new base offset. Prepared files left by a
 * crash are removed when the partition opens.
 */
import fs from 'node:fs';
import { ioError } from '../errors.js';
import * as native from '../native.js';
import { ConsumeQueue } from '../index/consume-queue.js';
import { TimeIndex } from '../index/time-index.js';
import { preparedPaths, segmentPaths } from './file-names.js';
import { Segment, WARM_AHEAD_BYTES, maxCqEntries, maxTixEntries, type SegmentLimits } from './segment.js';

export interface PreparedSegment {
  fd: number;
  mapping: ArrayBuffer;
  cq: ConsumeQueue;
  tix: TimeIndex;
  /** Whether its first WARM_AHEAD_BYTES were faulted in. */
  warm: boolean;
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
    await native.fallocateAsync(fd, 0, limits.segmentBytes, { path: paths.log });
    mapping = native.mmap(fd, limits.segmentBytes, 0, true, { path: paths.log });
    if (warm) await native.populate(mapping, 0, Math.min(limits.segmentBytes, WARM_AHEAD_BYTES), { path: paths.log });
    removeIfExists(paths.cq);
    removeIfExists(paths.tix);
    cq = ConsumeQueue.open(paths.cq, maxCqEntries(limits.segmentBytes), true);
    const tix = TimeIndex.open(paths.tix, maxTixEntries(limits.segmentBytes, limits.indexIntervalBytes), true);
    return { fd, mapping, cq, tix, warm };
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
  segment.adopt(prepared.fd, prepared.mapping, prepared.cq, prepared.tix);
  if (prepared.warm) segment.markWarm(Math.min(limits.segmentBytes, WARM_AHEAD_BYTES));
  return segment;
}

/** Closes and removes prepared files that were never used. */
export function discardPrepared(dir: string, prepared: PreparedSegment | null): void {
  if (prepared !== null) {
    prepared.cq.close();
    prepared.tix.close();
    native.munmap(prepared.mapping);
    fs.closeSync(prepared.fd);
  }
  const paths = preparedPaths(dir);
  for (const file of [paths.log, paths.cq, paths.tix]) removeIfExists(file);
}

/** Creates the first segment of an empty partition synchronously (at open). */
export function createSegmentSync(dir: string, baseOffset: number, limits: SegmentLimits): Segment {
  const paths = segmentPaths(dir, baseOffset);
  let fd = -1;
  try {
    fd = fs.openSync(paths.log, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
    native.fallocate(fd, 0, limits.segmentBytes, { path: paths.log });
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
