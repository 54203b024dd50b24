/**
 * A full disk. The segment allocator reserves every segment with posix_fallocate when
 * it is prepared (and indexes grow by fallocate too), so running out of space must show
 * as ERR_DISK_FULL to producers at roll time, never as a SIGBUS inside a page fault;
 * reads keep working; and appends work again once space returns, without a restart.
 *
 * 1. The real broker (a child process, so a SIGBUS would show as its death) on a small
 *    tmpfs mounted for the test (tmpfs supports posix_fallocate), filled with a ballast
 *    file; the ballast is deleted to give the space back. Needs root and mount(8): where
 *    the mount is refused the test is skipped, and (2) still runs.
 * 2. In process, with the addon's fallocate made to fail with ENOSPC on demand.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../../src/errors.js';
import { decodeBatches, readBatchHeader, setBaseOffset } from '../../src/log/batch.js';
import { CommitLog } from '../../src/log/commit-log.js';
import '../../src/native.js';
import { startBroker as startInProcessBroker } from '../../src/net/broker/server.js';
import { startBroker, stopBroker, type RunningBroker } from './broker-process.js';
import { publish, recordOf, sleep } from './helpers.js';
import { batch, fetchBody, produceBody, WireClient } from './wire.js';

const MiB = 1024 * 1024;
const SEGMENT_BYTES = MiB;
const BATCH_VALUE_BYTES = 30_000;

// ---- helpers ---------------------------------------------------------------------------

let batchSeq = 0;
/** A batch of one ~30 KB record; its bytes identify it. */
function nextBatch(): Buffer {
  const id = { gen: 9, producer: 0, seq: batchSeq++ };
  return batch([recordOf(id, BATCH_VALUE_BYTES)]);
}

/** Every stored batch of a partition, fetched from the broker. */
async function fetchAllBatches(c: WireClient, topic: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < 100_000; i++) {
    const r = await c.ok(fetchBody(topic, 0, offset, 4 * MiB));
    if (r.payload.length === 0) return out;
    for (let p = 0; p < r.payload.length;) {
      const h = readBatchHeader(r.payload, p);
      out.push(Buffer.from(r.payload.subarray(p, p + h.size)));
      offset = h.baseOffset + h.lastOffsetDelta + 1;
      p += h.size;
    }
  }
  throw new Error('fetchAllBatches did not reach the end');
}

interface Acked {
  baseOffset: number;
  bytes: Buffer;
}

/** The stored bytes of acknowledged batches equal what was sent (with the assigned base offset). */
function sameAsAcked(stored: Buffer[], acked: Acked[]): string[] {
  const problems: string[] = [];
  if (stored.length !== acked.length) problems.push(`${stored.length} batches stored, ${acked.length} acknowledged`);
  for (let i = 0; i < Math.min(stored.length, acked.length); i++) {
    const want = Buffer.from(acked[i]!.bytes);
    setBaseOffset(want, 0, acked[i]!.baseOffset);
    if (!stored[i]!.equals(want)) problems.push(`batch ${i} (offset ${acked[i]!.baseOffset}) differs from what was acknowledged`);
  }
  return problems;
}

/** Produces one batch; resolves with its base offset or the error code. */
async function produceOne(c: WireClient, topic: string, bytes: Buffer): Promise<{ baseOffset: number } | { code: string }> {
  const r = await c.call(produceBody(topic, 0), bytes);
  if (r.header.errorCode !== '') return { code: r.header.errorCode };
  const body = r.header.body;
  if (body?.case !== 'produce') throw new Error('produce response without a body');
  return { baseOffset: body.value.baseOffset };
}

// ---- 1. a real full filesystem ------------------------------------------------------------

function tryMount(dir: string, bytes: number): boolean {
  if (process.getuid?.() !== 0) return false;
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

function unmount(dir: string): void {
  for (let i = 0; i < 20; i++) {
    if (spawnSync('umount', [dir], { stdio: 'ignore', timeout: 10_000 }).status === 0) return;
    spawnSync('sleep', ['0.1']);
  }
  spawnSync('umount', ['-l', dir], { stdio: 'ignore', timeout: 10_000 });
}

const canMount = ((): boolean => {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-mount-probe-'));
  try {
    if (!tryMount(probe, 1024 * 1024)) return false;
    unmount(probe);
    return true;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
})();
if (!canMount) console.log('disk-full: cannot mount a tmpfs here (needs root and mount); the filesystem variant is skipped, the injected one runs');

/** A tmpfs of `bytes` mounted for the test; unmounted (after `before`) at teardown. */
function mountTmpfs(t: ExecutionContext, bytes: number, before: () => Promise<void>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-full-'));
  if (!tryMount(dir, bytes)) throw new Error(`mounting a tmpfs on ${dir} failed`);
  t.teardown(async () => {
    await before();
    unmount(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Fills `dir` with a ballast file until `leave` bytes are free. */
function writeBallast(file: string, dir: string, leave: number): number {
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    for (let i = 0; i < 4096 && freeBytes(dir) - chunk.length >= leave; i++) {
      fs.writeSync(fd, chunk);
      written += chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

(canMount ? test.serial : test.serial.skip)('tmpfs full: producers get ERR_DISK_FULL at roll time, reads keep working, appends resume when space returns; no SIGBUS', async (t) => {
  let broker: RunningBroker | undefined;
  const mount = mountTmpfs(t, 16 * MiB, async () => {
    if (broker !== undefined && broker.alive) {
      broker.child.kill('SIGKILL');
      await broker.exited;
    }
  });
  const dir = path.join(mount, 'data');
  broker = await startBroker(t, { dir, flush: 'sync', segmentBytes: SEGMENT_BYTES });
  const c = await WireClient.connect(broker.port);
  t.teardown(() => c.destroy());
  await c.ok({ case: 'createTopic', value: { name: 'full', partitions: 1 } });
  const acked: Acked[] = [];
  for (let i = 0; i < 4; i++) {
    const bytes = nextBatch();
    const r = await produceOne(c, 'full', bytes);
    if (!('baseOffset' in r)) throw new Error(`produce failed early: ${r.code}`);
    acked.push({ baseOffset: r.baseOffset, bytes });
  }
  // Leave room for about two more segments: the next rolls run out of space.
  const ballast = path.join(mount, 'ballast');
  const ballastBytes = writeBallast(ballast, mount, 2.5 * MiB);
  t.log(`ballast ${ballastBytes} bytes, ${freeBytes(mount)} bytes left`);

  // Produce until the disk is full: ten refusals in a row. (A produce may still succeed
  // between refusals: sealing the previous segment gives back its unused preallocation.)
  const codes = new Map<string, number>();
  let refusedInARow = 0;
  let successesAfterFirstRefusal = 0;
  for (let i = 0; i < 600 && refusedInARow < 10; i++) {
    const bytes = nextBatch();
    const r = await produceOne(c, 'full', bytes);
    if ('baseOffset' in r) {
      acked.push({ baseOffset: r.baseOffset, bytes });
      if (codes.size > 0) successesAfterFirstRefusal++;
      refusedInARow = 0;
      continue;
    }
    codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
    refusedInARow++;
    await sleep(5);
  }
  t.log(`${acked.length} batches acknowledged before the disk filled, ${freeBytes(mount)} bytes free, ${successesAfterFirstRefusal} successes between refusals`);
  t.is(refusedInARow, 10, 'the disk never filled up');
  t.deepEqual([...codes.keys()], [ErrorCode.DISK_FULL], `produce errors while full: ${JSON.stringify(Object.fromEntries(codes))}`);
  t.true(broker.alive, 'the broker died');

  // Reads keep working: everything acknowledged, exact.
  const reader = await WireClient.connect(broker.port);
  t.teardown(() => reader.destroy());
  t.deepEqual(sameAsAcked(await fetchAllBatches(reader, 'full'), acked), [], 'reads while the disk is full');
  const meta = await reader.ok({ case: 'metadata', value: { topics: ['full'] } });
  t.is(meta.header.body?.case, 'metadata');

  // Space returns: appends work again, across more rolls, without a restart.
  fs.rmSync(ballast);
  let resumed = 0;
  const afterErrors = new Map<string, number>();
  for (let i = 0; i < 120; i++) {
    const bytes = nextBatch();
    const r = await produceOne(c, 'full', bytes);
    if ('baseOffset' in r) {
      acked.push({ baseOffset: r.baseOffset, bytes });
      resumed++;
    } else afterErrors.set(r.code, (afterErrors.get(r.code) ?? 0) + 1);
    if (resumed >= 80) break;
  }
  t.deepEqual(Object.fromEntries(afterErrors), {}, 'produce errors after space returned');
  t.true(resumed >= 80);
  t.deepEqual(sameAsAcked(await fetchAllBatches(reader, 'full'), acked), [], 'reads after space returned');

  // A clean stop (exit 0, no signal) and a clean reopen with everything in it.
  c.destroy();
  reader.destroy();
  const exit = await stopBroker(broker);
  t.deepEqual(exit, { code: 0, signal: null }, broker.stderr().slice(-2000));
  broker = await startBroker(t, { dir, flush: 'sync', segmentBytes: SEGMENT_BYTES });
  const again = await WireClient.connect(broker.port);
  t.teardown(() => again.destroy());
  t.deepEqual(sameAsAcked(await fetchAllBatches(again, 'full'), acked), [], 'after a restart');
  again.destroy();
  t.deepEqual(await stopBroker(broker), { code: 0, signal: null });
  publish(t, { variant: 'tmpfs', tmpfsBytes: 16 * MiB, acknowledged: acked.length, diskFullAnswers: codes.get(ErrorCode.DISK_FULL) ?? 0, resumedAfterSpaceReturned: resumed });
});

// ---- 2. injected allocation failures ----------------------------------------------------

type Fallocate = (fd: number, offset: number, length: number) => void;
type FallocateAsync = (fd: number, offset: number, length: number) => Promise<void>;
const addon = createRequire(import.meta.url)('../../build/Release/commitlog.node') as { fallocate: Fallocate; fallocateAsync: FallocateAsync };
const originalFallocate = addon.fallocate;
const originalFallocateAsync = addon.fallocateAsync;
let diskFull = false;
let refused = 0;
const enospc = (): Error => Object.assign(new Error('ENOSPC: no space left on device, posix_fallocate'), { code: 'ENOSPC', errno: -28, syscall: 'posix_fallocate' });
addon.fallocate = (fd, offset, length) => {
  if (diskFull) {
    refused++;
    throw enospc();
  }
  originalFallocate(fd, offset, length);
};
addon.fallocateAsync = (fd, offset, length) => {
  if (diskFull) {
    refused++;
    return Promise.reject(enospc());
  }
  return originalFallocateAsync(fd, offset, length);
};

test.serial('injected ENOSPC from fallocate: ERR_DISK_FULL to producers, reads keep working, appends resume once allocation works again', async (t) => {
  t.teardown(() => {
    diskFull = false;
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-rel-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const quiet = { info: () => undefined, warn: () => undefined };
  const log = await CommitLog.open({ dir, flush: 'sync', logger: quiet, topicDefaults: { segmentBytes: 256 * 1024 } });
  const broker = await startInProcessBroker({ log, logger: quiet });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  await log.createTopic('full');
  const c = await WireClient.connect(broker.port);
  t.teardown(() => c.destroy());
  const acked: Acked[] = [];
  const codes = new Map<string, number>();
  // Rounds of: full for a while (across what would be a roll), then space again.
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 12; i++) {
      const bytes = nextBatch();
      const r = await produceOne(c, 'full', bytes);
      if (!('baseOffset' in r)) t.fail(`round ${round}: produce failed with space available: ${r.code}`);
      else acked.push({ baseOffset: r.baseOffset, bytes });
    }
    diskFull = true;
    let fullAnswers = 0;
    for (let i = 0; i < 20; i++) {
      const bytes = nextBatch();
      const r = await produceOne(c, 'full', bytes);
      if ('baseOffset' in r) acked.push({ baseOffset: r.baseOffset, bytes }); // still room in the active segment
      else {
        codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
        fullAnswers++;
      }
    }
    t.true(fullAnswers > 0, `round ${round}: no produce ran into the full disk`);
    t.deepEqual(sameAsAcked(await fetchAllBatches(c, 'full'), acked), [], `round ${round}: reads while full`);
    diskFull = false;
    await sleep(10);
  }
  t.deepEqual([...codes.keys()], [ErrorCode.DISK_FULL], `errors while full: ${JSON.stringify(Object.fromEntries(codes))}`);
  t.true(refused > 0);
  t.false(log.partition('full', 0).isFailed, 'the partition must not be failed by a full disk');
  await broker.close();
  await log.close();
  const again = await CommitLog.open({ dir, logger: quiet });
  t.true(again.recovery.clean);
  const stored: Buffer[] = [];
  for (const a of acked) {
    const [rec] = again.read('full', 0, a.baseOffset, { maxBytes: 1 });
    stored.push(rec?.value ?? Buffer.alloc(0));
  }
  t.is(again.latestOffset('full', 0), acked.length);
  t.true(acked.every((a, i) => readBatchValue(a.bytes).equals(stored[i]!)), 'every acknowledged record is exact after reopening');
  await again.close();
  publish(t, { variant: 'injected', acknowledged: acked.length, diskFullAnswers: codes.get(ErrorCode.DISK_FULL) ?? 0, refusedAllocations: refused });
});

/** The value of the single record in one of nextBatch()'s batches. */
function readBatchValue(bytes: Buffer): Buffer {
  return decodeBatches(bytes, 0, bytes.length, 0)[0]!.value!;
}
