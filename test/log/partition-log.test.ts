import test from 'ava';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog, CommitLogError, ErrorCode, encodeBatch } from '../../src/index.js';
import type { CommitLogOptions, LogRecord, ProducerRecord } from '../../src/index.js';
import { CRC_POS, setBaseOffset } from '../../src/log/batch.js';
import { tmpDir, until } from '../helpers/tmp.js';

const SEGMENT = 65536;
const TS = 1_700_000_000_000;
const DAY_MS = 24 * 60 * 60 * 1000;

async function openLog(t: ExecutionContext, dir: string, options: Partial<CommitLogOptions> = {}): Promise<CommitLog> {
  const log = await CommitLog.open({ dir, flush: 'os', warmSegments: false, retentionCheckIntervalMs: 0, ...options, topicDefaults: { segmentBytes: SEGMENT, ...options.topicDefaults } });
  t.teardown(() => log.close());
  return log;
}

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

function plain(r: LogRecord): unknown {
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

function readAll(log: CommitLog, topic: string, partition: number, from = log.earliestOffset(topic, partition), maxBytes = 1 << 20): LogRecord[] {
  const out: LogRecord[] = [];
  let next = from;
  for (;;) {
    const records = log.read(topic, partition, next, { maxBytes });
    if (records.length === 0) return out;
    out.push(...records);
    next = records[records.length - 1].offset + 1;
  }
}

/** The .log files of a partition, as [baseOffset, size], oldest first. */
function segmentFiles(dir: string, topic: string, partition: number, suffix = '.log'): [number, number][] {
  const pdir = path.join(dir, topic, String(partition));
  return fs.readdirSync(pdir)
    .filter((n) => /^\d{20}\.log/.test(n) && n.endsWith(suffix))
    .sort()
    .map((n) => [Number(n.slice(0, 20)), fs.statSync(path.join(pdir, n)).size]);
}

function rec(i: number, valueBytes = 10): ProducerRecord {
  return { key: `k${i}`, value: Buffer.alloc(valueBytes, i & 0xff), timestamp: TS + i };
}

/** Appends `count` batches of `perBatch` records of `valueBytes` each; returns the batch sizes. */
async function fill(log: CommitLog, topic: string, count: number, perBatch: number, valueBytes: number, partition = 0, ts?: (offset: number) => number): Promise<number[]> {
  const sizes: number[] = [];
  for (let b = 0; b < count; b++) {
    const base = log.latestOffset(topic, partition);
    const records = Array.from({ length: perBatch }, (_, i) => ({ ...rec(base + i, valueBytes), ...(ts ? { timestamp: ts(base + i) } : {}) }));
    sizes.push(encodeBatch(records).length);
    await log.append(topic, partition, records);
  }
  return sizes;
}

// ---------------------------------------------------------------- append and read

test('append returns the exact base and last offsets of each batch', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  t.deepEqual(await log.append('t', 0, [rec(0)]), { baseOffset: 0, lastOffset: 0 });
  t.deepEqual(await log.append('t', 0, [rec(1), rec(2), rec(3)]), { baseOffset: 1, lastOffset: 3 });
  t.deepEqual(await log.append('t', 0, [rec(4), rec(5)]), { baseOffset: 4, lastOffset: 5 });
  t.is(log.latestOffset('t', 0), 6);
  t.is(log.earliestOffset('t', 0), 0);
});

test('an empty record list is rejected with ERR_INVALID_ARGUMENT and stores nothing', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await t.throwsAsync(log.append('t', 0, []), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  t.is(log.latestOffset('t', 0), 0);
});

test('offsets stay dense across many appends and segment rolls', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('t');
  let expected = 0;
  for (let b = 0; b < 300; b++) {
    const n = 1 + (b % 7);
    const records = Array.from({ length: n }, (_, i) => rec(expected + i, 100 + ((b * 37) % 900)));
    const r = await log.append('t', 0, records);
    t.deepEqual(r, { baseOffset: expected, lastOffset: expected + n - 1 });
    expected += n;
  }
  const d = log.describeTopic('t').partitions[0];
  t.is(d.nextOffset, expected);
  t.true(d.segments >= 3, `${d.segments} segments`);
  const all = readAll(log, 't', 0);
  t.deepEqual(all.map((r) => r.offset), Array.from({ length: expected }, (_, i) => i));
  t.true(all.every((r) => r.key!.toString() === `k${r.offset}` && r.timestamp === TS + r.offset));
  // Segment files are named by the first offset they hold, and the names chain.
  await log.close();
  const files = segmentFiles(dir, 't', 0);
  t.is(files.length, d.segments);
  t.is(files[0][0], 0);
  const again = await openLog(t, dir);
  for (const [base] of files) {
    const first = again.read('t', 0, base, { maxBytes: 1 })[0];
    t.is(first.offset, base);
  }
});

test('read returns exact keys, values, headers and timestamps', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [
    { key: 'a', value: 'first', timestamp: 1000, headers: { trace: 'x1', empty: '', nothing: null } },
    { key: null, value: Buffer.from([0, 255, 7]), timestamp: 999, headers: [{ key: 'dup', value: Buffer.from('1') }, { key: 'dup', value: Buffer.from('2') }] },
    { value: null, timestamp: 5000 },
    { key: Buffer.alloc(0), value: '', timestamp: 0 },
  ]);
  const records = log.read('t', 0, 0);
  t.deepEqual(records.map(plain), [
    { offset: 0, timestamp: 1000, key: hex(Buffer.from('a')), value: hex(Buffer.from('first')), headers: [['trace', hex(Buffer.from('x1'))], ['empty', ''], ['nothing', null]] },
    { offset: 1, timestamp: 999, key: null, value: '00ff07', headers: [['dup', '31'], ['dup', '32']] },
    { offset: 2, timestamp: 5000, key: null, value: null, headers: [] },
    { offset: 3, timestamp: 0, key: '', value: '', headers: [] },
  ]);
});

test('records without a timestamp get the time of the append', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  const before = Date.now();
  await log.append('t', 0, [{ value: 'a' }, { value: 'b' }]);
  const after = Date.now();
  const [a, b] = log.read('t', 0, 0);
  t.true(a.timestamp >= before && a.timestamp <= after);
  t.is(b.timestamp, a.timestamp);
});

test('read from an offset inside a batch skips the earlier records of that batch', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0), rec(1)]);
  await log.append('t', 0, [rec(2), rec(3), rec(4), rec(5)]);
  await log.append('t', 0, [rec(6)]);
  t.deepEqual(log.read('t', 0, 4).map((r) => r.offset), [4, 5, 6]);
  t.deepEqual(log.read('t', 0, 5, { maxBytes: 1 }).map((r) => r.offset), [5]);
  t.deepEqual(log.read('t', 0, 1, { maxBytes: 1 }).map((r) => r.offset), [1]);
  t.deepEqual(log.read('t', 0, 6).map((r) => r.offset), [6]);
  t.is(log.read('t', 0, 3)[0].key!.toString(), 'k3');
});

test('read returns at least one whole batch, then whole batches up to maxBytes', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  const sizes = await fill(log, 't', 5, 2, 100);
  t.deepEqual(log.read('t', 0, 0, { maxBytes: 1 }).map((r) => r.offset), [0, 1]);
  t.deepEqual(log.read('t', 0, 0, { maxBytes: sizes[0] + sizes[1] - 1 }).map((r) => r.offset), [0, 1]);
  t.deepEqual(log.read('t', 0, 0, { maxBytes: sizes[0] + sizes[1] }).map((r) => r.offset), [0, 1, 2, 3]);
  t.deepEqual(log.read('t', 0, 3, { maxBytes: sizes[1] + sizes[2] }).map((r) => r.offset), [3, 4, 5]);
  t.is(log.read('t', 0, 0).length, 10);
  t.throws(() => log.read('t', 0, 0, { maxBytes: 0 }), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
});

test('read at the latest offset returns no records', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  t.deepEqual(log.read('t', 0, 0), []);
  await log.append('t', 0, [rec(0), rec(1)]);
  t.deepEqual(log.read('t', 0, 2), []);
  t.is(log.readSlice('t', 0, 2, 100), null);
});

test('read below the earliest or above the latest offset throws ERR_OFFSET_OUT_OF_RANGE', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0), rec(1)]);
  for (const offset of [-1, 3, 1000, 0.5, Number.NaN]) {
    const err = t.throws(() => log.read('t', 0, offset), { instanceOf: CommitLogError, code: ErrorCode.OFFSET_OUT_OF_RANGE }, String(offset));
    if (Number.isInteger(offset)) t.is(err?.offset, offset);
    t.throws(() => log.readSlice('t', 0, offset, 100), { instanceOf: CommitLogError, code: ErrorCode.OFFSET_OUT_OF_RANGE });
  }
});

test('a batch larger than maxBatchBytes is rejected with ERR_RECORD_TOO_LARGE and nothing stored changes', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('t', { maxBatchBytes: 1000 });
  await log.append('t', 0, [rec(0, 100)]);
  const before = log.describeTopic('t');
  const bytesBefore = readAll(log, 't', 0).map(plain);
  await t.throwsAsync(log.append('t', 0, [rec(1, 1000)]), { instanceOf: CommitLogError, code: ErrorCode.RECORD_TOO_LARGE });
  await t.throwsAsync(log.appendBatch('t', 0, encodeBatch([rec(1, 1000)])), { instanceOf: CommitLogError, code: ErrorCode.RECORD_TOO_LARGE });
  t.deepEqual(log.describeTopic('t'), before);
  t.deepEqual(readAll(log, 't', 0).map(plain), bytesBefore);
  // A batch of exactly maxBatchBytes fits; one byte more does not.
  let valueBytes = 1000;
  while (encodeBatch([rec(1, valueBytes)]).length > 1000) valueBytes--;
  t.is(encodeBatch([rec(1, valueBytes)]).length, 1000);
  t.is(encodeBatch([rec(1, valueBytes + 1)]).length, 1001);
  await t.throwsAsync(log.append('t', 0, [rec(1, valueBytes + 1)]), { instanceOf: CommitLogError, code: ErrorCode.RECORD_TOO_LARGE });
  t.deepEqual(await log.append('t', 0, [rec(1, valueBytes)]), { baseOffset: 1, lastOffset: 1 });
});

test('a batch larger than the segment is rejected with ERR_RECORD_TOO_LARGE and nothing stored changes', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('t');
  await log.append('t', 0, [rec(0, 60_000)]);
  const before = log.describeTopic('t');
  const err = await t.throwsAsync(log.append('t', 0, [rec(1, SEGMENT)]), { instanceOf: CommitLogError, code: ErrorCode.RECORD_TOO_LARGE });
  t.is(err?.topic, 't');
  t.deepEqual(log.describeTopic('t'), before);
  t.deepEqual(segmentFiles(dir, 't', 0), [[0, SEGMENT]]);
  t.deepEqual(readAll(log, 't', 0).map((r) => r.offset), [0]);
  // The log still takes appends, and the next batch rolls (it does not fit after the first).
  t.deepEqual(await log.append('t', 0, [rec(1, 10_000)]), { baseOffset: 1, lastOffset: 1 });
  t.is(log.describeTopic('t').partitions[0].segments, 2);
});

test('appendBatch with a corrupted CRC is rejected with ERR_CORRUPT_BATCH and nothing stored changes', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  const before = log.describeTopic('t');
  const good = encodeBatch([rec(1), rec(2)]);
  for (const i of [CRC_POS, CRC_POS + 3, 30, good.length - 1]) {
    const bad = Buffer.from(good);
    bad[i] ^= 0x40;
    await t.throwsAsync(log.appendBatch('t', 0, bad), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH }, `byte ${i}`);
  }
  // Two batches, a truncated batch, trailing bytes, not a Buffer.
  await t.throwsAsync(log.appendBatch('t', 0, Buffer.concat([good, good])), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH });
  await t.throwsAsync(log.appendBatch('t', 0, good.subarray(0, good.length - 1)), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH });
  await t.throwsAsync(log.appendBatch('t', 0, Buffer.concat([good, Buffer.alloc(3)])), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH });
  await t.throwsAsync(log.appendBatch('t', 0, Buffer.alloc(0)), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH });
  await t.throwsAsync(log.appendBatch('t', 0, new Uint8Array(good) as Buffer), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  t.deepEqual(log.describeTopic('t'), before);
  t.deepEqual(readAll(log, 't', 0).map((r) => r.offset), [0]);
  t.deepEqual(await log.appendBatch('t', 0, good), { baseOffset: 1, lastOffset: 2 });
});

test('appendBatch assigns the base offset to a batch encoded elsewhere, without modifying the caller\'s buffer', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  await log.append('t', 0, [rec(0), rec(1), rec(2)]);
  const batch = encodeBatch([rec(100), rec(101)], { baseOffset: 987_654_321 });
  const copy = Buffer.from(batch);
  t.deepEqual(await log.appendBatch('t', 0, batch), { baseOffset: 3, lastOffset: 4 });
  t.deepEqual(batch, copy, 'the caller\'s buffer is unchanged');
  t.deepEqual(log.read('t', 0, 3).map((r) => [r.offset, r.key!.toString(), r.timestamp]), [[3, 'k100', TS + 100], [4, 'k101', TS + 101]]);
  // Stored bytes are the caller's, except the base offset.
  const slice = log.readSlice('t', 0, 3, 1)!;
  t.teardown(() => slice.release());
  t.is(slice.firstOffset, 3);
  t.is(slice.length, batch.length);
  const stored = Buffer.alloc(slice.length);
  fs.readSync(slice.fd, stored, 0, slice.length, slice.position);
  const expected = Buffer.from(batch);
  setBaseOffset(expected, 0, 3);
  t.deepEqual(stored, expected);
  slice.release();
});

test('readSlice returns the byte range of whole batches, starting with the one holding the offset', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  const sizes = await fill(log, 't', 4, 3, 50);
  const s = log.readSlice('t', 0, 4, sizes[1] + sizes[2])!;
  t.deepEqual({ position: s.position, length: s.length, firstOffset: s.firstOffset }, { position: sizes[0], length: sizes[1] + sizes[2], firstOffset: 3 });
  s.release();
  s.release(); // idempotent
  const one = log.readSlice('t', 0, 11, 1_000_000)!;
  t.deepEqual({ position: one.position, length: one.length, firstOffset: one.firstOffset }, { position: sizes[0] + sizes[1] + sizes[2], length: sizes[3], firstOffset: 9 });
  one.release();
  t.throws(() => log.readSlice('t', 0, 0, 0), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
});

test('describe counts only the data bytes of every segment, also right after a roll', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  const sizes = await fill(log, 't', 10, 1, 10_000);
  const d = log.describeTopic('t').partitions[0];
  t.is(d.segments, 2);
  t.is(d.sizeBytes, sizes.reduce((a, b) => a + b, 0));
});

// ---------------------------------------------------------------- time

test('offsetForTimestamp returns the first offset whose record timestamp is at or after T, null past the end', async (t) => {
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t');
  t.is(log.offsetForTimestamp('t', 0, 0), null);
  await log.append('t', 0, [{ value: 'a', timestamp: 1000 }, { value: 'b', timestamp: 1000 }, { value: 'c', timestamp: 2000 }]);
  await log.append('t', 0, [{ value: 'd', timestamp: 3000 }]);
  await log.append('t', 0, [{ value: 'e', timestamp: 2500 }, { value: 'f', timestamp: 5000 }]);
  const cases: [number, number | null][] = [
    [0, 0], [999, 0], [1000, 0], [1001, 2], [2000, 2], [2001, 3], [2500, 3], [3000, 3], [3001, 5], [5000, 5], [5001, null],
  ];
  for (const [ts, offset] of cases) t.is(log.offsetForTimestamp('t', 0, ts), offset, `T = ${ts}`);
  t.throws(() => log.offsetForTimestamp('t', 0, Number.NaN), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  t.throws(() => log.offsetForTimestamp('t', 0, Infinity), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
});

test('offsetForTimestamp is exact across many segments, before and after reopening', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir, { topicDefaults: { indexIntervalBytes: 2048 } });
  await log.createTopic('t');
  // Offset o has timestamp 10 * o: strictly increasing, spanning several segments.
  await fill(log, 't', 200, 4, 300, 0, (o) => 10 * o);
  const end = log.latestOffset('t', 0);
  t.true(log.describeTopic('t').partitions[0].segments >= 4);
  const check = (l: CommitLog) => {
    for (let ts = 0; ts <= 10 * end + 10; ts += 7) {
      const want = Math.ceil(ts / 10) >= end ? null : Math.ceil(ts / 10);
      const got = l.offsetForTimestamp('t', 0, ts);
      if (got !== want) {
        t.fail(`offsetForTimestamp(${ts}) = ${got}, expected ${want}`);
        return;
      }
    }
    t.pass();
  };
  check(log);
  await log.close();
  const again = await openLog(t, dir, { maxOpenSegments: 2 });
  check(again);
});

test('offsetForTimestamp finds a record newer than anything appended after a reopen (the time index only samples)', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir, { topicDefaults: { indexIntervalBytes: 1000 } });
  await log.createTopic('t', { retentionMs: -1 });
  await log.append('t', 0, [{ value: 'a', timestamp: 100 }]);
  // Too few bytes since the first batch for a time-index entry: only the log knows 500.
  await log.append('t', 0, [{ value: 'b', timestamp: 500 }]);
  await log.close();
  log = await openLog(t, dir);
  t.is(log.offsetForTimestamp('t', 0, 300), 1);
  for (let i = 0; i < 20; i++) await log.append('t', 0, [{ value: Buffer.alloc(200), timestamp: 200 }]);
  t.is(log.offsetForTimestamp('t', 0, 300), 1);
  t.is(log.offsetForTimestamp('t', 0, 200), 1);
  t.is(log.offsetForTimestamp('t', 0, 501), null);
  await log.close();
  log = await openLog(t, dir);
  t.is(log.offsetForTimestamp('t', 0, 300), 1);
  // Once sealed, the segment's newest timestamp must still be 500.
  await log.append('t', 0, [{ value: Buffer.alloc(65_400), timestamp: 50 }]);
  await log.close();
  log = await openLog(t, dir);
  t.is(log.describeTopic('t').partitions[0].segments, 2);
  t.is(log.offsetForTimestamp('t', 0, 300), 1);
  t.is(log.offsetForTimestamp('t', 0, 501), null);
});

test('retention by age keeps a segment holding a record newer than the time index saw before a reopen', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir, { topicDefaults: { indexIntervalBytes: 1_000_000 } });
  await log.createTopic('t', { retentionMs: 1000 });
  await log.append('t', 0, [{ value: 'old', timestamp: TS }]);
  await log.append('t', 0, [{ value: 'new', timestamp: TS + 50_000 }]);
  await log.close();
  log = await openLog(t, dir);
  await log.append('t', 0, [{ value: Buffer.alloc(65_400), timestamp: TS }]); // rolls: the first segment is sealed
  await log.close();
  log = await openLog(t, dir);
  t.is(log.describeTopic('t').partitions[0].segments, 2);
  // At TS + 10 000 the record of TS + 50 000 is not expired, so its segment stays.
  t.deepEqual(await log.enforceRetention(TS + 10_000), { segments: 0, bytes: 0 });
  t.is(log.earliestOffset('t', 0), 0);
});

// ---------------------------------------------------------------- retention

test('retention by bytes deletes the oldest sealed segments only, and moves the earliest offset', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir);
  await log.createTopic('t', { retentionBytes: 150_000, retentionMs: -1 });
  await fill(log, 't', 40, 1, 8000);
  // Reopen so that every rolled segment is sealed (sealing runs in the background).
  await log.close();
  log = await openLog(t, dir);
  const files = segmentFiles(dir, 't', 0);
  const d = log.describeTopic('t').partitions[0];
  t.is(files.length, d.segments);
  t.true(files.length >= 5);
  const activeBytes = d.sizeBytes - files.slice(0, -1).reduce((a, [, size]) => a + size, 0);
  // What should go: the oldest sealed segments while the total is above 150 000 bytes.
  let total = d.sizeBytes;
  let drop = 0;
  while (drop < files.length - 1 && total > 150_000) total -= files[drop++][1];
  t.true(drop >= 1);
  const r = await log.enforceRetention();
  t.deepEqual(r, { segments: drop, bytes: files.slice(0, drop).reduce((a, [, size]) => a + size, 0) });
  const newFirst = files[drop][0];
  t.is(log.earliestOffset('t', 0), newFirst);
  t.deepEqual(segmentFiles(dir, 't', 0), files.slice(drop));
  t.false(fs.existsSync(path.join(dir, 't', '0', `${String(files[0][0]).padStart(20, '0')}.cq`)));
  t.false(fs.existsSync(path.join(dir, 't', '0', `${String(files[0][0]).padStart(20, '0')}.tix`)));
  const { diskBytes, ...after } = log.describeTopic('t').partitions[0];
  t.true(diskBytes >= total);
  t.deepEqual(after, { partition: 0, logStartOffset: newFirst, nextOffset: d.nextOffset, highWatermark: d.nextOffset, sizeBytes: total, segments: files.length - drop });
  t.is(log.read('t', 0, newFirst)[0].offset, newFirst);
  t.throws(() => log.read('t', 0, newFirst - 1), { instanceOf: CommitLogError, code: ErrorCode.OFFSET_OUT_OF_RANGE });
  t.throws(() => log.read('t', 0, 0), { instanceOf: CommitLogError, code: ErrorCode.OFFSET_OUT_OF_RANGE });
  t.true(activeBytes > 0);
  // Idempotent: nothing more to delete.
  t.deepEqual(await log.enforceRetention(), { segments: 0, bytes: 0 });
  // And after reopening, the log starts at the new first segment.
  await log.close();
  const again = await openLog(t, dir);
  t.is(again.earliestOffset('t', 0), newFirst);
  t.is(readAll(again, 't', 0)[0].offset, newFirst);
  t.is(readAll(again, 't', 0).length, d.nextOffset - newFirst);
});

test('retention never deletes the active segment, however small the limit', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir);
  await log.createTopic('t', { retentionBytes: 0, retentionMs: -1 });
  await fill(log, 't', 20, 1, 8000);
  await log.close();
  log = await openLog(t, dir);
  const files = segmentFiles(dir, 't', 0);
  const end = log.latestOffset('t', 0);
  const r = await log.enforceRetention();
  t.is(r.segments, files.length - 1);
  t.deepEqual(segmentFiles(dir, 't', 0), files.slice(-1));
  t.is(log.earliestOffset('t', 0), files[files.length - 1][0]);
  t.is(log.latestOffset('t', 0), end);
  t.deepEqual(await log.append('t', 0, [rec(end)]), { baseOffset: end, lastOffset: end });
});

test('retention by age deletes the sealed segments whose newest record is older than retentionMs', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir);
  await log.createTopic('t', { retentionMs: 1000 });
  // Offset o has timestamp TS + o.
  await fill(log, 't', 30, 2, 5000, 0, (o) => TS + o);
  await log.close();
  log = await openLog(t, dir);
  const files = segmentFiles(dir, 't', 0);
  t.true(files.length >= 4);
  const newest = (i: number) => TS + files[i + 1][0] - 1; // the last offset of segment i
  // A segment expires once its newest record is more than retentionMs older than now.
  t.deepEqual(await log.enforceRetention(newest(0) + 1000), { segments: 0, bytes: 0 }, 'exactly retentionMs old is kept');
  t.deepEqual(await log.enforceRetention(newest(0) + 1001), { segments: 1, bytes: files[0][1] });
  t.is(log.earliestOffset('t', 0), files[1][0]);
  t.deepEqual(await log.enforceRetention(newest(1) + 1000), { segments: 0, bytes: 0 });
  t.deepEqual(await log.enforceRetention(newest(1) + 1001), { segments: 1, bytes: files[1][1] });
  t.is(log.earliestOffset('t', 0), files[2][0]);
  t.deepEqual(segmentFiles(dir, 't', 0), files.slice(2));
  t.throws(() => log.read('t', 0, files[2][0] - 1), { instanceOf: CommitLogError, code: ErrorCode.OFFSET_OUT_OF_RANGE });
  // Far in the future every sealed segment has expired; the active one stays.
  const r = await log.enforceRetention(Date.now() + 365 * DAY_MS);
  t.is(r.segments, files.length - 3);
  t.deepEqual(segmentFiles(dir, 't', 0), files.slice(-1));
  t.is(log.read('t', 0, files[files.length - 1][0])[0].offset, files[files.length - 1][0]);
});

test('retention by age with default timestamps deletes every sealed segment once now is past retentionMs', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir);
  await log.createTopic('t');
  for (let i = 0; i < 20; i++) await log.append('t', 0, [{ value: Buffer.alloc(8000) }]);
  await log.close();
  log = await openLog(t, dir);
  const files = segmentFiles(dir, 't', 0);
  t.deepEqual(await log.enforceRetention(), { segments: 0, bytes: 0 }, 'nothing is 7 days old yet');
  const r = await log.enforceRetention(Date.now() + 8 * DAY_MS);
  t.is(r.segments, files.length - 1);
  t.is(log.earliestOffset('t', 0), files[files.length - 1][0]);
});

test('a segment held by readSlice stays readable under its *.deleted name until release', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir);
  await log.createTopic('t', { retentionBytes: 0, retentionMs: -1 });
  await fill(log, 't', 20, 1, 8000);
  await log.close();
  log = await openLog(t, dir);
  const files = segmentFiles(dir, 't', 0);
  const pdir = path.join(dir, 't', '0');
  const name = (base: number, suffix: string) => path.join(pdir, `${String(base).padStart(20, '0')}${suffix}`);
  const slice = log.readSlice('t', 0, 0, 1_000_000)!;
  t.teardown(() => slice.release());
  const expected = Buffer.alloc(slice.length);
  fs.readSync(slice.fd, expected, 0, slice.length, slice.position);
  const records = log.read('t', 0, 0, { maxBytes: 1_000_000 });

  t.is((await log.enforceRetention()).segments, files.length - 1);
  t.throws(() => log.read('t', 0, 0), { instanceOf: CommitLogError, code: ErrorCode.OFFSET_OUT_OF_RANGE });
  // The held segment is renamed, not removed; the others are gone.
  t.false(fs.existsSync(name(0, '.log')));
  t.true(fs.existsSync(name(0, '.log.deleted')));
  t.true(fs.existsSync(name(0, '.cq.deleted')));
  t.false(fs.existsSync(name(files[1][0], '.log')));
  t.false(fs.existsSync(name(files[1][0], '.log.deleted')));
  // Its bytes are still readable through the slice's fd, and views read earlier still hold.
  const after = Buffer.alloc(slice.length);
  t.is(fs.readSync(slice.fd, after, 0, slice.length, slice.position), slice.length);
  t.deepEqual(after, expected);
  t.is(records[0].key!.toString(), 'k0');
  slice.release();
  // Release closes the segment at once and frees its files on the thread pool.
  t.false(slice.segment.isOpen);
  await until(() => !fs.readdirSync(pdir).some((n) => n.includes('.deleted')), 5000, 'the released segment to be unlinked');
  t.false(fs.existsSync(name(0, '.log.deleted')));
  t.false(fs.existsSync(name(0, '.cq.deleted')));
  t.false(fs.existsSync(name(0, '.tix.deleted')));
  t.deepEqual(fs.readdirSync(pdir).filter((n) => n.includes('.deleted')), []);
});

/** Open file descriptors of this process pointing into `dir`. */
function fdsInto(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir + path.sep)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test('a slice held across close stays readable until release, which then closes its files', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('t');
  await fill(log, 't', 10, 1, 10_000);
  const slice = log.readSlice('t', 0, 0, 1)!;
  t.teardown(() => slice.release());
  await log.close();
  const b = Buffer.alloc(12);
  t.is(fs.readSync(slice.fd, b, 0, 12, slice.position), 12);
  t.is(Number(b.readBigInt64BE(0)), 0);
  t.true(fdsInto(dir) > 0);
  slice.release();
  t.is(fdsInto(dir), 0, 'no file of the closed log is left open');
});

test('deleteTopic while a slice is held: the slice stays readable, and release removes the last files', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('t');
  await fill(log, 't', 3, 1, 1000);
  const slice = log.readSlice('t', 0, 0, 1_000_000)!;
  t.teardown(() => slice.release());
  await log.deleteTopic('t');
  t.false(fs.existsSync(path.join(dir, 't')));
  const b = Buffer.alloc(slice.length);
  t.is(fs.readSync(slice.fd, b, 0, slice.length, slice.position), slice.length);
  t.is(Number(b.readBigInt64BE(0)), 0);
  slice.release();
  t.is(fdsInto(dir), 1, 'only the lock file is open');
  await log.createTopic('t');
  t.is(log.latestOffset('t', 0), 0);
});

test('a byte flipped in a stored record makes read throw ERR_LOG_CORRUPT instead of returning it', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir);
  await log.createTopic('t');
  await log.append('t', 0, [{ key: 'k', value: Buffer.alloc(100, 1), timestamp: TS }]);
  await log.append('t', 0, [{ key: 'k', value: Buffer.alloc(100, 2), timestamp: TS }]);
  await log.close();
  const file = path.join(dir, 't', '0', '00000000000000000000.log');
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([9]), 0, 1, 120); // inside the first record's value
  fs.closeSync(fd);
  log = await openLog(t, dir);
  const err = t.throws(() => log.read('t', 0, 0), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT });
  t.is(err?.path, file);
  t.is(err?.position, 0);
  // The undamaged batch after it is still readable.
  t.deepEqual(log.read('t', 0, 1).map((r) => r.value![0]), [2]);
});

test('*.deleted files left by a process that died holding a slice are removed at open', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.createTopic('t');
  await log.append('t', 0, [rec(0)]);
  await log.close();
  const pdir = path.join(dir, 't', '0');
  fs.writeFileSync(path.join(pdir, '00000000000000000000.log.deleted'), 'x');
  const again = await openLog(t, dir);
  t.false(fs.existsSync(path.join(pdir, '00000000000000000000.log.deleted')));
  t.is(again.read('t', 0, 0).length, 1);
});

// ---------------------------------------------------------------- segment cache

/**
 * Descriptors this process holds on files under `dir`: the log's own, not the test
 * runner's or other tests' (which come and go and made a process-wide count flaky).
 */
function openFds(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

// Serial: the fd count is per process, and concurrent tests of this file open files too.
test.serial('with maxOpenSegments 4, reads across 50+ segments work and open fds stay bounded', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir, { maxOpenSegments: 4 });
  await log.createTopic('t');
  const baseline = openFds(dir);
  // 4 batches of ~16 KB per 64 KiB segment: 55 segments.
  await fill(log, 't', 216, 1, 16_000);
  const segments = log.describeTopic('t').partitions[0].segments;
  t.true(segments >= 50, `${segments} segments`);
  // Rolled segments stay open until their background sealing ends; then they join the cache.
  const peak = openFds(dir);
  const started = Date.now();
  // Each seal flushes and writes a checkpoint (and the producer snapshot), one at a time:
  // wait for the queue of 50+ seals to drain, down to the cache's 4 and the active files.
  await until(() => openFds(dir) - baseline <= 12, 20_000, 'sealed segments to be closed by the cache');
  t.log(`fds: ${peak - baseline} more at the end of writing, settled after ${Date.now() - started} ms`);
  const afterWrite = openFds(dir);
  const check = (l: CommitLog) => {
    const all = readAll(l, 't', 0, 0, 20_000);
    t.is(all.length, 216);
    t.true(all.every((r, i) => r.offset === i && r.value!.length === 16_000 && r.value![0] === (i & 0xff)));
    // Random access, back and forth.
    for (const o of [200, 3, 150, 0, 215, 77]) t.is(l.read('t', 0, o, { maxBytes: 1 })[0].offset, o);
  };
  check(log);
  const afterRead = openFds(dir);
  t.log(`fds: baseline ${baseline}, after writing ${afterWrite}, after reading ${afterRead}`);
  // 4 cached sealed segments (log fd each), the active and the prepared segment (3 fds each), slack.
  t.true(afterWrite - baseline <= 20, `after writing: ${afterWrite - baseline} more fds`);
  t.true(afterRead - baseline <= 20, `after reading: ${afterRead - baseline} more fds`);
  await log.close();
  log = await openLog(t, dir, { maxOpenSegments: 4 });
  const reopened = openFds(dir);
  check(log);
  t.true(openFds(dir) - reopened <= 12, `after reading again: ${openFds(dir) - reopened} more fds`);
});

test('reads work while more slices are held than maxOpenSegments', async (t) => {
  const dir = tmpDir(t);
  let log = await openLog(t, dir, { maxOpenSegments: 2 });
  await log.createTopic('t');
  await fill(log, 't', 40, 1, 16_000);
  await log.close();
  log = await openLog(t, dir, { maxOpenSegments: 2 });
  const files = segmentFiles(dir, 't', 0);
  t.true(files.length >= 8);
  const held = files.slice(0, 5).map(([base]) => log.readSlice('t', 0, base, 1)!);
  t.teardown(() => held.forEach((s) => s.release()));
  for (const [base] of files) t.is(log.read('t', 0, base, { maxBytes: 1 })[0].offset, base);
  for (const s of held) {
    const b = Buffer.alloc(12);
    t.is(fs.readSync(s.fd, b, 0, 12, s.position), 12);
    t.is(Number(b.readBigInt64BE(0)), s.firstOffset);
  }
  held.forEach((s) => s.release());
  t.deepEqual(readAll(log, 't', 0).map((r) => r.offset), Array.from({ length: 40 }, (_, i) => i));
});

test('appends keep working while the next segment is still being prepared (concurrent rolls)', async (t) => {
  const log = await openLog(t, tmpDir(t), { warmSegments: true });
  await log.createTopic('t');
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => log.append('t', 0, [rec(i, 9000)])));
  t.deepEqual(results.map((r) => r.baseOffset), Array.from({ length: 60 }, (_, i) => i));
  t.deepEqual(readAll(log, 't', 0).map((r) => r.key!.toString()), Array.from({ length: 60 }, (_, i) => `k${i}`));
  await until(() => log.describeTopic('t').partitions[0].segments >= 9);
});
