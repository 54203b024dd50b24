/**
 * Idempotent producers (src/log/producer-state.ts) through CommitLog.appendBatch:
 * sequences, duplicates of each of the last 5 batches answered with their original
 * offsets, gaps, epochs, wrap, the eviction cap, batches without a producer id, and
 * the state after a reopen (snapshot, damaged snapshot, no snapshot).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { CommitLog } from '../../src/log/commit-log.js';
import { encodeBatch } from '../../src/log/batch.js';
import { ErrorCode } from '../../src/errors.js';
import { PRODUCER_SNAPSHOT_FILE, ProducerState, incrementSequence } from '../../src/log/producer-state.js';
import { kafkaErrorCode } from '../../src/net/kafka/error-codes.js';
import { tmpDir } from '../helpers/tmp.js';

function batch(producerId: number, producerEpoch: number, baseSequence: number, count = 1): Buffer {
  const records = Array.from({ length: count }, (_, i) => ({ value: `p${producerId}-e${producerEpoch}-s${baseSequence + i}` }));
  return encodeBatch(records, { producerId, producerEpoch, baseSequence, timestamp: 1_700_000_000_000 });
}

async function open(dir: string): Promise<CommitLog> {
  const log = await CommitLog.open({ dir, flush: 'sync', checkpointIntervalMs: 600_000, topicDefaults: { segmentBytes: 1 << 20 } });
  if (!log.listTopics().includes('t')) await log.createTopic('t', { partitions: 1 });
  return log;
}

function snapshotFile(dir: string): string {
  return path.join(dir, 't', '0', PRODUCER_SNAPSHOT_FILE);
}

test('next sequences append; a resend of each of the last 5 batches answers its original offsets; nothing stored twice', async (t) => {
  const log = await open(tmpDir(t));
  t.teardown(() => log.close());
  // 7 batches of 2 records: offsets 0-1, 2-3, ..., 12-13; sequences 0-1, 2-3, ..., 12-13.
  for (let i = 0; i < 7; i++) t.deepEqual(await log.appendBatch('t', 0, batch(7, 0, 2 * i, 2)), { baseOffset: 2 * i, lastOffset: 2 * i + 1 });
  // The last 5 are batches 2..6: each resent is a duplicate with its original offsets.
  for (let i = 2; i < 7; i++) {
    t.deepEqual(await log.appendBatch('t', 0, batch(7, 0, 2 * i, 2)), { baseOffset: 2 * i, lastOffset: 2 * i + 1, duplicate: true });
  }
  t.is(log.latestOffset('t', 0), 14);
  // Batch 1 (sequences 2-3) is no longer remembered: out of order, not a duplicate.
  const old = await t.throwsAsync(log.appendBatch('t', 0, batch(7, 0, 2, 2)));
  t.is((old as { code?: string }).code, ErrorCode.OUT_OF_ORDER_SEQUENCE);
  // Same first sequence, other last sequence: not the same batch.
  await t.throwsAsync(log.appendBatch('t', 0, batch(7, 0, 12, 1)), { code: ErrorCode.OUT_OF_ORDER_SEQUENCE });
  t.deepEqual(await log.appendBatch('t', 0, batch(7, 0, 14, 3)), { baseOffset: 14, lastOffset: 16 });
  t.is(log.read('t', 0, 0, { maxBytes: 1 << 20 }).length, 17);
});

test('a gap is ERR_OUT_OF_ORDER_SEQUENCE (Kafka 45) and stores nothing; the right sequence still appends', async (t) => {
  const log = await open(tmpDir(t));
  t.teardown(() => log.close());
  t.deepEqual(await log.appendBatch('t', 0, batch(1, 0, 0, 3)), { baseOffset: 0, lastOffset: 2 });
  const err = await t.throwsAsync(log.appendBatch('t', 0, batch(1, 0, 4)), { code: ErrorCode.OUT_OF_ORDER_SEQUENCE, message: /sequence 4, expected 3/ });
  t.is(kafkaErrorCode(err), 45);
  t.is(log.latestOffset('t', 0), 3);
  t.deepEqual(await log.appendBatch('t', 0, batch(1, 0, 3)), { baseOffset: 3, lastOffset: 3 });
});

test('epochs: an older one is ERR_INVALID_PRODUCER_EPOCH (47); a newer one must start at 0 and replaces the old batches', async (t) => {
  const log = await open(tmpDir(t));
  t.teardown(() => log.close());
  await log.appendBatch('t', 0, batch(3, 2, 0));
  await log.appendBatch('t', 0, batch(3, 2, 1));
  const old = await t.throwsAsync(log.appendBatch('t', 0, batch(3, 1, 2)), { code: ErrorCode.INVALID_PRODUCER_EPOCH });
  t.is(kafkaErrorCode(old), 47);
  await t.throwsAsync(log.appendBatch('t', 0, batch(3, 3, 5)), { code: ErrorCode.OUT_OF_ORDER_SEQUENCE, message: /new epoch 3/ });
  t.deepEqual(await log.appendBatch('t', 0, batch(3, 3, 0)), { baseOffset: 2, lastOffset: 2 });
  // Epoch 2's batches are gone: its resend is now an old epoch.
  await t.throwsAsync(log.appendBatch('t', 0, batch(3, 2, 1)), { code: ErrorCode.INVALID_PRODUCER_EPOCH });
  t.deepEqual(await log.appendBatch('t', 0, batch(3, 3, 0)), { baseOffset: 2, lastOffset: 2, duplicate: true });
  t.is(log.latestOffset('t', 0), 3);
});

test('an unknown producer id is accepted at any sequence (Kafka 2.5+); producer ids past 2^53 - 1 and negative sequences are refused', async (t) => {
  const log = await open(tmpDir(t));
  t.teardown(() => log.close());
  t.deepEqual(await log.appendBatch('t', 0, batch(9, 0, 500)), { baseOffset: 0, lastOffset: 0 });
  t.deepEqual(await log.appendBatch('t', 0, batch(9, 0, 501)), { baseOffset: 1, lastOffset: 1 });
  const big = batch(1, 0, 0);
  big.writeBigInt64BE(2n ** 60n, 43);
  // The CRC covers the producer id: re-encode through a batch that carries it.
  const bigBatch = encodeBatch([{ value: 'x' }], { producerId: Number.MAX_SAFE_INTEGER, producerEpoch: 0, baseSequence: 0 });
  t.deepEqual(await log.appendBatch('t', 0, bigBatch), { baseOffset: 2, lastOffset: 2 });
  const state = new ProducerState(tmpDir(t));
  const huge = Buffer.from(big);
  t.throws(() => state.check(huge), { code: ErrorCode.UNKNOWN_PRODUCER_ID });
  const noSeq = batch(1, 0, 0);
  noSeq.writeInt32BE(-1, 53);
  t.throws(() => state.check(noSeq), { code: ErrorCode.CORRUPT_BATCH });
});

test('sequences wrap from 2^31 - 1 to 0', async (t) => {
  t.is(incrementSequence(0x7ffffffe, 1), 0x7fffffff);
  t.is(incrementSequence(0x7fffffff, 1), 0);
  t.is(incrementSequence(0x7ffffffe, 3), 1);
  const log = await open(tmpDir(t));
  t.teardown(() => log.close());
  t.deepEqual(await log.appendBatch('t', 0, batch(4, 0, 0x7ffffffe, 2)), { baseOffset: 0, lastOffset: 1 });
  t.deepEqual(await log.appendBatch('t', 0, batch(4, 0, 0, 2)), { baseOffset: 2, lastOffset: 3 });
  // A batch crossing the wrap: first 2^31 - 2, last 0.
  t.deepEqual(await log.appendBatch('t', 0, batch(5, 0, 0x7ffffffe, 3)), { baseOffset: 4, lastOffset: 6 });
  t.deepEqual(await log.appendBatch('t', 0, batch(5, 0, 0x7ffffffe, 3)), { baseOffset: 4, lastOffset: 6, duplicate: true });
  t.deepEqual(await log.appendBatch('t', 0, batch(5, 0, 1)), { baseOffset: 7, lastOffset: 7 });
  t.deepEqual(log.partition('t', 0).producers.entry(5)?.batches.map((b) => [b.firstSeq, b.lastSeq]), [[0x7ffffffe, 0], [1, 1]]);
});

test('batches without a producer id are untouched: resends append again', async (t) => {
  const log = await open(tmpDir(t));
  t.teardown(() => log.close());
  const b = encodeBatch([{ value: 'plain' }]);
  t.deepEqual(await log.appendBatch('t', 0, b), { baseOffset: 0, lastOffset: 0 });
  t.deepEqual(await log.appendBatch('t', 0, Buffer.from(b)), { baseOffset: 1, lastOffset: 1 });
  t.deepEqual(await log.append('t', 0, [{ value: 'x' }]), { baseOffset: 2, lastOffset: 2 });
  t.is(log.partition('t', 0).producers.size, 0);
});

test('the cap evicts the least recently written producer; expiry drops producers idle past expirationMs', (t) => {
  let now = 1_000_000;
  const state = new ProducerState(tmpDir(t), { maxProducers: 3, expirationMs: 1000, now: () => now });
  let offset = 0;
  const append = (id: number, seq: number): unknown => {
    const b = batch(id, 0, seq);
    const dup = state.check(b);
    if (dup !== null) return dup;
    state.record(b, offset);
    return offset++;
  };
  append(1, 0);
  append(2, 0);
  append(3, 0);
  append(1, 1); // 1 is now the most recent; 2 the least
  append(4, 0); // evicts 2
  t.is(state.size, 3);
  t.is(state.entry(2), undefined);
  t.deepEqual(state.entry(1)?.batches.map((b) => b.baseOffset), [0, 3]);
  // 2 is unknown again: any sequence is accepted.
  t.is(state.check(batch(2, 0, 7)), null);
  now += 2000;
  append(5, 0); // 3, 1 and 4 are idle past 1000 ms: dropped before 5 is added
  t.is(state.size, 1);
  t.deepEqual(state.entry(5)?.batches, [{ firstSeq: 0, lastSeq: 0, baseOffset: 5, lastOffset: 5 }]);
});

test('after a clean reopen the snapshot holds the state: duplicates still recognised, nothing scanned', async (t) => {
  const dir = tmpDir(t);
  let log = await open(dir);
  for (let i = 0; i < 6; i++) await log.appendBatch('t', 0, batch(11, 0, i));
  await log.appendBatch('t', 0, encodeBatch([{ value: 'plain' }]));
  await log.close();
  t.true(fs.existsSync(snapshotFile(dir)));
  log = await open(dir);
  t.teardown(() => log.close());
  const p = log.partition('t', 0);
  t.deepEqual(p.producers.load, { snapshotOffset: 7, snapshotIgnored: null, scannedBatches: 0, producers: 1 });
  t.deepEqual(await log.appendBatch('t', 0, batch(11, 0, 3)), { baseOffset: 3, lastOffset: 3, duplicate: true });
  await t.throwsAsync(log.appendBatch('t', 0, batch(11, 0, 0)), { code: ErrorCode.OUT_OF_ORDER_SEQUENCE });
  t.deepEqual(await log.appendBatch('t', 0, batch(11, 0, 6)), { baseOffset: 7, lastOffset: 7 });
});

test('a damaged snapshot is ignored, removed and the state rebuilt from the log', async (t) => {
  const dir = tmpDir(t);
  let log = await open(dir);
  for (let i = 0; i < 4; i++) await log.appendBatch('t', 0, batch(12, 1, 2 * i, 2));
  await log.close();
  const file = snapshotFile(dir);
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.replace('"offset":8', '"offset":9'));
  log = await open(dir);
  t.teardown(() => log.close());
  const p = log.partition('t', 0);
  t.deepEqual(p.producers.load, { snapshotOffset: -1, snapshotIgnored: 'damaged (checksum or JSON)', scannedBatches: 4, producers: 1 });
  t.false(fs.existsSync(file));
  t.deepEqual(await log.appendBatch('t', 0, batch(12, 1, 2, 2)), { baseOffset: 2, lastOffset: 3, duplicate: true });
  t.deepEqual(await log.appendBatch('t', 0, batch(12, 1, 8)), { baseOffset: 8, lastOffset: 8 });
});

test('a snapshot past the log end (its tail lost) is ignored; one inside the log is used and the rest scanned', async (t) => {
  const dir = tmpDir(t);
  let log = await open(dir);
  for (let i = 0; i < 3; i++) await log.appendBatch('t', 0, batch(13, 0, i));
  await log.close();
  const early = fs.readFileSync(snapshotFile(dir));
  log = await open(dir);
  for (let i = 3; i < 5; i++) await log.appendBatch('t', 0, batch(13, 0, i));
  await log.close();
  const late = fs.readFileSync(snapshotFile(dir));
  // The older snapshot (offset 3) with the longer log: used, offsets 3-4 scanned.
  fs.writeFileSync(snapshotFile(dir), early);
  log = await open(dir);
  t.deepEqual(log.partition('t', 0).producers.load, { snapshotOffset: 3, snapshotIgnored: null, scannedBatches: 2, producers: 1 });
  t.deepEqual(await log.appendBatch('t', 0, batch(13, 0, 4)), { baseOffset: 4, lastOffset: 4, duplicate: true });
  await log.close();
  // A snapshot claiming offset 5 over a log of 3 batches (a new directory with 3 batches).
  const dir2 = tmpDir(t);
  log = await open(dir2);
  for (let i = 0; i < 3; i++) await log.appendBatch('t', 0, batch(13, 0, i));
  await log.close();
  fs.writeFileSync(snapshotFile(dir2), late);
  log = await open(dir2);
  t.teardown(() => log.close());
  t.deepEqual(log.partition('t', 0).producers.load, { snapshotOffset: -1, snapshotIgnored: 'its offset 5 is past the log end 3', scannedBatches: 3, producers: 1 });
  t.deepEqual(await log.appendBatch('t', 0, batch(13, 0, 3)), { baseOffset: 3, lastOffset: 3 });
});

test('no snapshot at all (a directory of an older version): rebuilt from every batch', async (t) => {
  const dir = tmpDir(t);
  let log = await open(dir);
  for (let i = 0; i < 5; i++) await log.appendBatch('t', 0, batch(14, 0, i));
  await log.close();
  fs.rmSync(snapshotFile(dir));
  log = await open(dir);
  t.teardown(() => log.close());
  t.deepEqual(log.partition('t', 0).producers.load, { snapshotOffset: -1, snapshotIgnored: null, scannedBatches: 5, producers: 1 });
  t.deepEqual(await log.appendBatch('t', 0, batch(14, 0, 0)), { baseOffset: 0, lastOffset: 0, duplicate: true });
});

test('a checkpoint writes the snapshot; after a crash only the batches past it are scanned', async (t) => {
  const dir = tmpDir(t);
  const log = await open(dir);
  t.teardown(() => log.close());
  for (let i = 0; i < 4; i++) await log.appendBatch('t', 0, batch(21, 0, i));
  await log.partition('t', 0).checkpoint();
  const stored = fs.readFileSync(snapshotFile(dir), 'utf8').split('\n')[0];
  t.deepEqual(JSON.parse(stored), { v: 1, offset: 4, producers: [[21, 0, JSON.parse(stored).producers[0][2], [0, 0, 0, 0, 1, 1, 1, 0, 2, 2, 2, 0, 3, 3, 3, 0]]] });
  for (let i = 4; i < 7; i++) await log.appendBatch('t', 0, batch(21, 0, i));
  // The files as a kill would leave them (no clean marker; the page cache holds the rest).
  const copy = tmpDir(t);
  fs.cpSync(dir, copy, { recursive: true });
  const crashed = await open(copy);
  t.teardown(() => crashed.close());
  t.false(crashed.recovery.clean);
  t.deepEqual(crashed.partition('t', 0).producers.load, { snapshotOffset: 4, snapshotIgnored: null, scannedBatches: 3, producers: 1 });
  t.deepEqual(await crashed.appendBatch('t', 0, batch(21, 0, 5)), { baseOffset: 5, lastOffset: 5, duplicate: true });
  t.deepEqual(await crashed.appendBatch('t', 0, batch(21, 0, 7)), { baseOffset: 7, lastOffset: 7 });
});

test('the state is rebuilt across sealed segments; a roll writes a snapshot when the last one is older than the active segment', async (t) => {
  const dir = tmpDir(t);
  let log = await CommitLog.open({ dir, flush: 'sync', checkpointIntervalMs: 600_000, topicDefaults: { segmentBytes: 65536 } });
  await log.createTopic('t', { partitions: 1 });
  const big = (n: number): Buffer => encodeBatch([{ value: Buffer.alloc(20_000, n) }], { producerId: 30, producerEpoch: 0, baseSequence: n });
  for (let n = 0; n < 12; n++) t.deepEqual(await log.appendBatch('t', 0, big(n)), { baseOffset: n, lastOffset: n });
  const segments = log.describeTopic('t').partitions[0].segments;
  t.true(segments >= 3, `${segments} segments`);
  // Rolls wrote snapshots (the state changed): one appears before any close (sealing
  // runs in the background after the roll, so wait for it).
  for (let i = 0; i < 400 && !fs.existsSync(snapshotFile(dir)); i++) await new Promise((r) => setTimeout(r, 25));
  t.true(fs.existsSync(snapshotFile(dir)));
  await log.close();
  fs.rmSync(snapshotFile(dir));
  log = await CommitLog.open({ dir, flush: 'sync', checkpointIntervalMs: 600_000, topicDefaults: { segmentBytes: 65536 } });
  t.teardown(() => log.close());
  t.deepEqual(log.partition('t', 0).producers.load, { snapshotOffset: -1, snapshotIgnored: null, scannedBatches: 12, producers: 1 });
  for (let n = 7; n < 12; n++) t.deepEqual(await log.appendBatch('t', 0, big(n)), { baseOffset: n, lastOffset: n, duplicate: true });
  await t.throwsAsync(log.appendBatch('t', 0, big(6)), { code: ErrorCode.OUT_OF_ORDER_SEQUENCE });
  t.is(log.latestOffset('t', 0), 12);
});
