import test from 'ava';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog, CommitLogError, ErrorCode, encodeBatch } from '../../src/index.js';
import type { CommitLogOptions, LogRecord, ProducerRecord } from '../../src/index.js';
import { tmpDir, until } from '../helpers/tmp.js';

const SEGMENT = 65536;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Opens a log with small segments; closed (if still open) when the test ends. */
async function openLog(t: ExecutionContext, dir: string, options: Partial<CommitLogOptions> = {}): Promise<CommitLog> {
  const log = await CommitLog.open({ dir, warmSegments: false, retentionCheckIntervalMs: 0, ...options, topicDefaults: { segmentBytes: SEGMENT, ...options.topicDefaults } });
  t.teardown(() => log.close());
  return log;
}

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

/** A comparable copy of a record (keys and values are views of the mapping). */
function plain(r: LogRecord): unknown {
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

/** Every record of a partition, read in steps of maxBytes. */
function readAll(log: CommitLog, topic: string, partition: number, maxBytes = 1 << 20): unknown[] {
  const out: unknown[] = [];
  let next = log.earliestOffset(topic, partition);
  for (;;) {
    const records = log.read(topic, partition, next, { maxBytes });
    if (records.length === 0) return out;
    for (const r of records) out.push(plain(r));
    next = records[records.length - 1].offset + 1;
  }
}

const TS = 1_700_000_000_000;

function rec(i: number, extra: Partial<ProducerRecord> = {}): ProducerRecord {
  return { key: `key-${i}`, value: `value-${i}`, timestamp: TS + i, ...extra };
}

const defaultConfig = {
  segmentBytes: SEGMENT,
  indexIntervalBytes: 4096,
  maxBatchBytes: 16 * 1024 * 1024,
  retentionBytes: -1,
  retentionMs: 7 * DAY_MS,
};

// ---------------------------------------------------------------- topics

test('createTopic returns the exact description of the new topic', async (t) => {
  const log = await openLog(t, tmpDir(t));
  const d = await log.createTopic('orders', { partitions: 2 });
  t.deepEqual(d, {
    name: 'orders',
    config: { partitions: 2, ...defaultConfig },
    partitions: [
      // A partition never written holds no disk space: its segment file is sparse.
      { partition: 0, logStartOffset: 0, nextOffset: 0, highWatermark: 0, sizeBytes: 0, diskBytes: 0, segments: 1 },
      { partition: 1, logStartOffset: 0, nextOffset: 0, highWatermark: 0, sizeBytes: 0, diskBytes: 0, segments: 1 },
    ],
  });
  t.deepEqual(log.describeTopic('orders'), d);
});

test('createTopic takes per-topic settings over the defaults', async (t) => {
  const log = await openLog(t, tmpDir(t));
  const d = await log.createTopic('custom', { partitions: 1, segmentBytes: 2 * SEGMENT, indexIntervalBytes: 100, maxBatchBytes: 1000, retentionBytes: 500_000, retentionMs: 60_000 });
  t.deepEqual(d.config, { partitions: 1, segmentBytes: 2 * SEGMENT, indexIntervalBytes: 100, maxBatchBytes: 1000, retentionBytes: 500_000, retentionMs: 60_000 });
});

test('createTopic with settings out of range throws ERR_INVALID_ARGUMENT and creates nothing', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await t.throwsAsync(log.createTopic('a', { partitions: 0 }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(log.createTopic('a', { segmentBytes: SEGMENT - 1 }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(log.createTopic('a', { retentionMs: 1.5 }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  t.deepEqual(log.listTopics(), []);
  t.false(fs.existsSync(path.join(dir, 'a')));
});

test('listTopics lists topics sorted by name, and describe shows the appended data', async (t) => {
  const log = await openLog(t, tmpDir(t));
  t.deepEqual(log.listTopics(), []);
  await log.createTopic('b');
  await log.createTopic('a', { partitions: 3 });
  await log.createTopic('c.x_y-z');
  t.deepEqual(log.listTopics(), ['a', 'b', 'c.x_y-z']);
  const r = await log.append('a', 2, [rec(0), rec(1)]);
  t.deepEqual(r, { baseOffset: 0, lastOffset: 1 });
  const size = encodeBatch([rec(0), rec(1)]).length;
  const parts = log.describeTopic('a').partitions;
  t.deepEqual(parts.map(({ diskBytes: _, ...rest }) => rest), [
    { partition: 0, logStartOffset: 0, nextOffset: 0, highWatermark: 0, sizeBytes: 0, segments: 1 },
    { partition: 1, logStartOffset: 0, nextOffset: 0, highWatermark: 0, sizeBytes: 0, segments: 1 },
    { partition: 2, logStartOffset: 0, nextOffset: 2, highWatermark: 2, sizeBytes: size, segments: 1 },
  ]);
  // Disk follows the data: one allocation step and two index pages, not a 1 GiB segment.
  t.deepEqual(parts.map((p) => p.diskBytes), [0, 0, parts[2].diskBytes]);
  t.true(parts[2].diskBytes >= size && parts[2].diskBytes <= 1024 * 1024, `diskBytes ${parts[2].diskBytes}`);
});

test('createTopic of an existing topic throws ERR_TOPIC_EXISTS and leaves it as it was', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t', { partitions: 2 });
  await log.append('t', 0, [rec(0)]);
  const before = log.describeTopic('t');
  await t.throwsAsync(log.createTopic('t'), { instanceOf: CommitLogError, code: ErrorCode.TOPIC_EXISTS });
  await t.throwsAsync(log.createTopic('t', { partitions: 5 }), { instanceOf: CommitLogError, code: ErrorCode.TOPIC_EXISTS });
  t.deepEqual(log.describeTopic('t'), before);
  t.deepEqual(readAll(log, 't', 0).length, 1);
});

test('invalid topic names throw ERR_INVALID_TOPIC everywhere a topic is named', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  const names = ['', '.', '..', '../x', 'a/b', 'x'.repeat(250), 'sp ace', '-x', 'a\0b', '/abs', 'ä'];
  for (const name of names) {
    const code = { instanceOf: CommitLogError, code: ErrorCode.INVALID_TOPIC };
    await t.throwsAsync(log.createTopic(name), code, JSON.stringify(name));
    t.throws(() => log.describeTopic(name), code);
    await t.throwsAsync(log.deleteTopic(name), code);
    await t.throwsAsync(log.append(name, 0, [rec(0)]), code);
    t.throws(() => log.read(name, 0, 0), code);
    t.throws(() => log.latestOffset(name, 0), code);
  }
  t.throws(() => log.describeTopic(42 as unknown as string), { instanceOf: CommitLogError, code: ErrorCode.INVALID_TOPIC });
  // Nothing was created inside or outside the data directory.
  t.deepEqual(fs.readdirSync(dir).filter((n) => !n.startsWith('.')), []);
});

test('a topic name of 249 characters (the maximum) is accepted', async (t) => {
  const log = await openLog(t, tmpDir(t));
  const name = 'x'.repeat(249);
  await log.createTopic(name);
  t.deepEqual(log.listTopics(), [name]);
});

test('naming a topic that does not exist throws ERR_UNKNOWN_TOPIC', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('known');
  const code = { instanceOf: CommitLogError, code: ErrorCode.UNKNOWN_TOPIC };
  t.throws(() => log.describeTopic('unknown'), code);
  t.throws(() => log.partition('unknown', 0), code);
  await t.throwsAsync(log.append('unknown', 0, [rec(0)]), code);
  await t.throwsAsync(log.appendBatch('unknown', 0, encodeBatch([rec(0)])), code);
  t.throws(() => log.read('unknown', 0, 0), code);
  t.throws(() => log.readSlice('unknown', 0, 0, 100), code);
  t.throws(() => log.earliestOffset('unknown', 0), code);
  t.throws(() => log.latestOffset('unknown', 0), code);
  t.throws(() => log.offsetForTimestamp('unknown', 0, 0), code);
  await t.throwsAsync(log.waitForData('unknown', 0, 0, { timeoutMs: 1 }), code);
  await t.throwsAsync(log.tail('unknown', 0).next(), code);
  await t.throwsAsync(log.flush('unknown'), code);
  await t.throwsAsync(log.deleteTopic('unknown'), code);
});

test('a partition outside the topic (2 of 2, -1, 1.5) throws ERR_UNKNOWN_PARTITION', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t', { partitions: 2 });
  for (const p of [2, -1, 1.5, Number.NaN, 100]) {
    const code = { instanceOf: CommitLogError, code: ErrorCode.UNKNOWN_PARTITION };
    t.throws(() => log.partition('t', p), code, String(p));
    await t.throwsAsync(log.append('t', p, [rec(0)]), code);
    await t.throwsAsync(log.appendBatch('t', p, encodeBatch([rec(0)])), code);
    t.throws(() => log.read('t', p, 0), code);
    t.throws(() => log.readSlice('t', p, 0, 10), code);
    t.throws(() => log.earliestOffset('t', p), code);
    t.throws(() => log.latestOffset('t', p), code);
    t.throws(() => log.offsetForTimestamp('t', p, 0), code);
    await t.throwsAsync(log.waitForData('t', p, 0, { timeoutMs: 1 }), code);
  }
  t.is(log.partition('t', 1).partition, 1);
});

test('deleteTopic removes the topic and its files; the name can be created again from offset 0', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('gone', { partitions: 2 });
  await log.createTopic('kept');
  for (let i = 0; i < 5; i++) await log.append('gone', 1, [rec(i)]);
  await log.append('kept', 0, [rec(0)]);
  await log.deleteTopic('gone');
  t.deepEqual(log.listTopics(), ['kept']);
  t.false(fs.existsSync(path.join(dir, 'gone')));
  t.throws(() => log.describeTopic('gone'), { instanceOf: CommitLogError, code: ErrorCode.UNKNOWN_TOPIC });
  await log.createTopic('gone');
  t.is(log.latestOffset('gone', 0), 0);
  t.deepEqual(await log.append('gone', 0, [rec(9)]), { baseOffset: 0, lastOffset: 0 });
  t.deepEqual(readAll(log, 'gone', 0), [plain({ offset: 0, timestamp: TS + 9, key: Buffer.from('key-9'), value: Buffer.from('value-9'), headers: [] })]);
  t.is(readAll(log, 'kept', 0).length, 1);
  await log.close();
  const again = await openLog(t, dir);
  t.deepEqual(again.listTopics(), ['gone', 'kept']);
  t.is(again.latestOffset('gone', 0), 1);
  t.is(again.describeTopic('gone').partitions.length, 1);
});

// ---------------------------------------------------------------- open, close, reopen

test('open without a dir throws ERR_INVALID_ARGUMENT', async (t) => {
  await t.throwsAsync(CommitLog.open({ dir: '' }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(CommitLog.open({ dir: tmpDir(t), flush: 'never' as 'os' }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(CommitLog.open({ dir: tmpDir(t), maxOpenSegments: 0 }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(CommitLog.open({ dir: tmpDir(t), flushIntervalMs: -5 }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
});

test('after close every call throws ERR_LOG_CLOSED, and close again resolves', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  await log.close();
  const code = { instanceOf: CommitLogError, code: ErrorCode.LOG_CLOSED };
  await t.throwsAsync(log.createTopic('u'), code);
  await t.throwsAsync(log.deleteTopic('t'), code);
  t.throws(() => log.listTopics(), code);
  t.throws(() => log.describeTopic('t'), code);
  t.throws(() => log.partition('t', 0), code);
  await t.throwsAsync(log.append('t', 0, [rec(1)]), code);
  await t.throwsAsync(log.appendBatch('t', 0, encodeBatch([rec(1)])), code);
  t.throws(() => log.read('t', 0, 0), code);
  t.throws(() => log.readSlice('t', 0, 0, 100), code);
  t.throws(() => log.earliestOffset('t', 0), code);
  t.throws(() => log.latestOffset('t', 0), code);
  t.throws(() => log.offsetForTimestamp('t', 0, 0), code);
  await t.throwsAsync(log.waitForData('t', 0, 5, { timeoutMs: 1 }), code);
  await t.throwsAsync(log.tail('t', 0).next(), code);
  await t.throwsAsync(log.flush(), code);
  await t.throwsAsync(log.enforceRetention(), code);
  await t.notThrowsAsync(log.close());
});

test('a PartitionLog held across close throws ERR_LOG_CLOSED', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  const p = log.partition('t', 0);
  await log.close();
  await t.throwsAsync(p.append([rec(0)]), { instanceOf: CommitLogError, code: ErrorCode.LOG_CLOSED });
  t.throws(() => p.read(0, 100), { instanceOf: CommitLogError, code: ErrorCode.LOG_CLOSED });
  await t.throwsAsync(p.flush(), { instanceOf: CommitLogError, code: ErrorCode.LOG_CLOSED });
});

test('reopening after close returns every record byte-exact and reports a clean recovery', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('a', { partitions: 2 });
  await log.createTopic('b');
  const big = Buffer.alloc(5000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  for (let i = 0; i < 120; i++) {
    await log.append('a', i % 2, [
      { key: i % 3 === 0 ? null : `k${i}`, value: i % 5 === 0 ? null : big.subarray(0, i * 40), headers: [{ key: 'h', value: Buffer.from([i]) }, { key: 'h', value: null }], timestamp: TS + i },
      { key: Buffer.from([0, 1, 2, i]), value: '', headers: { 'ключ': 'значение', n: String(i) }, timestamp: TS - i },
    ]);
  }
  await log.append('b', 0, [rec(0)]);
  const before = { a0: readAll(log, 'a', 0), a1: readAll(log, 'a', 1), b0: readAll(log, 'b', 0) };
  // diskBytes follows allocation steps, which differ between lives: compared apart (allocation.test.ts).
  const logical = (d: ReturnType<CommitLog['describeTopic']>) => ({ ...d, partitions: d.partitions.map(({ diskBytes: _, ...p }) => p) });
  const describeA = logical(log.describeTopic('a'));
  const describeB = logical(log.describeTopic('b'));
  t.is(before.a0.length, 120);
  t.true(describeA.partitions[0].segments > 1, 'the test wants a roll');
  await log.close();
  t.true(fs.existsSync(path.join(dir, '.clean-shutdown')));

  const again = await openLog(t, dir);
  t.false(fs.existsSync(path.join(dir, '.clean-shutdown')), 'the marker is removed while open');
  t.is(again.recovery.clean, true);
  t.is(again.recovery.droppedBatches, 0);
  t.is(again.recovery.droppedBytes, 0);
  t.deepEqual(again.recovery.partitions.map((p) => [p.topic, p.partition, p.clean, p.droppedBatches, p.droppedBytes, p.droppedSegments, p.rebuiltIndexes]), [
    ['a', 0, true, 0, 0, 0, 0],
    ['a', 1, true, 0, 0, 0, 0],
    ['b', 0, true, 0, 0, 0, 0],
  ]);
  t.deepEqual(again.listTopics(), ['a', 'b']);
  t.deepEqual(logical(again.describeTopic('a')), describeA);
  t.deepEqual(logical(again.describeTopic('b')), describeB);
  t.deepEqual({ a0: readAll(again, 'a', 0), a1: readAll(again, 'a', 1), b0: readAll(again, 'b', 0) }, before);
  // Appends continue where the log ended.
  t.deepEqual(await again.append('a', 0, [rec(1000)]), { baseOffset: 120, lastOffset: 120 });
  await again.close();
  const third = await openLog(t, dir);
  t.is(third.latestOffset('a', 0), 121);
  t.deepEqual(readAll(third, 'a', 0).slice(0, 120), before.a0);
});

for (const flush of ['sync', 'async', 'os'] as const) {
  test(`appends called just before close (flush '${flush}') all resolve, across rolls, and are there after reopen`, async (t) => {
    const dir = tmpDir(t);
    const log = await openLog(t, dir, { flush });
    await log.createTopic('t');
    const appends = Array.from({ length: 100 }, (_, i) => log.append('t', 0, [rec(i, { value: Buffer.alloc(3000, i) })]));
    const closing = log.close();
    const results = await Promise.all(appends);
    await closing;
    t.deepEqual(results.map((r) => r.baseOffset), Array.from({ length: 100 }, (_, i) => i));
    const again = await openLog(t, dir, { flush });
    t.true(again.recovery.clean);
    const all = readAll(again, 't', 0) as { offset: number; key: string }[];
    t.deepEqual(all.map((r) => r.key), Array.from({ length: 100 }, (_, i) => Buffer.from(`key-${i}`).toString('hex')));
    t.true(again.describeTopic('t').partitions[0].segments >= 4);
  });
}

test('a second open of the same directory throws ERR_LOCKED while the first is open, and works after close', async (t) => {
  const dir = tmpDir(t);
  const first = await openLog(t, dir);
  await first.createTopic('t');
  await first.append('t', 0, [rec(0)]);
  const err = await t.throwsAsync(CommitLog.open({ dir }), { instanceOf: CommitLogError, code: ErrorCode.LOCKED });
  t.is(err?.path, path.resolve(dir));
  // The failed open changed nothing: the first log still works.
  t.deepEqual(await first.append('t', 0, [rec(1)]), { baseOffset: 1, lastOffset: 1 });
  await first.close();
  const second = await openLog(t, dir);
  t.is(second.latestOffset('t', 0), 2);
  t.is(second.recovery.clean, true);
});

// ---------------------------------------------------------------- waiting and tailing

test('waitForData resolves true at once for an offset that exists', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0), rec(1)]);
  t.true(await log.waitForData('t', 0, 1, { timeoutMs: 1 }));
});

test('waitForData resolves true when an append brings the offset', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  const waiting = log.waitForData('t', 0, 2, { timeoutMs: 10_000 });
  await log.append('t', 0, [rec(0)]);
  await log.append('t', 0, [rec(1), rec(2)]);
  t.true(await waiting);
});

test('waitForData resolves false on timeout and on abort', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  const started = Date.now();
  t.false(await log.waitForData('t', 0, 1, { timeoutMs: 30 }));
  t.true(Date.now() - started >= 25);
  const ac = new AbortController();
  const waiting = log.waitForData('t', 0, 1, { signal: ac.signal });
  setTimeout(() => ac.abort(), 10);
  t.false(await waiting);
  const aborted = new AbortController();
  aborted.abort();
  t.false(await log.waitForData('t', 0, 1, { signal: aborted.signal }));
});

test('tail yields the existing records, then those appended later, and stops on abort', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0), rec(1)]);
  await log.append('t', 0, [rec(2)]);
  const ac = new AbortController();
  const seen: number[] = [];
  const iterating = (async () => {
    for await (const r of log.tail('t', 0, { signal: ac.signal })) {
      seen.push(r.offset);
      t.is(r.key?.toString(), `key-${r.offset}`);
      if (r.offset === 2) {
        // Appended only once the existing records were seen.
        setTimeout(() => void log.append('t', 0, [rec(3), rec(4)]), 5);
      }
      if (r.offset === 4) setTimeout(() => void log.append('t', 0, [rec(5)]), 5);
      if (r.offset === 5) setTimeout(() => ac.abort(), 5);
    }
  })();
  await iterating;
  t.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
});

test('tail from "latest" yields only new records; from an offset starts there', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0), rec(1), rec(2)]);
  const ac = new AbortController();
  const fromLatest: number[] = [];
  const fromOne: number[] = [];
  const a = (async () => {
    for await (const r of log.tail('t', 0, { from: 'latest', signal: ac.signal })) fromLatest.push(r.offset);
  })();
  const b = (async () => {
    for await (const r of log.tail('t', 0, { from: 1, signal: ac.signal })) fromOne.push(r.offset);
  })();
  await new Promise((r) => setTimeout(r, 10));
  await log.append('t', 0, [rec(3)]);
  await until(() => fromLatest.length === 1 && fromOne.length === 3, 5000, 'tails to see offset 3');
  ac.abort();
  await Promise.all([a, b]);
  t.deepEqual(fromLatest, [3]);
  t.deepEqual(fromOne, [1, 2, 3]);
});

test('a tail waiting at the end ends when the log closes', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  const seen: number[] = [];
  const iterating = (async () => {
    for await (const r of log.tail('t', 0)) seen.push(r.offset);
  })();
  await until(() => seen.length === 1);
  await log.close();
  await iterating;
  t.deepEqual(seen, [0]);
});

// ---------------------------------------------------------------- flush policies

for (const flush of ['sync', 'async', 'os'] as const) {
  test(`flush '${flush}' keeps every record across close and reopen`, async (t) => {
    const dir = tmpDir(t);
    const log = await openLog(t, dir, { flush, flushIntervalMs: 5 });
    await log.createTopic('t');
    const results = [];
    for (let i = 0; i < 200; i++) results.push(await log.append('t', 0, [rec(i, { value: Buffer.alloc(500, i) })]));
    t.deepEqual(results.map((r) => r.baseOffset), Array.from({ length: 200 }, (_, i) => i));
    const before = readAll(log, 't', 0);
    await log.close();
    const again = await openLog(t, dir, { flush });
    t.true(again.recovery.clean);
    t.is(again.latestOffset('t', 0), 200);
    t.deepEqual(readAll(again, 't', 0), before);
  });
}

test("flush 'async' flushes in the background every flushIntervalMs without being asked", async (t) => {
  let flushes = 0;
  const log = await openLog(t, tmpDir(t), { flush: 'async', flushIntervalMs: 5, hooks: { beforeFlush: () => void flushes++ } });
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  t.is(flushes, 0, 'an async append does not wait for a flush');
  await until(() => flushes >= 1, 5000, 'a background flush');
  const seen = flushes;
  await new Promise((r) => setTimeout(r, 30));
  t.is(flushes, seen, 'nothing new to flush: no more flushes');
});

test("flush 'async' starts a flush once flushBytes are unflushed", async (t) => {
  let flushes = 0;
  const log = await openLog(t, tmpDir(t), { flush: 'async', flushIntervalMs: 3_600_000, flushBytes: 4096, hooks: { beforeFlush: () => void flushes++ } });
  await log.createTopic('t');
  await log.append('t', 0, [rec(0, { value: Buffer.alloc(100) })]);
  await new Promise((r) => setTimeout(r, 20));
  t.is(flushes, 0);
  await log.append('t', 0, [rec(1, { value: Buffer.alloc(5000) })]);
  await until(() => flushes >= 1, 5000, 'a flush after flushBytes');
  t.pass();
});

test("flush 'os' never flushes on append; flush() and close() still do", async (t) => {
  let flushes = 0;
  const log = await openLog(t, tmpDir(t), { flush: 'os', hooks: { beforeFlush: () => void flushes++ } });
  await log.createTopic('t');
  for (let i = 0; i < 20; i++) await log.append('t', 0, [rec(i)]);
  await new Promise((r) => setTimeout(r, 20));
  t.is(flushes, 0);
  await log.flush();
  t.is(flushes, 1);
  await log.append('t', 0, [rec(20)]);
  await log.close();
  t.is(flushes, 2);
});

test("flush 'sync' resolves an append only after a flush covering it", async (t) => {
  const events: string[] = [];
  const log = await openLog(t, tmpDir(t), { flush: 'sync', hooks: { afterFlush: () => void events.push('flushed') } });
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]).then(() => events.push('resolved'));
  t.deepEqual(events, ['flushed', 'resolved']);
});

test('group commit: 64 concurrent appends get 64 dense offsets from far fewer flushes', async (t) => {
  let flushes = 0;
  const log = await openLog(t, tmpDir(t), { flush: 'sync', hooks: { beforeFlush: () => void flushes++ } });
  await log.createTopic('t');
  await log.append('t', 0, [rec(-1)]);
  flushes = 0;
  const results = await Promise.all(Array.from({ length: 64 }, (_, i) => log.append('t', 0, [rec(i)])));
  const offsets = results.map((r) => r.baseOffset);
  t.deepEqual(offsets, Array.from({ length: 64 }, (_, i) => i + 1), 'in call order, dense, distinct');
  t.true(results.every((r) => r.lastOffset === r.baseOffset));
  t.true(flushes < 64, `${flushes} flushes for 64 appends`);
  t.true(flushes >= 1);
  t.log(`${flushes} flushes for 64 appends`);
  const read = log.read('t', 0, 1);
  t.deepEqual(read.map((r) => r.key?.toString()), Array.from({ length: 64 }, (_, i) => `key-${i}`));
});

// ---------------------------------------------------------------- failure

test('a failed flush rejects that append with ERR_LOG_FAILED and every later one until reopen; reads still work', async (t) => {
  const dir = tmpDir(t);
  let failing = false;
  const hooks = {
    beforeFlush: (topic: string) => {
      if (failing && topic === 't') throw Object.assign(new Error('injected EIO'), { code: 'EIO', syscall: 'msync' });
    },
  };
  const log = await openLog(t, dir, { flush: 'sync', hooks });
  await log.createTopic('t', { partitions: 2 });
  await log.createTopic('other');
  for (let i = 0; i < 10; i++) await log.append('t', 0, [rec(i)]);
  const acknowledged = readAll(log, 't', 0);
  failing = true;
  const err = await t.throwsAsync(log.append('t', 0, [rec(10)]), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  t.is(err?.errno, 'EIO');
  t.is(err?.syscall, 'msync');
  t.is(err?.topic, 't');
  t.is(err?.partition, 0);
  failing = false;
  // Sticky: the partition refuses appends even though flushing would work again.
  await t.throwsAsync(log.append('t', 0, [rec(11)]), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  await t.throwsAsync(log.appendBatch('t', 0, encodeBatch([rec(12)])), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  await t.throwsAsync(log.flush('t'), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  await t.throwsAsync(log.append('t', 0, [rec(13)]), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  // Reads still work and return every acknowledged record.
  t.deepEqual(readAll(log, 't', 0).slice(0, 10), acknowledged);
  t.is(log.read('t', 0, 3)[0].offset, 3);
  // Other partitions are not affected.
  t.deepEqual(await log.append('t', 1, [rec(0)]), { baseOffset: 0, lastOffset: 0 });
  t.deepEqual(await log.append('other', 0, [rec(0)]), { baseOffset: 0, lastOffset: 0 });
  await log.close();
  t.false(fs.existsSync(path.join(dir, '.clean-shutdown')), 'a failed partition is not a clean close');

  const again = await openLog(t, dir, { flush: 'sync' });
  t.false(again.recovery.clean);
  t.deepEqual(readAll(again, 't', 0).slice(0, 10), acknowledged);
  const end = again.latestOffset('t', 0);
  t.true(end === 10 || end === 11, `end ${end}`);
  t.deepEqual(await again.append('t', 0, [rec(20)]), { baseOffset: end, lastOffset: end });
  t.is(again.latestOffset('t', 1), 1);
});

test('concurrent appends waiting on a failing flush all reject with ERR_LOG_FAILED', async (t) => {
  let failing = false;
  const log = await openLog(t, tmpDir(t), {
    flush: 'sync',
    hooks: {
      beforeFlush: async () => {
        if (failing) {
          await new Promise((r) => setTimeout(r, 5));
          throw new Error('injected');
        }
      },
    },
  });
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  failing = true;
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append('t', 0, [rec(i + 1)])));
  for (const o of outcomes) {
    t.is(o.status, 'rejected');
    if (o.status === 'rejected') t.is((o.reason as CommitLogError).code, ErrorCode.LOG_FAILED);
  }
});
