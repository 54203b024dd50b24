/**
 * The only module that touches the compiled addon (build/Release/commitlog.node).
 * Every argument is validated here before it crosses into C++, so a wrong argument
 * is a thrown ERR_INVALID_ARGUMENT, never a process abort; every syscall failure
 * comes back as a CommitLogError (ERR_DISK_FULL or ERR_IO) whose stack shows the
 * JavaScript caller.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ioError, invalidArgument, type ErrorContext } from './errors.js';

interface ScanResult {
  position: number;
  batches: number;
  records: number;
  nextOffset: number;
  status: number;
  /** The epoch of the last stamped batch scanned (the minEpoch given when none was or the check was off). */
  epoch: number;
}

interface Addon {
  mmap(fd: number, length: number, offset: number, writable: boolean): ArrayBuffer;
  munmap(mapping: ArrayBuffer): void;
  msync(mapping: ArrayBuffer, offset: number, length: number): Promise<void>;
  msyncSync(mapping: ArrayBuffer, offset: number, length: number): void;
  madvise(mapping: ArrayBuffer, offset: number, length: number, advice: number): void;
  populate(mapping: ArrayBuffer, offset: number, length: number): Promise<void>;
  fallocate(fd: number, offset: number, length: number): void;
  fallocateAsync(fd: number, offset: number, length: number, zeroFill: boolean): Promise<void>;
  zeroRange(fd: number, offset: number, length: number): void;
  tryLock(fd: number): boolean;
  crc32c(data: Uint8Array, start: number, end: number): number;
  scanBatches(data: Uint8Array, start: number, end: number, expectedOffset: number, maxBatches: number, minEpoch: number): ScanResult;
  lastDataByte(fd: number, from: number, to: number): number;
  countBatches(data: Uint8Array, start: number, end: number): { batches: number; runs: number };
  pageSize: number;
  madviseFlags: { NORMAL: number; RANDOM: number; SEQUENTIAL: number; WILLNEED: number; DONTNEED: number };
  crc32cHardware: boolean;
  sendfile(socketFd: number, fileFd: number, position: number, length: number, callback: (err: Error | null, bytesSent: number) => void): number;
  sendfileCancel(id: number): boolean;
  sendfileStats(): SendfileStats;
}

function load(): Addon {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  // src/native.ts runs from the source tree (tsx) or from dist/src (compiled).
  const candidates = [
    path.join(here, '..', 'build', 'Release', 'commitlog.node'),
    path.join(here, '..', '..', 'build', 'Release', 'commitlog.node'),
  ];
  let lastError: unknown;
  for (const file of candidates) {
    try {
      return require(file) as Addon;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`commitlog: the native addon is not built (run npm install): ${String(lastError)}`);
}

const addon = load();
const fdatasyncAsync = promisify(fs.fdatasync);

export const pageSize: number = addon.pageSize;
export const crc32cHardware: boolean = addon.crc32cHardware;
export const Advice = addon.madviseFlags;

function ensureFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw invalidArgument(`fd must be a non-negative integer, got ${fd}`);
}

function ensureSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw invalidArgument(`${name} must be a non-negative safe integer, got ${value}`);
}

function ensureMapping(mapping: ArrayBuffer): void {
  if (!(mapping instanceof ArrayBuffer)) throw invalidArgument('mapping must be an ArrayBuffer returned by mmap');
}

function ensureRange(mapping: ArrayBuffer, offset: number, length: number): void {
  ensureMapping(mapping);
  ensureSize('offset', offset);
  ensureSize('length', length);
  if (offset + length > mapping.byteLength) {
    throw invalidArgument(`range ${offset}+${length} is outside the mapping of ${mapping.byteLength} bytes`);
  }
}

function ensureView(data: Uint8Array, start: number, end: number): void {
  if (!(data instanceof Uint8Array)) throw invalidArgument('data must be a Uint8Array or Buffer');
  ensureSize('start', start);
  ensureSize('end', end);
  if (start > end || end > data.byteLength) throw invalidArgument(`range [${start}, ${end}) is outside ${data.byteLength} bytes`);
}

/** Maps `length` bytes of `fd` from `offset` (a multiple of the page size), MAP_SHARED. */
export function mmap(fd: number, length: number, offset: number, writable: boolean, ctx?: ErrorContext): ArrayBuffer {
  ensureFd(fd);
  ensureSize('length', length);
  ensureSize('offset', offset);
  if (length === 0) throw invalidArgument('cannot map 0 bytes');
  if (offset % pageSize !== 0) throw invalidArgument(`offset ${offset} is not a multiple of the page size ${pageSize}`);
  try {
    return addon.mmap(fd, length, offset, writable);
  } catch (err) {
    throw ioError(err, 'mmap failed', ctx);
  }
}

/** Detaches every JS view of the mapping, then unmaps it. ERR_IO (EBUSY) while a flush of it runs. */
export function munmap(mapping: ArrayBuffer, ctx?: ErrorContext): void {
  ensureMapping(mapping);
  try {
    addon.munmap(mapping);
  } catch (err) {
    throw ioError(err, 'munmap failed', ctx);
  }
}

/** msync(MS_SYNC) of a range, on libuv's thread pool. */
export async function msync(mapping: ArrayBuffer, offset: number, length: number, ctx?: ErrorContext): Promise<void> {
  ensureRange(mapping, offset, length);
  if (flushFaults.msync !== null) injected('msync', ctx);
  try {
    await addon.msync(mapping, offset, length);
  } catch (err) {
    throw ioError(err, 'msync failed', ctx);
  }
}

/** msync(MS_SYNC) on the calling thread: for close paths and tests only. */
export function msyncSync(mapping: ArrayBuffer, offset: number, length: number, ctx?: ErrorContext): void {
  ensureRange(mapping, offset, length);
  try {
    addon.msyncSync(mapping, offset, length);
  } catch (err) {
    throw ioError(err, 'msync failed', ctx);
  }
}

export function madvise(mapping: ArrayBuffer, offset: number, length: number, advice: number, ctx?: ErrorContext): void {
  ensureRange(mapping, offset, length);
  if (!Object.values(Advice).includes(advice)) throw invalidArgument(`unknown madvise advice ${advice}`);
  try {
    addon.madvise(mapping, offset, length, advice);
  } catch (err) {
    throw ioError(err, 'madvise failed', ctx);
  }
}

/** Faults the range's pages in writable on the thread pool (MADV_POPULATE_WRITE or touching each page). */
export async function populate(mapping: ArrayBuffer, offset: number, length: number, ctx?: ErrorContext): Promise<void> {
  ensureRange(mapping, offset, length);
  try {
    await addon.populate(mapping, offset, length);
  } catch (err) {
    throw ioError(err, 'populate failed', ctx);
  }
}

/** posix_fallocate: a full disk is ERR_DISK_FULL here, never a SIGBUS later. */
export function fallocate(fd: number, offset: number, length: number, ctx?: ErrorContext): void {
  ensureFd(fd);
  ensureSize('offset', offset);
  ensureSize('length', length);
  if (length === 0) return;
  try {
    addon.fallocate(fd, offset, length);
  } catch (err) {
    throw ioError(err, 'allocating file space failed', ctx);
  }
}

/**
 * posix_fallocate on the thread pool. `zeroFill`: then write the range with zeros, one
 * page per write (small page-cache folios: see native/file.cc WriteZeroPages).
 */
export async function fallocateAsync(fd: number, offset: number, length: number, ctx?: ErrorContext, zeroFill = false): Promise<void> {
  ensureFd(fd);
  ensureSize('offset', offset);
  ensureSize('length', length);
  if (length === 0) return;
  try {
    await addon.fallocateAsync(fd, offset, length, zeroFill);
  } catch (err) {
    throw ioError(err, 'allocating file space failed', ctx);
  }
}

/** Makes a file range read as zeros while keeping its blocks allocated. */
export function zeroRange(fd: number, offset: number, length: number, ctx?: ErrorContext): void {
  ensureFd(fd);
  ensureSize('offset', offset);
  ensureSize('length', length);
  try {
    addon.zeroRange(fd, offset, length);
  } catch (err) {
    throw ioError(err, 'zeroing a file range failed', ctx);
  }
}

/** flock(LOCK_EX | LOCK_NB): true if taken, false if another open file description holds it. */
export function tryLock(fd: number, ctx?: ErrorContext): boolean {
  ensureFd(fd);
  try {
    return addon.tryLock(fd);
  } catch (err) {
    throw ioError(err, 'flock failed', ctx);
  }
}

/** CRC32C (Castagnoli) of data[start, end). */
export function crc32c(data: Uint8Array, start = 0, end = data.byteLength): number {
  ensureView(data, start, end);
  return addon.crc32c(data, start, end);
}

export const ScanStatus = {
  END: 0,
  BAD_LENGTH: 1,
  BAD_MAGIC: 2,
  BAD_CRC: 3,
  BAD_OFFSET: 4,
  TRUNCATED: 5,
  BAD_COUNT: 6,
  BAD_EPOCH: 7,
} as const;

export const scanStatusNames = ['end of data', 'bad batch length', 'bad magic', 'CRC mismatch', 'offset not contiguous', 'batch runs past the end', 'bad record count', 'epoch lower than the batch before (left from an earlier life of the file)'];

/** scanBatches' minEpoch that turns the epoch check off. */
export const NO_EPOCH_CHECK = -2;

/**
 * Walks batch headers in data[start, end) verifying length, magic, record count,
 * CRC, (when expectedOffset >= 0) offset continuity and, unless minEpoch is
 * NO_EPOCH_CHECK, that the stamped epochs (partition leader epoch >= 0) never fall,
 * starting from `minEpoch` (-1: from the first stamped batch); stops at the first
 * failure or after maxBatches. Returns where it stopped and why.
 */
export function scanBatches(data: Uint8Array, start: number, end: number, expectedOffset: number, maxBatches = Number.MAX_SAFE_INTEGER, minEpoch = NO_EPOCH_CHECK): ScanResult {
  ensureView(data, start, end);
  if (!Number.isSafeInteger(expectedOffset) || expectedOffset < -1) throw invalidArgument(`expectedOffset must be >= -1, got ${expectedOffset}`);
  ensureSize('maxBatches', maxBatches);
  if (!Number.isInteger(minEpoch) || minEpoch < NO_EPOCH_CHECK || minEpoch > 0x7fffffff) throw invalidArgument(`minEpoch must be an int32 >= ${NO_EPOCH_CHECK}, got ${minEpoch}`);
  return addon.scanBatches(data, start, end, expectedOffset, maxBatches, minEpoch);
}

/**
 * Whole CRC-valid batches in data[start, end), found by resynchronising after
 * anything else, and the runs of non-zero bytes that are no batch.
 */
export function countBatches(data: Uint8Array, start: number, end: number): { batches: number; runs: number } {
  ensureView(data, start, end);
  return addon.countBatches(data, start, end);
}

/**
 * Position just past the last non-zero byte of the file in [from, to), `from` when
 * there is none; holes and unwritten extents are skipped, the rest read with pread.
 */
export function lastDataByte(fd: number, from: number, to: number, ctx?: ErrorContext): number {
  ensureFd(fd);
  ensureSize('from', from);
  ensureSize('to', to);
  if (to <= from) return from;
  try {
    return addon.lastDataByte(fd, from, to);
  } catch (err) {
    throw ioError(err, 'reading a file tail failed', ctx);
  }
}

/** Test-only failure injection for the data flush path: return an errno name to fail the call. */
export const flushFaults: { msync: ((path: string | undefined) => string | null) | null; fdatasync: ((path: string | undefined) => string | null) | null } = {
  msync: null,
  fdatasync: null,
};

function injected(which: 'msync' | 'fdatasync', ctx: ErrorContext | undefined): void {
  const fault = flushFaults[which];
  const code = fault === null ? null : fault(ctx?.path);
  if (code !== null) throw ioError(Object.assign(new Error(`${which} failed: ${code} (injected)`), { code, syscall: which }), `${which} failed`, ctx);
}

/** fdatasync on the thread pool. */
export async function fdatasync(fd: number, ctx?: ErrorContext): Promise<void> {
  ensureFd(fd);
  if (flushFaults.fdatasync !== null) injected('fdatasync', ctx);
  try {
    await fdatasyncAsync(fd);
  } catch (err) {
    throw ioError(err, 'fdatasync failed', ctx);
  }
}

export interface SendfileStats {
  /** Bytes moved by sendfile(2) in this process, across all transfers. */
  bytes: number;
  /** sendfile(2) system calls made, including those that found the socket full. */
  calls: number;
}

export interface SendfileOptions {
  /** Aborting ends the transfer: the promise rejects with ERR_IO, errno ECANCELED. */
  signal?: AbortSignal;
  ctx?: ErrorContext;
}

/**
 * Sends file bytes [position, position + length) to a non-blocking socket with
 * sendfile(2), on the event loop (it waits for writability, never a pool thread), and
 * resolves with the bytes sent (always `length`). Rejects with ERR_IO keeping errno:
 * EPIPE/ECONNRESET when the peer is gone, EOF when the file ends first, ECANCELED
 * when `signal` aborts. The caller must not write to the socket, and must keep fileFd
 * open, until the promise settles (native/sendfile.cc has the whole contract).
 */
export async function sendfile(socketFd: number, fileFd: number, position: number, length: number, options: SendfileOptions = {}): Promise<number> {
  ensureFd(socketFd);
  ensureFd(fileFd);
  ensureSize('position', position);
  ensureSize('length', length);
  const { signal, ctx } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('signal must be an AbortSignal');
  if (signal?.aborted) throw ioError(cancelled(), 'sendfile cancelled', ctx);
  return new Promise<number>((resolve, reject) => {
    const onAbort = (): void => {
      addon.sendfileCancel(id);
    };
    let id: number;
    try {
      id = addon.sendfile(socketFd, fileFd, position, length, (err, bytesSent) => {
        signal?.removeEventListener('abort', onAbort);
        if (err !== null) reject(ioError(err, 'sendfile failed', ctx));
        else resolve(bytesSent);
      });
    } catch (err) {
      reject(ioError(err, 'sendfile failed', ctx));
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function cancelled(): Error {
  return Object.assign(new Error('sendfile failed: ECANCELED (aborted before it started)'), { code: 'ECANCELED', syscall: 'sendfile' });
}

/** Process-wide sendfile counters, for metrics and tests. */
export function sendfileStats(): SendfileStats {
  return addon.sendfileStats();
}

// ---- page-cache residency (native/residency.cc) -------------------------------------

interface ResidencyAddon {
  residentPages(mapping: ArrayBuffer, offset: number, length: number): number;
  firstNonResident(mapping: ArrayBuffer, offset: number, length: number): number;
  prefetch(fd: number, position: number, length: number, exact: boolean): Promise<number>;
  dropPageCache(fd: number, position: number, length: number): void;
}

const residency = addon as unknown as ResidencyAddon;

/**
 * Pages of mapping[offset, offset + length) that are in the page cache (mincore(2); a
 * page counts once however little of it the range covers). Synchronous and cheap: it
 * never waits for the disk. For a file the process neither owns nor may write, Linux
 * reports only the pages mapped in this process, so the count can be low, never high.
 */
export function residentPages(mapping: ArrayBuffer, offset: number, length: number, ctx?: ErrorContext): number {
  ensureRange(mapping, offset, length);
  try {
    return residency.residentPages(mapping, offset, length);
  } catch (err) {
    throw ioError(err, 'checking page-cache residency failed', ctx);
  }
}

/**
 * The first byte in [offset, offset + length) of mapping whose page is not in the page
 * cache (the page's start, or `offset` when the first page is out), offset + length
 * when every page is in. Same caveats as residentPages.
 */
export function firstNonResident(mapping: ArrayBuffer, offset: number, length: number, ctx?: ErrorContext): number {
  ensureRange(mapping, offset, length);
  try {
    return residency.firstNonResident(mapping, offset, length);
  } catch (err) {
    throw ioError(err, 'checking page-cache residency failed', ctx);
  }
}

/**
 * Reads file bytes [position, position + length) of `fd` into the page cache on libuv's
 * thread pool (pread into a reused per-thread buffer; the bytes are not returned) and
 * resolves with the bytes read once every page is in: less than `length` only when the
 * file ends first. One pool thread is busy for the whole call, so callers bound
 * `length` (zero-copy.ts prefetches in chunks). `fd` must stay open until it settles.
 * `exact`: the kernel reads no more than the range (POSIX_FADV_RANDOM on `fd`'s open
 * file description first, so pass a descriptor of your own).
 */
export async function prefetch(fd: number, position: number, length: number, ctx?: ErrorContext, exact = false): Promise<number> {
  ensureFd(fd);
  ensureSize('position', position);
  ensureSize('length', length);
  if (length === 0) return 0;
  try {
    return await residency.prefetch(fd, position, length, exact);
  } catch (err) {
    throw ioError(err, 'prefetching a file range failed', { position, ...ctx });
  }
}

/**
 * Tests and benchmarks: fdatasync the file, then posix_fadvise(POSIX_FADV_DONTNEED) of
 * [position, position + length) (length 0: to the end of the file), so its clean pages
 * leave the page cache. Pages mapped into a process's page tables (a mapping that was
 * read or written) stay: madvise(DONTNEED) the mapping first. Synchronous.
 */
export function dropPageCache(fd: number, position: number, length: number, ctx?: ErrorContext): void {
  ensureFd(fd);
  ensureSize('position', position);
  ensureSize('length', length);
  try {
    residency.dropPageCache(fd, position, length);
  } catch (err) {
    throw ioError(err, 'dropping cached pages failed', ctx);
  }
}
