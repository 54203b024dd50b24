/**
 * The zero-copy fetch path: sends a file range (a segment's record batches) to a
 * client socket with sendfile(2), so the bytes go page cache -> socket inside the
 * kernel and never through JavaScript (DESIGN.md, "Reading and the zero-copy fetch
 * path"). A fetch response is `socket.write(encodeFrame(header, n))` followed by
 * `sendFileRange(socket, segmentFd, position, n)`.
 *
 * Ordering: bytes the caller wrote with socket.write() before the call may still sit
 * in Node's write queue (the kernel buffer was full). sendfile writes to the kernel
 * directly and would overtake them, so we first wait until Node's queue is empty:
 * the callback of a write fires once libuv has handed all its bytes to the kernel,
 * and writes complete in order, so the callback of an empty write queued behind them
 * fires exactly when everything before it is in the kernel.
 *
 * Contract, for the whole life of the returned promise: nobody else writes to, ends
 * or corks the socket (later writes would interleave with the file bytes), and
 * `fileFd` stays open (retention must not close a segment under a transfer).
 * If the socket closes meanwhile, the promise rejects with ERR_IO and the native
 * transfer is cancelled (otherwise its dup of the fd would hold the connection open).
 *
 * Cold ranges (issue 9; Kafka's KAFKA-7504): sendfile runs on the event loop, and for
 * pages that are not in the page cache it waits for the disk right there, stalling
 * every other connection. Given the file's mapping (`cold.view`), the transfer first
 * asks mincore which pages are resident; the resident prefix goes out at once, and the
 * rest is read into the page cache on libuv's thread pool, `chunkBytes` at a time, each
 * chunk sent with sendfile once its prefetch has resolved while the next chunk is read
 * (one pool job in flight per transfer; a PrefetchLimiter bounds the jobs of all
 * transfers sharing it, so a catch-up never takes every pool thread from msync). A
 * closed socket stops the transfer before the next chunk; the promise settles only
 * once the pool job in flight is done with fileFd. Pages evicted between their prefetch
 * and their sendfile are read on the loop again: rare, and never wrong.
 */
import { read } from 'node:fs';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { CommitLogError, ErrorCode, invalidArgument, ioError } from '../../errors.js';
import { firstNonResident, prefetch, sendfile } from '../../native.js';

/** Chunk size of the copying fallback. */
const FALLBACK_CHUNK_BYTES = 256 * 1024;

/** Bytes of a cold range read into the page cache per thread-pool job. */
export const PREFETCH_CHUNK_BYTES = 1024 * 1024;

/** What a cold transfer did, in order, for tests and tracing (positions are file positions). */
export type TransferEvent =
  /** mincore of [position, position + length): pages from coldAt on are not all resident (coldAt = the end when all are). */
  | { kind: 'residency'; position: number; length: number; coldAt: number }
  /** A pool job reading [position, position + length) into the page cache started... */
  | { kind: 'prefetch'; position: number; length: number }
  /** ...and resolved, having read `bytes`. */
  | { kind: 'prefetched'; position: number; length: number; bytes: number }
  /** A sendfile of [position, position + length) started. */
  | { kind: 'sendfile'; position: number; length: number };

export interface ColdReadOptions {
  /** The file's mapping as a view whose byte i is file byte i (a Segment's `data`): what mincore asks about. */
  view: Uint8Array;
  /** Bytes per prefetch job; default PREFETCH_CHUNK_BYTES. */
  chunkBytes?: number;
  /** Shared bound on prefetch jobs in flight across transfers; default none (one per transfer). */
  limiter?: PrefetchLimiter;
  /** Told every step; called synchronously, must not throw. */
  observer?: (event: TransferEvent) => void;
}

export interface SendRangeOptions {
  /** Check residency first and prefetch cold pages on the thread pool (see the head comment). */
  cold?: ColdReadOptions;
}

/**
 * At most `maxJobs` prefetch jobs in flight among the transfers sharing it; the others
 * wait in arrival order. libuv's pool (UV_THREADPOOL_SIZE, default 4) also runs msync
 * for group commit, fdatasync and fs calls: keep maxJobs below the pool size.
 */
export class PrefetchLimiter {
  readonly maxJobs: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(maxJobs: number) {
    if (!Number.isSafeInteger(maxJobs) || maxJobs < 1) throw invalidArgument(`maxJobs must be an integer >= 1, got ${maxJobs}`);
    this.maxJobs = maxJobs;
  }

  /** Jobs running now (for tests and stats). */
  get active(): number {
    return this.running;
  }

  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running >= this.maxJobs) await this.slot(signal);
    else this.running++;
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so nobody can overtake it.
      if (next !== undefined) next();
      else this.running--;
    }
  }

  private slot(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(granted);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(cancelledTransfer('waiting for a prefetch slot'));
      };
      const granted = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal?.aborted) {
        reject(cancelledTransfer('waiting for a prefetch slot'));
        return;
      }
      this.waiting.push(granted);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Reads the pages of [position, position + length) that are not resident into the page
 * cache, chunk by chunk on the thread pool (through `cold.limiter`); resolves with the
 * bytes prefetched. For readers that then touch the mapping on the event loop (the
 * broker's copy path). `signal` stops it before the next chunk.
 */
export async function prefetchRange(fileFd: number, position: number, length: number, cold: ColdReadOptions, signal?: AbortSignal): Promise<number> {
  ensureFileRange(fileFd, position, length);
  ensureCold(cold, position, length);
  const end = position + length;
  const chunkBytes = cold.chunkBytes ?? PREFETCH_CHUNK_BYTES;
  let bytes = 0;
  for (let at = residentUpTo(cold, position, end); at < end;) {
    const upTo = Math.min(end, at + chunkBytes);
    bytes += await prefetchChunk(fileFd, at, upTo - at, cold, signal);
    at = upTo < end ? residentUpTo(cold, upTo, end) : end;
  }
  return bytes;
}

/**
 * Sends `length` bytes of `fileFd` from `position` to `socket`, after everything
 * already written to the socket. Resolves with the bytes sent (always `length`) once
 * they are all in the kernel's socket buffer. Rejects with ERR_IO: errno EPIPE or
 * ECONNRESET when the peer is gone, EOF when the file is shorter than the range,
 * ECANCELED when the socket was destroyed locally. With `options.cold`, pages not in
 * the page cache are read in on the thread pool before their sendfile (head comment).
 */
export async function sendFileRange(socket: Socket, fileFd: number, position: number, length: number, options: SendRangeOptions = {}): Promise<number> {
  ensureFileRange(fileFd, position, length);
  const cold = options.cold;
  if (cold !== undefined) ensureCold(cold, position, length);
  if (socket.writableCorked > 0) throw invalidArgument('socket is corked: uncork it before sendFileRange, or the flush never happens');
  ensureWritable(socket, 0);

  const fd = socketFd(socket);
  // The fallback reads with fs.read, on the thread pool already: nothing to prefetch.
  if (fd === undefined) return copyRange(socket, fileFd, position, length);

  if (socket.connecting || socket.writableLength > 0) await flushed(socket);
  ensureWritable(socket, 0);
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  socket.once('close', onClose);
  try {
    if (cold === undefined || length === 0) return await sendfile(fd, fileFd, position, length, { signal: abort.signal });
    return await sendCold(fd, fileFd, position, length, cold, abort.signal);
  } catch (err) {
    // Only our own cancellation is remapped; a real EPIPE/ECONNRESET stays as it is.
    if (abort.signal.aborted && err instanceof CommitLogError && err.errno === 'ECANCELED') throw closedError(socket, err);
    throw err;
  } finally {
    socket.removeListener('close', onClose);
  }
}

/**
 * The cold transfer: resident prefix at once, then prefetch chunk k+1 on the pool while
 * chunk k goes out by sendfile. Every byte handed to sendfile was resident at its
 * residency check or read in by a prefetch that resolved before that sendfile started.
 */
async function sendCold(sockFd: number, fileFd: number, position: number, length: number, cold: ColdReadOptions, signal: AbortSignal): Promise<number> {
  const end = position + length;
  const chunkBytes = cold.chunkBytes ?? PREFETCH_CHUNK_BYTES;
  const observer = cold.observer;
  let ready = residentUpTo(cold, position, end);
  let sent = position;
  while (sent < end) {
    const fetchEnd = Math.min(end, ready + chunkBytes);
    const fetching = ready < end ? prefetchChunk(fileFd, ready, fetchEnd - ready, cold, signal) : null;
    let sending: Promise<number> | null = null;
    if (ready > sent) {
      observer?.({ kind: 'sendfile', position: sent, length: ready - sent });
      sending = sendfile(sockFd, fileFd, sent, ready - sent, { signal });
    }
    // Both settle before either outcome counts: the pool job must be done with fileFd
    // before the caller may release (and close) it.
    const [sentResult, fetchResult] = await Promise.allSettled([sending, fetching]);
    if (sentResult.status === 'rejected') throw sentResult.reason;
    if (fetchResult.status === 'rejected') throw fetchResult.reason;
    sent = ready;
    // A short prefetch means the file ends early; the next sendfile reports EOF.
    if (fetching !== null) ready = fetchEnd < end ? residentUpTo(cold, fetchEnd, end) : end;
  }
  return length;
}

/** The first position in [from, end) whose page is not resident (end when all are), told to the observer. */
function residentUpTo(cold: ColdReadOptions, from: number, end: number): number {
  const view = cold.view;
  const coldAt = firstNonResident(view.buffer as ArrayBuffer, view.byteOffset + from, end - from) - view.byteOffset;
  cold.observer?.({ kind: 'residency', position: from, length: end - from, coldAt });
  return coldAt;
}

function prefetchChunk(fileFd: number, position: number, length: number, cold: ColdReadOptions, signal: AbortSignal | undefined): Promise<number> {
  const job = async (): Promise<number> => {
    if (signal?.aborted) throw cancelledTransfer(`before prefetching position ${position}`);
    cold.observer?.({ kind: 'prefetch', position, length });
    const bytes = await prefetch(fileFd, position, length);
    cold.observer?.({ kind: 'prefetched', position, length, bytes });
    return bytes;
  };
  return cold.limiter === undefined ? job() : cold.limiter.run(job, signal);
}

function ensureFileRange(fileFd: number, position: number, length: number): void {
  if (!Number.isInteger(fileFd) || fileFd < 0) throw invalidArgument(`fileFd must be a non-negative integer, got ${fileFd}`);
  if (!Number.isSafeInteger(position) || position < 0) throw invalidArgument(`position must be a non-negative safe integer, got ${position}`);
  if (!Number.isSafeInteger(length) || length < 0) throw invalidArgument(`length must be a non-negative safe integer, got ${length}`);
}

function ensureCold(cold: ColdReadOptions, position: number, length: number): void {
  if (cold === null || typeof cold !== 'object') throw invalidArgument('cold must be an object with a view of the file mapping');
  if (!(cold.view instanceof Uint8Array)) throw invalidArgument('cold.view must be a Uint8Array over the file mapping');
  if (position + length > cold.view.byteLength) throw invalidArgument(`range ${position}+${length} is outside the mapped ${cold.view.byteLength} bytes`);
  const chunk = cold.chunkBytes;
  if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk < 1)) throw invalidArgument(`chunkBytes must be an integer >= 1, got ${chunk}`);
  if (cold.limiter !== undefined && !(cold.limiter instanceof PrefetchLimiter)) throw invalidArgument('cold.limiter must be a PrefetchLimiter');
  if (cold.observer !== undefined && typeof cold.observer !== 'function') throw invalidArgument('cold.observer must be a function');
}

/** ERR_IO ECANCELED for a transfer stopped between steps (the socket closed). */
function cancelledTransfer(when: string): CommitLogError {
  return new CommitLogError(ErrorCode.IO, `file transfer cancelled ${when}`, { errno: 'ECANCELED' });
}

/** The kernel fd behind a plain TCP (or pipe) socket; undefined for TLS and others. */
function socketFd(socket: Socket): number | undefined {
  // A TLS socket's bytes must be encrypted in user space, so sendfile cannot apply
  // (kernel TLS is not used); its handle is a TLSWrap without an fd anyway.
  if (socket instanceof TLSSocket) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Resolves once every byte written to the socket so far is in the kernel. */
function flushed(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = (): void => reject(closedError(socket));
    socket.once('close', onClose);
    socket.write(EMPTY, (err) => {
      socket.removeListener('close', onClose);
      if (err) reject(closedError(socket, err));
      else resolve();
    });
  });
}

/**
 * Fallback for sockets without a usable fd (TLS, or a handle that is not a kernel
 * socket): read the range with fs.read into buffers and socket.write them, with
 * backpressure. One copy into JavaScript memory per chunk, not zero-copy.
 */
async function copyRange(socket: Socket, fileFd: number, position: number, length: number): Promise<number> {
  let sent = 0;
  let last: Promise<void> = Promise.resolve();
  while (sent < length) {
    const want = Math.min(FALLBACK_CHUNK_BYTES, length - sent);
    const buf = Buffer.allocUnsafe(want);
    const got = await readAt(fileFd, buf, position + sent);
    if (got === 0) {
      throw new CommitLogError(ErrorCode.IO, `reading a file range failed: EOF at position ${position + sent}, ${sent} of ${length} bytes sent`, {
        position: position + sent,
        errno: 'EOF',
        syscall: 'read',
      });
    }
    ensureWritable(socket, sent);
    last = written(socket, buf.subarray(0, got));
    sent += got;
    if (socket.writableNeedDrain) await drained(socket, sent);
  }
  await last;
  return sent;
}

function readAt(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, buf.byteLength, position, (err, bytesRead) => {
      if (err) reject(ioError(err, 'reading a file range failed', { position }));
      else resolve(bytesRead);
    });
  });
}

function written(socket: Socket, chunk: Buffer): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    socket.write(chunk, (err) => (err ? reject(closedError(socket, err)) : resolve()));
  });
  // Observed by `await last` or superseded by a drain/close rejection; never unhandled.
  done.catch(() => {});
  return done;
}

function drained(socket: Socket, sent: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      socket.removeListener('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      socket.removeListener('drain', onDrain);
      reject(closedError(socket, undefined, sent));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

function ensureWritable(socket: Socket, sent: number): void {
  if (socket.destroyed || !socket.writable) throw closedError(socket, undefined, sent);
}

/** ERR_IO for a socket that closed: its own error's errno if it failed, else ECANCELED. */
function closedError(socket: Socket, cause?: unknown, sent?: number): CommitLogError {
  const progress = sent === undefined ? '' : ` after ${sent} bytes`;
  const failure = socket.errored ?? undefined;
  if (failure !== undefined && typeof (failure as { code?: unknown }).code === 'string') {
    return ioError(failure, `socket failed during a file transfer${progress}`);
  }
  return new CommitLogError(ErrorCode.IO, `socket was closed during a file transfer${progress}`, {
    errno: 'ECANCELED',
    cause,
  });
}

const EMPTY = Buffer.alloc(0);
