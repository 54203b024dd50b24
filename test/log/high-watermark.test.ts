/**
 * The high watermark (issue 8.2): under `sync` nothing a reader can see is unflushed,
 * and waiters wake when the flush lands, not when the copy does; under `async`/`os`
 * readers see what is written.
 */
import test from 'ava';
import { CommitLog, type CommitLogOptions } from '../../src/log/commit-log.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * A flush hook that holds each flush until released (before its msync, or after it
 * and before the flush completes); openForever() lets every later flush through.
 */
function gate(where: 'beforeFlush' | 'afterFlush' = 'beforeFlush'): { hooks: NonNullable<CommitLogOptions['hooks']>; release(): void; openForever(): void; flushes: number } {
  let open: () => void = () => undefined;
  let opened = new Promise<void>((resolve) => (open = resolve));
  let forever = false;
  const g = {
    flushes: 0,
    hooks: {
      [where]: async () => {
        g.flushes++;
        if (!forever) await opened;
      },
    },
    release() {
      open();
      opened = new Promise<void>((resolve) => (open = resolve));
    },
    openForever() {
      forever = true;
      open();
    },
  };
  return g;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('under sync an appended record is invisible to read, readSlice, latestOffset, offsetForTimestamp and waits until its msync lands', async (t) => {
  const dir = tmpDir(t);
  const g = gate();
  const log = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0, hooks: g.hooks });
  t.teardown(() => log.close());
  await log.createTopic('t');
  const first = log.append('t', 0, [{ key: 'a', value: Buffer.from('one'), timestamp: 1000 }]);
  while (g.flushes === 0) await tick();
  // Copied into the mapping, not flushed.
  t.is(log.logEndOffset('t', 0), 1);
  t.is(log.latestOffset('t', 0), 0);
  t.deepEqual(log.read('t', 0, 0), []);
  t.is(log.readSlice('t', 0, 0, 1024), null);
  t.is(log.offsetForTimestamp('t', 0, 0), null);
  t.like(log.describeTopic('t').partitions[0], { nextOffset: 1, highWatermark: 0 });
  t.false(await log.waitForData('t', 0, 0, { timeoutMs: 30 }));
  const woken = log.waitForData('t', 0, 0, { timeoutMs: 10_000 });
  let wokeAt = -1;
  void woken.then(() => (wokeAt = g.flushes));
  await tick();
  t.is(wokeAt, -1, 'a waiter is not woken by the copy');

  g.release();
  t.deepEqual(await first, { baseOffset: 0, lastOffset: 0 });
  t.true(await woken);
  t.is(log.latestOffset('t', 0), 1);
  t.deepEqual(log.read('t', 0, 0).map((r) => r.value!.toString()), ['one']);
  t.is(log.offsetForTimestamp('t', 0, 0), 0);
});

test('under sync a read stops at the high watermark inside a segment: flushed batches only, never the ones behind them', async (t) => {
  const dir = tmpDir(t);
  const g = gate('afterFlush');
  const log = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0, hooks: g.hooks });
  t.teardown(() => log.close());
  await log.createTopic('t');
  const a = log.append('t', 0, [{ value: Buffer.from('a') }]);
  while (g.flushes === 0) await tick();
  // b is copied after a's msync, before a's flush completes: that flush does not cover it.
  const b = log.append('t', 0, [{ value: Buffer.from('b') }]);
  g.release();
  await a;
  t.is(log.latestOffset('t', 0), 1);
  t.deepEqual(log.read('t', 0, 0, { maxBytes: 1 << 20 }).map((r) => r.value!.toString()), ['a']);
  const slice = log.readSlice('t', 0, 0, 1 << 20)!;
  t.is(slice.length, log.readSlice('t', 0, 0, 1)!.length, 'the slice holds one batch');
  slice.release();
  while (g.flushes < 2) await tick();
  g.release();
  await b;
  t.deepEqual(log.read('t', 0, 0, { maxBytes: 1 << 20 }).map((r) => r.value!.toString()), ['a', 'b']);
});

test('a tail under sync yields a record only after its flush', async (t) => {
  const dir = tmpDir(t);
  const g = gate();
  const log = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0, hooks: g.hooks });
  t.teardown(() => log.close());
  await log.createTopic('t');
  const ac = new AbortController();
  const seen: string[] = [];
  const tailing = (async () => {
    for await (const r of log.tail('t', 0, { from: 'earliest', signal: ac.signal })) {
      seen.push(r.value!.toString());
      if (seen.length === 1) ac.abort();
    }
  })();
  const appended = log.append('t', 0, [{ value: Buffer.from('x') }]);
  while (g.flushes === 0) await tick();
  for (let i = 0; i < 5; i++) await tick();
  t.deepEqual(seen, []);
  g.release();
  await appended;
  await tailing;
  t.deepEqual(seen, ['x']);
});

for (const flush of ['async', 'os'] as const) {
  test(`under ${flush} the high watermark is the log end: a record is readable as soon as it is written`, async (t) => {
    const dir = tmpDir(t);
    const g = gate();
    const log = await CommitLog.open({ dir, flush, flushIntervalMs: 60_000, warmSegments: false, retentionCheckIntervalMs: 0, hooks: g.hooks });
    t.teardown(async () => {
      g.openForever();
      await log.close();
    });
    await log.createTopic('t');
    await log.append('t', 0, [{ value: Buffer.from('seen') }]);
    t.is(g.flushes, 0, 'nothing flushed yet');
    t.is(log.latestOffset('t', 0), 1);
    t.like(log.describeTopic('t').partitions[0], { nextOffset: 1, highWatermark: 1 });
    t.deepEqual(log.read('t', 0, 0).map((r) => r.value!.toString()), ['seen']);
  });
}
