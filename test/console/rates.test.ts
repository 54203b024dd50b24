import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { OffsetsStore } from '../../src/index/offsets-store.js';
import { RateSampler, combineFlushHooks, combineObservers } from '../../src/console/rates.js';
import { renderBytes } from '../../src/console/records.js';

async function openLog(t: ExecutionContext, sampler: RateSampler): Promise<{ log: CommitLog; offsets: OffsetsStore }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-rates-'));
  const log = await CommitLog.open({ dir, flush: 'sync', hooks: sampler.flushHooks });
  const offsets = new OffsetsStore(dir);
  t.teardown(async () => {
    sampler.stop();
    await offsets.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { log, offsets };
}

test('a sample counts appended records per partition and topic, fetched records per topic, flushes and lag', async (t) => {
  const sampler = new RateSampler(60_000, 3); // the timer never fires here: samples are taken by hand
  const { log, offsets } = await openLog(t, sampler);
  await log.createTopic('a', { partitions: 2 });
  sampler.attach(log, { offsets, stats: () => ({ connections: 4 }) });
  await log.append('a', 0, [{ value: '1' }, { value: '2' }, { value: '3' }]);
  await log.append('a', 1, [{ value: '4' }]);
  sampler.observer.onRequest({ kind: 'fetch', topic: 'a', durationMs: 1, errorCode: '', bytes: 100, records: 5 });
  sampler.observer.onRequest({ kind: 'fetch', topic: 'a', durationMs: 1, errorCode: 'ERR_IO', bytes: 0, records: 0 });
  await offsets.commit('g', [{ topic: 'a', partition: 0, offset: 1 }]);
  const s = sampler.sample()!;
  // Rates are per second over the elapsed interval, so compare them with each other.
  t.true(s.recordsInPerSec > 0);
  t.is(s.topics.a!.recordsInPerSec, s.recordsInPerSec);
  t.is(Math.round((s.topics.a!.recordsOutPerSec / s.recordsInPerSec) * 4), 5, 'five fetched for four appended');
  const rates = sampler.partitionRatesOf('a', 2);
  t.is(Math.round((rates[0]! / rates[1]!) * 10), 30, 'three records on partition 0 for one on 1');
  t.is(s.connections, 4);
  t.true(s.flushes >= 2, `sync appends flushed (${s.flushes})`);
  t.true(s.flushMeanMs! >= 0 && s.flushMaxMs! >= s.flushMeanMs!);
  t.deepEqual(s.lag, { g: 2 });
  // Nothing happened since: zero rates, no flush figures.
  const idle = sampler.sample()!;
  t.deepEqual([idle.recordsInPerSec, idle.recordsOutPerSec, idle.flushes, idle.flushMeanMs], [0, 0, 0, null]);
  // The ring keeps the last historySize samples.
  sampler.sample();
  sampler.sample();
  t.is(sampler.samples().length, 3);
  t.is(sampler.samples().at(-1)!.recordsInPerSec, 0);
});

test('a multiFetch counts the records it sent per topic', async (t) => {
  const sampler = new RateSampler(60_000, 3);
  const { log, offsets } = await openLog(t, sampler);
  await log.createTopic('a', { partitions: 1 });
  await log.createTopic('b', { partitions: 1 });
  sampler.attach(log, { offsets, stats: () => ({ connections: 1 }) });
  await log.append('a', 0, [{ value: '1' }, { value: '2' }]);
  sampler.observer.onRequest({ kind: 'multiFetch', topic: '', durationMs: 1, errorCode: '', bytes: 300, records: 6, topics: [{ topic: 'a', bytes: 100, records: 2 }, { topic: 'b', bytes: 200, records: 4 }] });
  const s = sampler.sample()!;
  t.is(Math.round(s.topics.a!.recordsOutPerSec / s.recordsInPerSec), 1, 'two out of a for two in');
  t.is(Math.round((s.topics.b!.recordsOutPerSec / s.recordsInPerSec) * 2), 4, 'four out of b');
  t.is(Math.round(s.recordsOutPerSec / s.recordsInPerSec), 3);
});

test('subscribers get every sample until they unsubscribe; a throwing one does not stop the others', async (t) => {
  const sampler = new RateSampler(60_000);
  const { log, offsets } = await openLog(t, sampler);
  sampler.attach(log, { offsets, stats: () => ({ connections: 0 }) });
  const got: number[] = [];
  sampler.subscribe(() => {
    throw new Error('a closed response');
  });
  const off = sampler.subscribe((s) => got.push(s.time));
  sampler.sample();
  sampler.sample();
  off();
  sampler.sample();
  t.is(got.length, 2);
});

test('combined observers and flush hooks call each, awaiting hooks that return promises, in order', async (t) => {
  const calls: string[] = [];
  t.is(combineObservers(undefined, undefined), undefined);
  const one = { onRequest: () => calls.push('one') };
  t.is(combineObservers(one, undefined), one);
  combineObservers(one, { onRequest: () => calls.push('two') })!.onRequest({ kind: 'fetch', topic: 't', durationMs: 0, errorCode: '', bytes: 0, records: 0 });
  t.deepEqual(calls, ['one', 'two']);
  calls.length = 0;
  const hooks = combineFlushHooks(
    { beforeFlush: async () => { await new Promise((r) => setTimeout(r, 5)); calls.push('a-before'); } },
    { beforeFlush: () => void calls.push('b-before'), afterFlush: () => void calls.push('b-after') },
  )!;
  await hooks.beforeFlush!('t', 0);
  await hooks.afterFlush!('t', 0);
  t.deepEqual(calls, ['a-before', 'b-before', 'b-after']);
  const failing = combineFlushHooks({ beforeFlush: () => Promise.reject(new Error('injected')) }, { beforeFlush: () => void calls.push('never') })!;
  await t.throwsAsync(async () => failing.beforeFlush!('t', 0), { message: 'injected' });
  t.false(calls.includes('never'));
});

test('bytes render as JSON pretty-printed, text, or hex; long values are cut with their size kept', (t) => {
  t.deepEqual(renderBytes(Buffer.from('{"a":[1,2]}')), { encoding: 'json', text: '{\n  "a": [\n    1,\n    2\n  ]\n}', sizeBytes: 11, truncated: false });
  t.deepEqual(renderBytes(Buffer.from('42')), { encoding: 'json', text: '42', sizeBytes: 2, truncated: false });
  t.deepEqual(renderBytes(Buffer.from('{not json')), { encoding: 'text', text: '{not json', sizeBytes: 9, truncated: false });
  t.deepEqual(renderBytes(Buffer.from('line one\nline two\tend')), { encoding: 'text', text: 'line one\nline two\tend', sizeBytes: 21, truncated: false });
  t.deepEqual(renderBytes(Buffer.from('héllo ✓')), { encoding: 'text', text: 'héllo ✓', sizeBytes: 10, truncated: false });
  t.deepEqual(renderBytes(Buffer.from([0x68, 0x69, 0x00])), { encoding: 'hex', text: '68 69 00', sizeBytes: 3, truncated: false });
  t.deepEqual(renderBytes(Buffer.from([0xc3])), { encoding: 'hex', text: 'c3', sizeBytes: 1, truncated: false });
  t.deepEqual(renderBytes(Buffer.alloc(0)), { encoding: 'text', text: '', sizeBytes: 0, truncated: false });
  t.deepEqual(renderBytes(null), { encoding: 'null', text: '', sizeBytes: 0, truncated: false });
  const big = renderBytes(Buffer.from(JSON.stringify({ s: 'x'.repeat(100_000) })));
  t.deepEqual([big.encoding, big.text.length, big.sizeBytes, big.truncated], ['text', 64 * 1024, 100_008, true]);
});
