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
 */
import { read } from 'node:fs';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { CommitLogError, ErrorCode, invalidArgument, ioError } from '../errors.js';
import { sendfile } from '../native.js';

/** Chunk size of the copying fallback. */
const FALLBACK_CHUNK_BYTES = 256 * 1024;

/**
 * Sends `length` bytes of `fileFd` from `position` to `socket`, after everything
 * already written to the socket. Resolves with the bytes sent (always `length`) once
 * they are all in the kernel's socket buffer. Rejects with ERR_IO: errno EPIPE or
 * ECONNRESET when the peer is gone, EOF when the file is shorter than the range,
 * ECANCELED when the socket was destroyed locally.
 */
export async function sendFileRange(socket: Socket, fileFd: number, position: number, length: number): Promise<number> {
  if (!Number.isInteger(fileFd) || fileFd < 0) throw invalidArgument(`fileFd must be a non-negative integer, got ${fileFd}`);
  if (!Number.isSafeInteger(position) || position < 0) throw invalidArgument(`position must be a non-negative safe integer, got ${position}`);
  if (!Number.isSafeInteger(length) || length < 0) throw invalidArgument(`length must be a non-negative safe integer, got ${length}`);
  if (socket.writableCorked > 0) throw invalidArgument('socket is corked: uncork it before sendFileRange, or the flush never happens');
  ensureWritable(socket, 0);

  const fd = socketFd(socket);
  if (fd === undefined) return copyRange(socket, fileFd, position, length);

  if (socket.connecting || socket.writableLength > 0) await flushed(socket);
  ensureWritable(socket, 0);
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  socket.once('close', onClose);
  try {
    return await sendfile(fd, fileFd, position, length, { signal: abort.signal });
  } catch (err) {
    // Only our own cancellation is remapped; a real EPIPE/ECONNRESET stays as it is.
    if (abort.signal.aborted && err instanceof CommitLogError && err.errno === 'ECANCELED') throw closedError(socket, err);
    throw err;
  } finally {
    socket.removeListener('close', onClose);
  }
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
