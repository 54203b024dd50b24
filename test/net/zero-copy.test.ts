import test from 'ava';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { CommitLogError } from '../../src/errors.js';
import { sendfile, sendfileStats } from '../../src/native.js';
import { encodeFrame } from '../../src/net/protocol/frame.js';
import { sendFileRange } from '../../src/net/broker/zero-copy.js';

// These tests share the process-wide sendfile counters and saturate loopback: serial.

const MiB = 1024 * 1024;
const FILE_BYTES = 64 * MiB + 64 * 1024;
const content = randomBytes(FILE_BYTES);

interface Fixture {
  dir: string;
  fd: number;
  sender: net.Socket;
  receiver: net.Socket;
  server: net.Server;
}

async function setup(fileBytes: Buffer = content): Promise<Fixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'commitlog-zero-copy-'));
  const file = path.join(dir, '00000000000000000000.log');
  writeFileSync(file, fileBytes);
  const fd = openSync(file, 'r');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const receiver = net.connect(port, '127.0.0.1');
  receiver.pause();
  const sender = await accepted;
  await new Promise<void>((resolve) => (receiver.connecting ? receiver.once('connect', resolve) : resolve()));
  return { dir, fd, sender, receiver, server };
}

async function teardown(f: Fixture): Promise<void> {
  f.sender.destroy();
  f.receiver.destroy();
  await new Promise<void>((resolve) => f.server.close(() => resolve()));
  closeSync(f.fd);
  rmSync(f.dir, { recursive: true, force: true });
}

/** Reads exactly `expected` bytes (or until close) into one buffer. */
function collect(socket: net.Socket, expected: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.alloc(expected);
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      if (got + chunk.length > expected) {
        reject(new Error(`received ${got + chunk.length} bytes, more than the ${expected} expected`));
        return;
      }
      chunk.copy(out, got);
      got += chunk.length;
      if (got === expected) resolve(out);
    });
    socket.on('close', () => reject(new Error(`closed after ${got} of ${expected} bytes`)));
    socket.resume();
  });
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const openFds = (): number => readdirSync('/proc/self/fd').length;

test.serial('a 64 MiB range arrives byte-exact through a paused receiver while the loop keeps ticking', async (t) => {
  const f = await setup();
  try {
    const position = 4096 + 13;
    const length = 64 * MiB;
    const before = sendfileStats();
    const fdsBefore = openFds();
    let ticks = 0;
    let last = performance.now();
    let maxGapMs = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      ticks++;
    }, 5);
    let settled = false;
    const transfer = sendFileRange(f.sender, f.fd, position, length).finally(() => {
      settled = true;
    });
    await delay(300);
    // The receiver has not read a byte: the socket buffers are full, so the transfer
    // must be parked on EAGAIN, waiting for writability, not finished or spinning.
    t.false(settled);
    t.true(ticks >= 20, `only ${ticks} ticks while the transfer was blocked`);
    const received = collect(f.receiver, length);
    t.is(await transfer, length);
    const data = await received;
    clearInterval(timer);
    t.true(data.equals(content.subarray(position, position + length)));
    t.true(maxGapMs < 250, `event loop stalled for ${maxGapMs.toFixed(1)} ms`);
    const after = sendfileStats();
    t.is(after.bytes - before.bytes, length);
    t.true(after.calls - before.calls > 1);
    t.is(openFds(), fdsBefore, 'the dup of the socket was closed');
  } finally {
    await teardown(f);
  }
});

test.serial('bytes queued in the socket before the call arrive first, then the file range', async (t) => {
  const f = await setup();
  try {
    // Big enough that most of it is still in Node's write queue when sendfile starts.
    const filler = randomBytes(24 * MiB);
    const header = encodeFrame(Buffer.from('fetch-response-header'), 3 * MiB);
    f.sender.write(filler);
    f.sender.write(header);
    t.true(f.sender.writableLength > 0, 'precondition: writes are still queued in Node');
    const transfer = sendFileRange(f.sender, f.fd, 777, 3 * MiB);
    await delay(100);
    const received = collect(f.receiver, filler.length + header.length + 3 * MiB);
    t.is(await transfer, 3 * MiB);
    const data = await received;
    t.true(data.subarray(0, filler.length).equals(filler));
    t.true(data.subarray(filler.length, filler.length + header.length).equals(header));
    t.true(data.subarray(filler.length + header.length).equals(content.subarray(777, 777 + 3 * MiB)));
  } finally {
    await teardown(f);
  }
});

test.serial('a small header written just before arrives in order with the body', async (t) => {
  const f = await setup();
  try {
    const header = encodeFrame(Buffer.from([1, 2, 3]), 100_000);
    f.sender.write(header);
    const received = collect(f.receiver, header.length + 100_000);
    t.is(await sendFileRange(f.sender, f.fd, 5, 100_000), 100_000);
    const data = await received;
    t.true(data.subarray(0, header.length).equals(header));
    t.true(data.subarray(header.length).equals(content.subarray(5, 100_005)));
  } finally {
    await teardown(f);
  }
});

test.serial('the peer closing mid-transfer rejects with ERR_IO (EPIPE or ECONNRESET), and nothing crashes', async (t) => {
  const f = await setup();
  try {
    const socketErrors: string[] = [];
    f.sender.on('error', (err: NodeJS.ErrnoException) => socketErrors.push(String(err.code)));
    const transfer = sendFileRange(f.sender, f.fd, 0, 64 * MiB);
    // Read a little, then close with unread data pending (the kernel answers with RST).
    await new Promise<void>((resolve) => {
      f.receiver.once('data', () => {
        f.receiver.destroy();
        resolve();
      });
      f.receiver.resume();
    });
    const err = await t.throwsAsync(transfer, { instanceOf: CommitLogError });
    t.is(err?.code, 'ERR_IO');
    t.true(err?.errno === 'EPIPE' || err?.errno === 'ECONNRESET', `errno ${err?.errno}`);
    t.log(`rejected with ${err?.errno} (${err?.syscall ?? 'socket'})`);
    await delay(50);
    t.true(socketErrors.every((code) => code === 'ECONNRESET' || code === 'EPIPE'), socketErrors.join());
  } finally {
    await teardown(f);
  }
});

test.serial('destroying the socket mid-transfer rejects and lets the connection close', async (t) => {
  const f = await setup();
  try {
    const transfer = sendFileRange(f.sender, f.fd, 0, 64 * MiB);
    await delay(50);
    const peerClosed = new Promise<void>((resolve) => f.receiver.once('close', () => resolve()));
    f.receiver.on('error', () => {});
    f.receiver.resume();
    f.sender.destroy();
    const err = await t.throwsAsync(transfer, { instanceOf: CommitLogError });
    t.is(err?.code, 'ERR_IO');
    t.is(err?.errno, 'ECANCELED');
    // Had the native side kept its dup of the fd, the receiver would never see the close.
    await Promise.race([peerClosed, delay(5000).then(() => Promise.reject(new Error('the peer never saw the close')))]);
    t.pass();
  } finally {
    await teardown(f);
  }
});

test.serial('a file shorter than the range fails with errno EOF after sending what exists', async (t) => {
  const f = await setup(content.subarray(0, 10_000));
  try {
    const received: Buffer[] = [];
    f.receiver.on('data', (chunk: Buffer) => received.push(chunk));
    f.receiver.resume();
    const err = await t.throwsAsync(sendFileRange(f.sender, f.fd, 1000, 20_000), { instanceOf: CommitLogError });
    t.is(err?.code, 'ERR_IO');
    t.is(err?.errno, 'EOF');
    t.is(err?.syscall, 'sendfile');
    t.regex(err?.message ?? '', /after 9000 of 20000 bytes/);
    await delay(50);
    t.true(Buffer.concat(received).equals(content.subarray(1000, 10_000)));
  } finally {
    await teardown(f);
  }
});

test.serial('an empty range resolves with 0', async (t) => {
  const f = await setup(content.subarray(0, 100));
  try {
    t.is(await sendFileRange(f.sender, f.fd, 0, 0), 0);
    t.is(await sendfile(socketFdOf(f.sender), f.fd, 100, 0), 0);
  } finally {
    await teardown(f);
  }
});

test.serial('bad arguments are ERR_INVALID_ARGUMENT and never reach the addon', async (t) => {
  const f = await setup(content.subarray(0, 100));
  try {
    const before = sendfileStats();
    const fd = socketFdOf(f.sender);
    const invalid = { instanceOf: CommitLogError, code: 'ERR_INVALID_ARGUMENT' } as const;
    await t.throwsAsync(sendfile(fd, f.fd, -1, 10), invalid);
    await t.throwsAsync(sendfile(1.5, f.fd, 0, 10), invalid);
    await t.throwsAsync(sendfile(fd, Number.NaN, 0, 10), invalid);
    await t.throwsAsync(sendfile(fd, f.fd, 0, 2 ** 53), invalid);
    await t.throwsAsync(sendfile(fd, f.fd, 0, 10, { signal: {} as AbortSignal }), invalid);
    await t.throwsAsync(sendFileRange(f.sender, f.fd, -1, 10), invalid);
    await t.throwsAsync(sendFileRange(f.sender, 0.5, 0, 10), invalid);
    await t.throwsAsync(sendFileRange(f.sender, f.fd, 0, -10), invalid);
    t.deepEqual(sendfileStats(), before);
  } finally {
    await teardown(f);
  }
});

test.serial('a blocking or unpollable descriptor is ERR_IO up front, never a blocked loop or a hang', async (t) => {
  const f = await setup(content.subarray(0, 100));
  const nonBlocking = openSync(path.join(f.dir, '00000000000000000000.log'), constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const blocking = await t.throwsAsync(sendfile(f.fd, f.fd, 0, 10), { instanceOf: CommitLogError });
    t.is(blocking?.code, 'ERR_IO');
    t.is(blocking?.errno, 'EINVAL');
    t.regex(blocking?.message ?? '', /non-blocking/);
    const unpollable = await t.throwsAsync(sendfile(nonBlocking, f.fd, 0, 10), { instanceOf: CommitLogError });
    t.is(unpollable?.code, 'ERR_IO');
    t.is(unpollable?.syscall, 'uv_poll_init');
  } finally {
    closeSync(nonBlocking);
    await teardown(f);
  }
});

test.serial('an aborted signal cancels the transfer with ECANCELED', async (t) => {
  const f = await setup();
  try {
    const abort = new AbortController();
    const transfer = sendfile(socketFdOf(f.sender), f.fd, 0, 64 * MiB, { signal: abort.signal });
    await delay(50);
    abort.abort();
    const err = await t.throwsAsync(transfer, { instanceOf: CommitLogError });
    t.is(err?.errno, 'ECANCELED');
    t.regex(err?.message ?? '', /after \d+ of 67108864 bytes/);
    await t.throwsAsync(sendfile(socketFdOf(f.sender), f.fd, 0, 1, { signal: abort.signal }), { instanceOf: CommitLogError, code: 'ERR_IO' });
  } finally {
    await teardown(f);
  }
});

// A throwaway self-signed certificate for 127.0.0.1, only for the TLS fallback test.
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg270Dw0d5RUETsqkh
O/UpNylIv8avfRkuPvcomYXCx+GhRANCAATIkmPAnJ1VnegARPXHl5oF+KPI5HSn
l59OggdjMAXXDWOIs2IAybBVuwA3XjoY+oYBJdNR4dMRuHy9dzV1Nrh8
-----END PRIVATE KEY-----`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUWXYfBSxcQa0/OMwTiMQ0T513ZO4wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE3MjkwMVoYDzIxMjYxMDMw
MTcyOTAxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATIkmPAnJ1VnegARPXHl5oF+KPI5HSnl59OggdjMAXXDWOIs2IAybBV
uwA3XjoY+oYBJdNR4dMRuHy9dzV1Nrh8o28wbTAdBgNVHQ4EFgQUxEZj+Sbce4fO
dcgxXogq19lN3lQwHwYDVR0jBBgwFoAUxEZj+Sbce4fOdcgxXogq19lN3lQwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDSAAwRQIhAOA5q4TUdgFzHyfqImj1Ckbu5IOd54ybYFi/yX8S4ge4AiBR
nyZjNTQqmSgMgO9dfeIM7wbvx2OFOGduglLrYNwckw==
-----END CERTIFICATE-----`;

test.serial('a TLS socket falls back to read + write and still delivers header then body in order', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'commitlog-zero-copy-'));
  const file = path.join(dir, 'segment.log');
  writeFileSync(file, content.subarray(0, 4 * MiB));
  const fd = openSync(file, 'r');
  const server = tls.createServer({ key: TLS_KEY, cert: TLS_CERT });
  try {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const accepted = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
    const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    const sender = await accepted;
    try {
      const before = sendfileStats();
      const header = encodeFrame(Buffer.from('hdr'), 3 * MiB);
      sender.write(header);
      const received = collect(client, header.length + 3 * MiB);
      t.is(await sendFileRange(sender, fd, 99, 3 * MiB), 3 * MiB);
      const data = await received;
      t.true(data.subarray(0, header.length).equals(header));
      t.true(data.subarray(header.length).equals(content.subarray(99, 99 + 3 * MiB)));
      t.deepEqual(sendfileStats(), before, 'no sendfile for TLS');
      const err = await t.throwsAsync(sendFileRange(sender, fd, 4 * MiB - 10, 100), { instanceOf: CommitLogError });
      t.is(err?.errno, 'EOF');
    } finally {
      client.destroy();
      sender.destroy();
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

function socketFdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}
