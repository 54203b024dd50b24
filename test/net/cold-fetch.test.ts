import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { CommitLog } from '../../src/log/commit-log.js';
import { pageSize, residentPages, sendfileStats } from '../../src/native.js';
import { encodeFrame, FrameDecoder } from '../../src/net/protocol/frame.js';
import { API_VERSION, decodeResponse, encodeRequest, type ResponseHeader } from '../../src/net/protocol/messages.js';
import { startBroker, type Broker, type BrokerOptions } from '../../src/net/broker/server.js';
import { PrefetchLimiter, type TransferEvent } from '../../src/net/broker/zero-copy.js';
import { dropSegmentPages, inMemoryFs, noReadAround } from '../helpers/page-cache.js';
import { tmpDir } from '../helpers/tmp.js';

// Serial: the sendfile counters are process-wide, and dropping pages is cheap only
// when nothing else competes for the disk.

const MiB = 1024 * 1024;
const TOPIC = 'cold';
const quiet = { info: () => undefined, warn: () => undefined };
const coldTest = inMemoryFs(os.tmpdir()) ? test.skip : test.serial;

interface Fixture {
  log: CommitLog;
  broker: Broker;
  events: TransferEvent[];
}

/** A log with `mib` MiB of 64 KiB batches in each of `partitions` partitions, and a broker over it. */
async function setup(t: ExecutionContext, mib: number, options: Partial<BrokerOptions> = {}, partitions = 1): Promise<Fixture> {
  const log = await CommitLog.open({ dir: tmpDir(t, 'commitlog-cold-fetch-'), logger: quiet, flush: 'os' });
  await log.createTopic(TOPIC, { partitions, segmentBytes: 64 * MiB });
  for (let p = 0; p < partitions; p++) {
    for (let i = 0; i < mib * 16; i++) {
      await log.append(TOPIC, p, Array.from({ length: 16 }, () => ({ value: randomBytes(4000) })));
    }
  }
  await log.flush();
  const events: TransferEvent[] = [];
  const prefetch = options.prefetch ?? { chunkBytes: 256 * 1024, observer: (e: TransferEvent) => events.push(e) };
  const broker = await startBroker({ log, logger: quiet, ...options, prefetch });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  return { log, broker, events };
}

/** The byte range a fetch from `offset` with `maxBytes` answers with, read from the file after the fact. */
function rangeOf(log: CommitLog, partition: number, offset: number, maxBytes: number): { position: number; length: number; file: string } {
  const slice = log.readSlice(TOPIC, partition, offset, maxBytes)!;
  const range = { position: slice.position, length: slice.length, file: slice.segment.logPath };
  slice.release();
  return range;
}

function fileBytes(file: string, position: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    fs.readSync(fd, buf, 0, length, position);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** One connection, one fetch; resolves with the response header and its payload. */
async function fetchOnce(port: number, partition: number, offset: number, maxBytes: number, onSocket?: (s: net.Socket) => void): Promise<{ header: ResponseHeader; payload: Buffer }> {
  const socket = net.connect(port, '127.0.0.1');
  onSocket?.(socket);
  const decoder = new FrameDecoder({ maxFrameBytes: 256 * MiB });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed before the response')));
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      const frame = decoder.next();
      if (frame === undefined) return;
      resolve({ header: decodeResponse(frame.header), payload: Buffer.from(frame.payload) });
      socket.destroy();
    });
    const header = encodeRequest({
      apiVersion: API_VERSION,
      correlationId: 1,
      clientId: 'cold-fetch.test',
      body: { case: 'fetch', value: { topic: TOPIC, partition, offset, maxBytes, maxWaitMs: 0, minBytes: 0 } },
    });
    socket.write(encodeFrame(header, 0));
  });
}

/**
 * Checks the transfer's order: every sendfile covers only bytes that an earlier
 * residency check found resident or an earlier prefetch had read in, the sendfiles
 * cover [position, end) exactly, in order; returns the bytes prefetched.
 */
function checkOrder(t: ExecutionContext, events: TransferEvent[], position: number, end: number): number {
  const ready: [number, number][] = [];
  const pending = new Set<string>();
  const covered = (from: number, to: number): boolean => {
    let at = from;
    for (let moved = true; moved && at < to;) {
      moved = false;
      for (const [a, b] of ready) {
        if (a <= at && at < b) {
          at = b;
          moved = true;
        }
      }
    }
    return at >= to;
  };
  let sentUpTo = position;
  let prefetched = 0;
  for (const e of events) {
    if (e.kind === 'residency') ready.push([e.position, e.coldAt]);
    else if (e.kind === 'prefetch') pending.add(`${e.position}+${e.length}`);
    else if (e.kind === 'prefetched') {
      t.true(pending.delete(`${e.position}+${e.length}`), `prefetched ${e.position}+${e.length} was started`);
      ready.push([e.position, e.position + e.bytes]);
      prefetched += e.bytes;
    } else {
      t.is(e.position, sentUpTo, 'sendfiles are contiguous and in order');
      t.true(covered(e.position, e.position + e.length), `sendfile ${e.position}+${e.length} was resident or prefetched before it started`);
      sentUpTo = e.position + e.length;
    }
  }
  t.is(sentUpTo, end, 'the sendfiles cover the whole range');
  t.is(pending.size, 0, 'every prefetch resolved before the transfer finished');
  return prefetched;
}

coldTest('a fetch of a range not in the page cache returns exactly the stored bytes, counted exactly, each sendfile after the prefetch of its pages', async (t) => {
  const f = await setup(t, 8);
  const { position, length, file } = rangeOf(f.log, 0, 0, 8 * MiB);
  t.true(length > 7 * MiB);
  const view = dropSegmentPages(f.log, TOPIC, 0, 0);
  noReadAround(view);
  t.is(residentPages(view.buffer as ArrayBuffer, view.byteOffset + position, length), 0);
  const before = sendfileStats().bytes;

  const { header, payload } = await fetchOnce(f.broker.port, 0, 0, 8 * MiB);

  t.is(header.errorCode, '');
  t.is(payload.length, length);
  t.true(payload.equals(fileBytes(file, position, length)));
  t.is(sendfileStats().bytes - before, length);
  const stats = f.broker.stats();
  t.is(stats.sendfileBytes, length);
  t.is(stats.coldFetches, 1);
  // The first residency check found the range cold from the second page on: the first
  // holds the batch header the index lookup read through the mapping.
  t.deepEqual(f.events[0], { kind: 'residency', position, length, coldAt: position + pageSize });
  t.true(f.events.some((e) => e.kind === 'prefetch'));
  const prefetched = checkOrder(t, f.events, position, position + length);
  t.is(stats.prefetchedBytes, prefetched);
  t.true(prefetched > 0 && prefetched <= length);
  t.is(residentPages(view.buffer as ArrayBuffer, view.byteOffset + position, length), Math.ceil((position + length) / pageSize) - Math.floor(position / pageSize));
});

coldTest('a fetch of resident data makes one residency check, no prefetch, and one sendfile of the whole range', async (t) => {
  const f = await setup(t, 2);
  const { position, length, file } = rangeOf(f.log, 0, 0, 4 * MiB);
  const { payload } = await fetchOnce(f.broker.port, 0, 0, 4 * MiB);
  t.true(payload.equals(fileBytes(file, position, length)));
  t.deepEqual(f.events, [
    { kind: 'residency', position, length, coldAt: position + length },
    { kind: 'sendfile', position, length },
  ]);
  t.is(f.broker.stats().coldFetches, 0);
  t.is(f.broker.stats().prefetchedBytes, 0);
});

coldTest('with prefetch off a cold fetch still returns exactly the stored bytes, counted exactly, with no prefetch', async (t) => {
  const f = await setup(t, 4, { prefetch: false });
  const { position, length, file } = rangeOf(f.log, 0, 0, 4 * MiB);
  const view = dropSegmentPages(f.log, TOPIC, 0, 0);
  t.is(residentPages(view.buffer as ArrayBuffer, view.byteOffset + position, length), 0);
  const before = sendfileStats().bytes;
  const { payload } = await fetchOnce(f.broker.port, 0, 0, 4 * MiB);
  t.true(payload.equals(fileBytes(file, position, length)));
  t.is(sendfileStats().bytes - before, length);
  t.is(f.broker.stats().sendfileBytes, length);
  t.is(f.broker.stats().coldFetches, 0);
  t.is(f.broker.stats().prefetchedBytes, 0);
});

coldTest('the copy fetch path prefetches a cold range before copying it and returns the stored bytes', async (t) => {
  const f = await setup(t, 2, { fetchPath: 'copy' });
  const { position, length, file } = rangeOf(f.log, 0, 0, 4 * MiB);
  noReadAround(dropSegmentPages(f.log, TOPIC, 0, 0));
  const { payload } = await fetchOnce(f.broker.port, 0, 0, 4 * MiB);
  t.true(payload.equals(fileBytes(file, position, length)));
  t.is(f.broker.stats().coldFetches, 1);
  t.true(f.broker.stats().prefetchedBytes > 0);
  t.false(f.events.some((e) => e.kind === 'sendfile'));
});

coldTest('cold fetches of two connections never have more prefetch jobs in flight than the concurrency', async (t) => {
  const events: TransferEvent[] = [];
  let inFlight = 0;
  let most = 0;
  const observer = (e: TransferEvent): void => {
    events.push(e);
    if (e.kind === 'prefetch') most = Math.max(most, ++inFlight);
    if (e.kind === 'prefetched') inFlight--;
  };
  const f = await setup(t, 4, { prefetch: { chunkBytes: 128 * 1024, concurrency: 1, observer } }, 2);
  const ranges = [0, 1].map((p) => rangeOf(f.log, p, 0, 4 * MiB));
  for (const p of [0, 1]) noReadAround(dropSegmentPages(f.log, TOPIC, p, 0));
  const replies = await Promise.all([0, 1].map((p) => fetchOnce(f.broker.port, p, 0, 4 * MiB)));
  for (const p of [0, 1]) t.true(replies[p].payload.equals(fileBytes(ranges[p].file, ranges[p].position, ranges[p].length)));
  t.is(f.broker.stats().coldFetches, 2);
  t.is(most, 1);
  t.is(inFlight, 0);
  t.true(events.filter((e) => e.kind === 'prefetch').length >= 2);
});

coldTest('a consumer closing its socket mid-transfer ends the cold transfer early; the broker serves the next fetch exactly', async (t) => {
  let socket: net.Socket | undefined;
  let prefetches = 0;
  const observer = (e: TransferEvent): void => {
    if (e.kind === 'prefetch') prefetches++;
    if (e.kind === 'prefetched') socket?.destroy();
  };
  const f = await setup(t, 32, { prefetch: { chunkBytes: 64 * 1024, observer } });
  const { position, length, file } = rangeOf(f.log, 0, 0, 32 * MiB);
  dropSegmentPages(f.log, TOPIC, 0, 0);
  await t.throwsAsync(fetchOnce(f.broker.port, 0, 0, 32 * MiB, (s) => {
    socket = s;
    s.pause();
  }));
  const chunks = Math.ceil(length / (64 * 1024));
  while (f.broker.stats().connections > 0) await new Promise((r) => setTimeout(r, 5));
  t.true(prefetches < chunks, `${prefetches} of ${chunks} chunks prefetched before the transfer ended`);
  socket = undefined;
  const { payload } = await fetchOnce(f.broker.port, 0, 0, 32 * MiB);
  t.is(payload.length, length);
  t.true(payload.equals(fileBytes(file, position, length)));
});

test('PrefetchLimiter runs at most maxJobs at once, in arrival order, and hands a slot straight to the next waiter', async (t) => {
  const limiter = new PrefetchLimiter(1);
  const order: string[] = [];
  const gates: (() => void)[] = [];
  const job = (name: string) => () => new Promise<string>((resolve) => {
    order.push(`start ${name}`);
    gates.push(() => {
      order.push(`end ${name}`);
      resolve(name);
    });
  });
  const a = limiter.run(job('a'));
  const b = limiter.run(job('b'));
  const c = limiter.run(job('c'));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['start a']);
  t.is(limiter.active, 1);
  gates.shift()!();
  t.is(await a, 'a');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['start a', 'end a', 'start b']);
  gates.shift()!();
  await b;
  await new Promise((r) => setImmediate(r));
  gates.shift()!();
  t.is(await c, 'c');
  t.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  t.is(limiter.active, 0);
});

test('PrefetchLimiter: a waiter whose signal aborts rejects with ERR_IO ECANCELED and takes no slot', async (t) => {
  const limiter = new PrefetchLimiter(1);
  let release: () => void = () => undefined;
  const first = limiter.run(() => new Promise<void>((resolve) => (release = resolve)));
  const abort = new AbortController();
  let ran = false;
  const second = limiter.run(async () => {
    ran = true;
  }, abort.signal);
  abort.abort();
  const err = await t.throwsAsync(second, { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'ECANCELED');
  release();
  await first;
  t.false(ran);
  t.is(limiter.active, 0);
  await limiter.run(async () => undefined);
  t.is(limiter.active, 0);
});

test('startBroker and PrefetchLimiter reject bad prefetch settings with ERR_INVALID_ARGUMENT', async (t) => {
  const log = await CommitLog.open({ dir: tmpDir(t), logger: quiet });
  t.teardown(() => log.close());
  const invalid = { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT };
  for (const prefetch of [{ chunkBytes: 0 }, { chunkBytes: 1.5 }, { concurrency: 0 }, { observer: 1 }, 'yes', null]) {
    await t.throwsAsync(startBroker({ log, logger: quiet, prefetch: prefetch as BrokerOptions['prefetch'] }), invalid, JSON.stringify(prefetch));
  }
  t.throws(() => new PrefetchLimiter(0), invalid);
});
