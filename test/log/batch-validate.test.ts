import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { CommitLog, CommitLogError, ErrorCode, encodeBatch } from '../../src/index.js';
import type { LogRecord, ProducerRecord, RecordHeader } from '../../src/index.js';
import { crc32c } from '../../src/native.js';
import {
  ATTRIBUTES_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, CRC_POS, FIRST_TIMESTAMP_POS, LAST_OFFSET_DELTA_POS, LOG_OVERHEAD,
  MAX_TIMESTAMP_POS, PRODUCER_ID_POS, RECORD_COUNT_POS, decodeRecords, setBaseOffset, verifyBatch,
} from '../../src/log/batch.js';
import { validateRecords } from '../../src/log/batch-validate.js';
import { testSeed, tmpDir } from '../helpers/tmp.js';
import { varint } from '../helpers/varint.js';

// kafkajs: its producer's batch encoder (to prove real batches pass) and its decoder (the cross-check).
const require = createRequire(import.meta.url);
interface KafkaEncoder { buffer: Buffer }
interface KafkaMessage { key?: string | Buffer | null; value: string | Buffer | null; timestamp?: string | number; headers?: Record<string, string | Buffer> }
interface KafkaDecodedRecord { offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: Record<string, unknown> }
const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (options: Record<string, unknown>) => { encode(): Promise<KafkaEncoder> };
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch(options: Record<string, unknown>): Promise<KafkaEncoder> };
const KafkaRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: Record<string, unknown>) => KafkaEncoder;
const decodeKafkaBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<{ records: KafkaDecodedRecord[] }>;
const KafkaDecoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;

const TS = 1_700_000_000_000;

// ---------------------------------------------------------------- hand-made batches


/** A length-prefixed field: null is length -1. */
function field(s: string | null): number[] {
  return s === null ? varint(-1) : [...varint(Buffer.byteLength(s)), ...Buffer.from(s)];
}

/** Record i's body: attributes 0, timestamp delta 0, offset delta i, key 'k', value 'v', no headers (8 bytes). */
function body(i: number): number[] {
  return [0, 0, ...varint(i), ...field('k'), ...field('v'), 0];
}

/** A record: its length varint (the body's length unless given) and the body. */
function rec(bytes: number[], length = bytes.length): number[] {
  return [...varint(length), ...bytes];
}

function reseal(buf: Buffer, position = 0): Buffer {
  const end = position + LOG_OVERHEAD + buf.readInt32BE(position + BATCH_LENGTH_POS);
  buf.writeUInt32BE(crc32c(buf, position + ATTRIBUTES_POS, end), position + CRC_POS);
  return buf;
}

interface HeaderFields { count?: number; first?: number; max?: number; attributes?: number }

/** A header (FirstTimestamp = MaxTimestamp = TS unless given) over raw record bytes, CRC right: lying records get past verifyBatch. */
function batch(records: number[][], fields: HeaderFields = {}): Buffer {
  const buf = Buffer.concat([encodeBatch([{ value: null }], { timestamp: TS }).subarray(0, BATCH_HEADER_BYTES), Buffer.from(records.flat())]);
  const count = fields.count ?? records.length;
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_POS);
  buf.writeInt32BE(count, RECORD_COUNT_POS);
  buf.writeInt32BE(count - 1, LAST_OFFSET_DELTA_POS);
  buf.writeInt16BE(fields.attributes ?? 0, ATTRIBUTES_POS);
  buf.writeBigInt64BE(BigInt(fields.first ?? TS), FIRST_TIMESTAMP_POS);
  buf.writeBigInt64BE(BigInt(fields.max ?? fields.first ?? TS), MAX_TIMESTAMP_POS);
  return reseal(buf);
}

function good(n: number, fields: HeaderFields = {}): Buffer {
  return batch(Array.from({ length: n }, (_, i) => rec(body(i))), fields);
}

/** verifyBatch then validateRecords, as appendBatch does; returns validateRecords' maxTimestamp. */
function check(buf: Buffer, position = 0): number {
  return validateRecords(buf, position, verifyBatch(buf, position, buf.length));
}

function rejects(t: ExecutionContext, buf: Buffer, message: string, position = 0): void {
  const err = t.throws(() => check(buf, position), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH, message });
  t.is(err?.position, position);
}

// ---------------------------------------------------------------- accepted

test('well-formed batches pass and return their newest record timestamp', (t) => {
  t.is(check(good(1)), TS);
  t.is(check(good(3)), TS);
  const records: ProducerRecord[] = [
    { key: null, value: null, timestamp: TS + 5 },
    { key: '', value: Buffer.alloc(0), timestamp: TS, headers: [{ key: '', value: null }, { key: 'h', value: Buffer.from('x') }, { key: 'h', value: Buffer.alloc(0) }] },
    { value: 'é'.repeat(100), timestamp: TS + 2, headers: { a: 'b' } },
  ];
  t.is(check(encodeBatch(records)), TS + 5);
  const big = Array.from({ length: 1000 }, (_, i) => ({ key: `key-${i}`, value: Buffer.alloc(1024, i), timestamp: TS + (i % 7) }));
  t.is(check(encodeBatch(big)), TS + 6);
  // Three- to five-byte varints and varlongs: record and value lengths, header value length, timestamp deltas.
  const wide: ProducerRecord[] = [
    { value: Buffer.alloc(20_000), timestamp: TS },
    { value: null, headers: [{ key: 'big', value: Buffer.alloc(10_000) }], timestamp: TS + 2 ** 40 },
    { value: 'x', timestamp: TS + 10_000 },
  ];
  t.is(check(encodeBatch(wide)), TS + 2 ** 40);
});

test('a batch at a position inside a larger buffer: messages name bytes of the buffer and the batch position', (t) => {
  const prefix = Buffer.alloc(100, 0xee);
  t.is(check(Buffer.concat([prefix, good(2)]), 100), TS);
  const bad = Buffer.concat([prefix, batch([rec(body(0)), rec(body(2))])]);
  rejects(t, bad, 'corrupt batch at position 100: record 1 at byte 173: offset delta 2, expected 1 (deltas run 0..1 in order)', 100);
});

test('non-canonical varints (padded with 0x80 bytes) are accepted, as Kafka and kafkajs decode them', (t) => {
  // offset delta 0 as 80 00, key length 1 as 82 80 80 80 00 (5 bytes).
  t.is(check(batch([rec([0, 0, 0x80, 0x00, 0x82, 0x80, 0x80, 0x80, 0x00, 0x6b, ...field('v'), 0])])), TS);
});

test('the transactional bit is accepted; the record attributes byte is not checked', (t) => {
  t.is(check(good(2, { attributes: 0x10 })), TS);
  t.is(check(batch([rec([0x7f, ...body(0).slice(1)])])), TS);
});

// ---------------------------------------------------------------- record count and framing

test('a record count patched up (CRC recomputed) is rejected: the records run out', (t) => {
  rejects(t, good(2, { count: 3 }), 'corrupt batch at position 0: record 2 at byte 79: missing: the record count in the header is 3, but the batch ends after 2 records');
  rejects(t, good(1, { count: 1000 }), 'corrupt batch at position 0: record 1 at byte 70: missing: the record count in the header is 1000, but the batch ends after 1 record');
});

test('a record count patched down (CRC recomputed) is rejected: bytes are left after the last record', (t) => {
  rejects(t, good(3, { count: 2 }), 'corrupt batch at position 0: record 2 at byte 79: 9 bytes left after the last record: the record count in the header is 2, the batch ends at byte 88');
});

test('trailing bytes after the last record are rejected', (t) => {
  rejects(t, batch([rec(body(0)), [0, 0, 0]], { count: 1 }), 'corrupt batch at position 0: record 1 at byte 70: 3 bytes left after the last record: the record count in the header is 1, the batch ends at byte 73');
  rejects(t, batch([rec(body(0)), [1]], { count: 1 }), 'corrupt batch at position 0: record 1 at byte 70: 1 byte left after the last record: the record count in the header is 1, the batch ends at byte 71');
});

test('a record length past the batch, negative, too small, or longer than its fields is rejected', (t) => {
  rejects(t, batch([rec(body(0), 100)]), 'corrupt batch at position 0: record 0 at byte 61: record length 100 runs past the end of the batch (byte 71): 8 bytes left');
  rejects(t, batch([rec(body(0)), rec(body(1), 9)]), 'corrupt batch at position 0: record 1 at byte 70: record length 9 runs past the end of the batch (byte 79): 8 bytes left');
  rejects(t, batch([[...varint(-2), ...body(0)]]), 'corrupt batch at position 0: record 0 at byte 61: record length -2 is negative');
  rejects(t, batch([[...varint(5), ...body(0)]]), 'corrupt batch at position 0: record 0 at byte 61: record length 5 is below the 6 bytes of the smallest record');
  rejects(t, batch([rec([...body(0), 0], 9)]), 'corrupt batch at position 0: record 0 at byte 61: record length 9, but its fields end at byte 70, 1 byte before the record does');
});

// ---------------------------------------------------------------- offset deltas

test('offset deltas out of order, duplicated or starting at 1 are rejected', (t) => {
  rejects(t, batch([rec(body(0)), rec(body(2)), rec(body(1))]), 'corrupt batch at position 0: record 1 at byte 73: offset delta 2, expected 1 (deltas run 0..2 in order)');
  rejects(t, batch([rec(body(0)), rec(body(0))]), 'corrupt batch at position 0: record 1 at byte 73: offset delta 0, expected 1 (deltas run 0..1 in order)');
  rejects(t, batch([rec(body(1)), rec(body(2))]), 'corrupt batch at position 0: record 0 at byte 64: offset delta 1, expected 0 (deltas run 0..1 in order)');
  rejects(t, batch([rec(body(-1))]), 'corrupt batch at position 0: record 0 at byte 64: offset delta -1, expected 0 (deltas run 0..0 in order)');
});

// ---------------------------------------------------------------- lengths inside the record

test('a key length running past its record is rejected, though the batch goes on', (t) => {
  const b = [0, 0, 0, ...varint(5), 0x6b, ...field('v'), 0];
  rejects(t, batch([rec(b), rec(body(1))]), 'corrupt batch at position 0: record 0 at byte 65: key length 5 runs past the end of its record (byte 70): 4 bytes left');
});

test('a value length running past the batch is rejected', (t) => {
  rejects(t, batch([rec([0, 0, 0, ...field(null), ...varint(100), 0x76, 0])]), 'corrupt batch at position 0: record 0 at byte 66: value length 100 runs past the end of its record and of the batch (byte 70): 2 bytes left');
});

test('header key and value lengths running past their record are rejected', (t) => {
  const head = [0, 0, 0, ...field('k'), ...field('v'), ...varint(1)];
  rejects(t, batch([rec([...head, ...varint(4), 0x68, ...field('x')]), rec(body(1))]), 'corrupt batch at position 0: record 0 at byte 70: header 0 key length 4 runs past the end of its record (byte 74): 3 bytes left');
  rejects(t, batch([rec([...head, ...field('h'), ...varint(2), 0x78])]), 'corrupt batch at position 0: record 0 at byte 72: header 0 value length 2 runs past the end of its record and of the batch (byte 74): 1 byte left');
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(2), ...field('h'), ...field('x')])]), 'corrupt batch at position 0: record 0 at byte 74: the header 1 key length varint runs past the end of its record and of the batch (byte 74)');
});

test('negative lengths other than -1 (null) are rejected, as are negative header counts', (t) => {
  rejects(t, batch([rec([0, 0, 0, ...varint(-2), ...field('v'), 0])]), 'corrupt batch at position 0: record 0 at byte 65: key length -2 is negative (only -1, null, is allowed)');
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...varint(-5), 0])]), 'corrupt batch at position 0: record 0 at byte 67: value length -5 is negative (only -1, null, is allowed)');
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(-1)])]), 'corrupt batch at position 0: record 0 at byte 69: header count -1 is negative');
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(1), ...varint(-2), ...field('x')])]), 'corrupt batch at position 0: record 0 at byte 70: header 0 key length -2 is negative');
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(1), ...field('h'), ...varint(-2)])]), 'corrupt batch at position 0: record 0 at byte 72: header 0 value length -2 is negative (only -1, null, is allowed)');
});

test('a null header key is rejected; a null header value is accepted', (t) => {
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(2), ...field('a'), ...field(null), ...field(null), ...field('x')])]), 'corrupt batch at position 0: record 0 at byte 73: header 1 has a null key');
  t.is(check(batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(1), ...field('a'), ...field(null)])])), TS);
});

// ---------------------------------------------------------------- varints

test('a truncated varint is rejected, at the end of its record or of the batch', (t) => {
  rejects(t, batch([rec([0, 0, 0, ...field('k'), ...field('v'), 0x80]), rec(body(1))]), 'corrupt batch at position 0: record 0 at byte 69: the header count varint runs past the end of its record (byte 70)');
  rejects(t, batch([rec([0, 0x80, 0x80, 0x80, 0x80, 0x80])]), 'corrupt batch at position 0: record 0 at byte 63: the timestamp delta varlong runs past the end of its record and of the batch (byte 68)');
  rejects(t, batch([rec(body(0)), [0x80]], { count: 2 }), 'corrupt batch at position 0: record 1 at byte 70: the record length varint runs past the end of the batch (byte 71)');
});

test('an over-long varint (more than 5 bytes or 32 bits) or varlong (more than 8 bytes) is rejected', (t) => {
  rejects(t, batch([rec([0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, ...field('v'), 0])]), 'corrupt batch at position 0: record 0 at byte 65: the key length varint is longer than 5 bytes or over 32 bits (5th byte 0x80)');
  rejects(t, batch([rec([0, 0, 0xff, 0xff, 0xff, 0xff, 0x10, ...field('k'), ...field('v'), 0])]), 'corrupt batch at position 0: record 0 at byte 64: the offset delta varint is longer than 5 bytes or over 32 bits (5th byte 0x10)');
  rejects(t, batch([rec([0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, ...body(0).slice(2)])]), 'corrupt batch at position 0: record 0 at byte 63: the timestamp delta varlong is longer than 8 bytes (beyond ±2^52)');
  rejects(t, batch([rec([0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, ...body(0).slice(2)])]), 'corrupt batch at position 0: record 0 at byte 63: the timestamp delta varlong is beyond ±2^52');
});

// ---------------------------------------------------------------- attributes and timestamps

test('a control batch is rejected: producers may not write one', (t) => {
  rejects(t, good(1, { attributes: 0x20 }), 'corrupt batch at position 0: attributes 0x0020 at byte 21 mark a control batch; producers may not write control batches');
  rejects(t, good(1, { attributes: 0x30 }), 'corrupt batch at position 0: attributes 0x0030 at byte 21 mark a control batch; producers may not write control batches');
});

/** Records with timestamp deltas (no other fields), under the given header timestamps. */
function timed(deltas: number[], fields: HeaderFields): Buffer {
  return batch(deltas.map((d, i) => rec([0, ...varint(d), ...varint(i), ...field(null), ...field('v'), 0])), fields);
}

test('CreateTime: a MaxTimestamp later than every record (and than 0) is rejected', (t) => {
  const buf = encodeBatch([{ value: 'a', timestamp: TS }, { value: 'b', timestamp: TS + 5 }]);
  buf.writeBigInt64BE(BigInt(TS + 6), MAX_TIMESTAMP_POS);
  rejects(t, reseal(buf), 'corrupt batch at position 0: MaxTimestamp 1700000000006 at byte 35 is later than every record\'s timestamp: the newest is 1700000000005, record 1 at byte 69');
  rejects(t, timed([0, 3, -2], { first: TS, max: 8_000_000_000_000 }), 'corrupt batch at position 0: MaxTimestamp 8000000000000 at byte 35 is later than every record\'s timestamp: the newest is 1700000000003, record 1 at byte 69');
  rejects(t, timed([-1, -5], { first: 0, max: 1 }), 'corrupt batch at position 0: MaxTimestamp 1 at byte 35 is later than every record\'s timestamp: the newest is -1, record 0 at byte 61');
});

test('CreateTime: what real producers write is accepted (MaxTimestamp below the newest, below FirstTimestamp, librdkafka\'s floor of 0)', (t) => {
  t.is(check(timed([0, -3, 7], { first: TS, max: TS + 7 })), TS + 7, 'Java, kafka-python: base = first record, exact max');
  t.is(check(timed([0, 500], { first: TS, max: TS })), TS + 500, 'kafkajs: a default Date.now() after the explicit maximum');
  t.is(check(timed([0, -1], { first: 1000, max: 999 })), 1000, 'kafkajs: timestamps sorted as strings');
  t.is(check(timed([0, 2], { first: -5, max: 0 })), -3, 'librdkafka: MaxTimestamp starts at 0');
  t.is(check(timed([0, 0], { first: -1, max: -1 })), -1, 'Java: NO_TIMESTAMP');
});

test('CreateTime: timestamps beyond ±(2^53 - 1) are rejected, in the header or as FirstTimestamp + delta', (t) => {
  rejects(t, good(1, { first: 2 ** 53, max: 0 }), 'corrupt batch at position 0: FirstTimestamp 9007199254740992 at byte 27 is beyond ±(2^53 - 1) ms');
  const huge = good(1);
  huge.writeBigInt64BE(-(2n ** 63n), MAX_TIMESTAMP_POS);
  rejects(t, reseal(huge), 'corrupt batch at position 0: MaxTimestamp -9223372036854775808 at byte 35 is beyond ±(2^53 - 1) ms');
  rejects(t, timed([0, 5], { first: Number.MAX_SAFE_INTEGER - 2, max: Number.MAX_SAFE_INTEGER - 2 }), 'corrupt batch at position 0: record 1 at byte 69: timestamp FirstTimestamp 9007199254740989 + delta 5 is beyond ±(2^53 - 1) ms');
  rejects(t, timed([-5], { first: -Number.MAX_SAFE_INTEGER, max: 0 }), 'corrupt batch at position 0: record 0 at byte 61: timestamp FirstTimestamp -9007199254740991 + delta -5 is beyond ±(2^53 - 1) ms');
});

test('LogAppendTime: no per-record timestamp rule, only a MaxTimestamp that fits a number', (t) => {
  t.is(check(timed([0, 2 ** 40, -(2 ** 40)], { attributes: 0x08, first: 2 ** 60, max: TS })), TS);
  t.is(check(timed([0], { attributes: 0x08, first: TS, max: TS - 1000 })), TS - 1000);
  const huge = timed([0], { attributes: 0x08 });
  huge.writeBigInt64BE(2n ** 62n, MAX_TIMESTAMP_POS);
  rejects(t, reseal(huge), 'corrupt batch at position 0: MaxTimestamp 4611686018427387904 at byte 35 is beyond ±(2^53 - 1) ms');
});

// ---------------------------------------------------------------- real producers

/** The record batch of a kafkajs Produce v3 request for one topic and partition (kafkajs's own producer path). */
async function kafkajsProduced(messages: KafkaMessage[]): Promise<Buffer> {
  const request = await produceV3({ acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }] }).encode();
  const buf = request.buffer;
  // transactional_id (int16 -1), acks, timeout, [topic_data] count, topic, [data] count, partition, record_set size
  let p = 2 + 2 + 4 + 4;
  p += 2 + buf.readInt16BE(p);
  p += 4 + 4;
  const size = buf.readInt32BE(p);
  return buf.subarray(p + 4, p + 4 + size);
}

test('batches from kafkajs\'s producer pass: default, explicit, mixed and string-sorted timestamps', async (t) => {
  const now = Date.now();
  const cases: KafkaMessage[][] = [
    [{ value: 'a' }, { key: 'k', value: null }],
    [{ value: 'a', timestamp: String(TS + 9) }, { value: 'b', timestamp: String(TS) }],
    [{ value: 'old', timestamp: String(TS) }, { value: 'now' }],
    [{ value: 'a', timestamp: 999 }, { value: 'b', timestamp: 1000 }],
    [{ value: 'zero', timestamp: 0 }, { value: 'now' }],
    [{ value: 'h', headers: { a: 'b', c: Buffer.from([0xff]) } }],
  ];
  for (const messages of cases) {
    const buf = await kafkajsProduced(messages);
    t.notThrows(() => check(Buffer.from(buf)), JSON.stringify(messages));
    t.true(verifyBatch(buf).maxTimestamp < now + 60_000);
  }
});

test('Java-style batches (first record as base, negative deltas, exact MaxTimestamp), encoded by kafkajs\'s RecordBatch, pass', async (t) => {
  const deltas = [0, -20, 35, 1, -40];
  const encoded = await RecordBatch({
    firstOffset: 0, firstTimestamp: TS, maxTimestamp: TS + 35, lastOffsetDelta: deltas.length - 1, producerId: -1, producerEpoch: -1, firstSequence: -1,
    records: deltas.map((timestampDelta, offsetDelta) => KafkaRecord({ offsetDelta, timestampDelta, key: null, value: `v${offsetDelta}`, headers: { x: 'y' } })),
  });
  t.is(check(encoded.buffer), TS + 35);
});

// ---------------------------------------------------------------- through CommitLog.appendBatch

async function openLog(t: ExecutionContext, dir = tmpDir(t), segmentBytes = 65536): Promise<CommitLog> {
  const log = await CommitLog.open({ dir, warmSegments: false, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes } });
  t.teardown(() => log.close());
  if (!log.listTopics().includes('t')) await log.createTopic('t');
  return log;
}

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

function plain(r: LogRecord): unknown {
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

test('CommitLog.appendBatch rejects a one-record batch whose RecordCount says 1000; the partition stays readable and appendable', async (t) => {
  const dir = tmpDir(t);
  const log = await openLog(t, dir);
  await log.appendBatch('t', 0, encodeBatch([{ key: 'a', value: 'first' }], { timestamp: TS }));
  const bad = encodeBatch([{ key: 'k', value: 'v' }], { timestamp: TS });
  bad.writeInt32BE(1000, RECORD_COUNT_POS);
  bad.writeInt32BE(999, LAST_OFFSET_DELTA_POS);
  reseal(bad);
  await t.throwsAsync(log.appendBatch('t', 0, bad), {
    instanceOf: CommitLogError,
    code: ErrorCode.CORRUPT_BATCH,
    message: 'corrupt batch at position 0: record 1 at byte 70: missing: the record count in the header is 1000, but the batch ends after 1 record',
  });
  t.is(log.latestOffset('t', 0), 1);
  t.deepEqual(await log.appendBatch('t', 0, encodeBatch([{ key: 'b', value: 'second' }], { timestamp: TS + 1 })), { baseOffset: 1, lastOffset: 1 });
  const want = [
    { offset: 0, timestamp: TS, key: hex(Buffer.from('a')), value: hex(Buffer.from('first')), headers: [] },
    { offset: 1, timestamp: TS + 1, key: hex(Buffer.from('b')), value: hex(Buffer.from('second')), headers: [] },
  ];
  t.deepEqual(log.read('t', 0, 0).map(plain), want);
  await log.close();
  const reopened = await openLog(t, dir);
  t.deepEqual(reopened.read('t', 0, 0).map(plain), want);
  t.deepEqual(await reopened.appendBatch('t', 0, encodeBatch([{ value: 'third' }], { timestamp: TS + 2 })), { baseOffset: 2, lastOffset: 2 });
});

test('CommitLog.appendBatch rejects each kind of malformed batch with ERR_CORRUPT_BATCH and stores nothing', async (t) => {
  const log = await openLog(t);
  await log.appendBatch('t', 0, good(2));
  const bad = [
    good(3, { count: 2 }),
    batch([rec(body(1))]),
    batch([rec(body(0), 100)]),
    batch([rec([0, 0, 0, ...varint(-2), ...field('v'), 0])]),
    batch([rec([0, 0, 0, ...field('k'), ...field('v'), ...varint(1), ...field(null), ...field(null)])]),
    good(1, { attributes: 0x20 }),
    good(1, { max: TS + 1 }),
  ];
  for (const b of bad) await t.throwsAsync(log.appendBatch('t', 0, b), { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH });
  t.is(log.latestOffset('t', 0), 2);
  t.deepEqual(log.read('t', 0, 0).map((r) => r.offset), [0, 1]);
});

// ---------------------------------------------------------------- property: accepted means readable everywhere

const seed = testSeed();

/** kafkajs's decoded shape of headers: an object, a repeated key's values in an array. */
function kafkaHeaders(headers: RecordHeader[]): Record<string, unknown> {
  return headers.reduce<Record<string, unknown>>((obj, { key, value }) => {
    const v = value === null ? null : hex(value as Buffer);
    const prior = obj[key];
    return { ...obj, [key]: prior === undefined ? v : Array.isArray(prior) ? [...prior, v] : [prior, v] };
  }, {});
}

function viaKafkajs(r: KafkaDecodedRecord): unknown {
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k] = Array.isArray(v) ? v.map((x) => hex(x as Buffer | null)) : hex(v as Buffer | null);
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers };
}

function viaUs(r: LogRecord): unknown {
  return { offset: String(r.offset), timestamp: String(r.timestamp), key: hex(r.key), value: hex(r.value), headers: kafkaHeaders(r.headers) };
}

const bytesArb = fc.oneof(
  fc.constant(null),
  fc.constant(''),
  fc.string({ maxLength: 12 }),
  fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
);
const recordArb = fc.record({
  key: fc.oneof(bytesArb, fc.constant(undefined)),
  value: bytesArb,
  timestamp: fc.option(fc.integer({ min: TS - 100_000, max: TS + 100_000 }), { nil: undefined }),
  headers: fc.option(fc.array(fc.record({ key: fc.string({ maxLength: 6 }), value: bytesArb.map((v) => (v === null ? null : Buffer.from(v))) }), { maxLength: 3 }), { nil: undefined }),
}) as fc.Arbitrary<ProducerRecord>;

type Mutation =
  | { kind: 'flip'; at: number; value: number; sealed: boolean }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; value: number }
  | { kind: 'delete'; at: number }
  | { kind: 'count'; delta: number }
  | { kind: 'timestamp'; max: boolean; delta: number }
  | { kind: 'attributes'; value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), sealed: fc.boolean() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('count' as const), delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })) }),
  fc.record({ kind: fc.constant('timestamp' as const), max: fc.boolean(), delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -(2 ** 40), max: 2 ** 40 })) }),
  fc.record({ kind: fc.constant('attributes' as const), value: fc.integer({ min: 0, max: 0x7f }) }),
);

/** Applies a mutation; everything but an unsealed flip fixes BatchLength and the CRC so the change gets past verifyBatch. */
function mutate(input: Buffer, m: Mutation): Buffer {
  let bytes = [...input];
  let seal = true;
  const records = Math.max(1, bytes.length - BATCH_HEADER_BYTES);
  switch (m.kind) {
    case 'flip':
      bytes[m.at % bytes.length] = m.value;
      seal = m.sealed && m.at % bytes.length >= ATTRIBUTES_POS;
      break;
    case 'truncate':
      bytes = bytes.slice(0, BATCH_HEADER_BYTES + (m.at % records));
      break;
    case 'insert':
      bytes.splice(BATCH_HEADER_BYTES + (m.at % (records + 1)), 0, m.value);
      break;
    case 'delete':
      bytes.splice(BATCH_HEADER_BYTES + (m.at % records), 1);
      break;
    default:
      break;
  }
  const buf = Buffer.from(bytes);
  if (m.kind === 'count') {
    const count = (buf.readInt32BE(RECORD_COUNT_POS) + m.delta) | 0;
    buf.writeInt32BE(count, RECORD_COUNT_POS);
    buf.writeInt32BE((count - 1) | 0, LAST_OFFSET_DELTA_POS);
  } else if (m.kind === 'timestamp') {
    const pos = m.max ? MAX_TIMESTAMP_POS : FIRST_TIMESTAMP_POS;
    buf.writeBigInt64BE(buf.readBigInt64BE(pos) + BigInt(m.delta), pos);
  } else if (m.kind === 'attributes') {
    buf.writeInt16BE(m.value, ATTRIBUTES_POS);
  }
  if (seal && buf.length >= BATCH_HEADER_BYTES) {
    buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_POS);
    reseal(buf);
  }
  return buf;
}

test(`property: every batch appendBatch accepts reads back the same through read(), decodeRecords and kafkajs; rejected ones change nothing (seed ${seed})`, async (t) => {
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const log = await openLog(t, tmpDir(t), 1024 * 1024);
  const counts = { accepted: 0, rejected: 0, mutatedAccepted: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array(recordArb, { minLength: 1, maxLength: 12 }),
      fc.array(mutationArb, { maxLength: 3 }),
      async (records, mutations) => {
        const original = encodeBatch(records, { timestamp: TS });
        let buf = original;
        for (const m of mutations) buf = mutate(buf, m);
        // Mutations never move the header, so its producer fields can be compared in place.
        const producerFields = !buf.subarray(PRODUCER_ID_POS, RECORD_COUNT_POS).equals(original.subarray(PRODUCER_ID_POS, RECORD_COUNT_POS));
        const before = log.latestOffset('t', 0);
        const result = await log.appendBatch('t', 0, buf).then((r) => r, (e: unknown) => e as CommitLogError);
        if (result instanceof CommitLogError) {
          counts.rejected++;
          if (mutations.length === 0) throw new Error(`an unmutated batch was rejected: ${result.message}`);
          // Changed ProducerId, ProducerEpoch or BaseSequence bytes (by any flip, the CRC
          // fixed by a later sealed mutation) make a well-formed batch of a producer this
          // log never assigned: the producer state may refuse it.
          const allowed: string[] = producerFields
            ? [ErrorCode.CORRUPT_BATCH, ErrorCode.UNKNOWN_PRODUCER_ID, ErrorCode.OUT_OF_ORDER_SEQUENCE, ErrorCode.INVALID_PRODUCER_EPOCH]
            : [ErrorCode.CORRUPT_BATCH];
          if (!allowed.includes(result.code)) throw result;
          if (log.latestOffset('t', 0) !== before) throw new Error(`a rejected batch moved the log end from ${before} to ${log.latestOffset('t', 0)}`);
          return;
        }
        counts.accepted++;
        if (mutations.length > 0) counts.mutatedAccepted++;
        const stored = log.read('t', 0, result.baseOffset, { maxBytes: buf.length }).filter((r) => r.offset <= result.lastOffset);
        const copy = Buffer.from(buf);
        setBaseOffset(copy, 0, result.baseOffset);
        const ours = decodeRecords(copy).map(viaUs);
        const theirs = (await decodeKafkaBatch(new KafkaDecoder(copy))).records.map(viaKafkajs);
        assert.deepEqual(stored.map(viaUs), ours, 'read() and decodeRecords differ');
        assert.deepEqual(theirs, ours, 'kafkajs and decodeRecords differ');
        if (stored.length !== result.lastOffset - result.baseOffset + 1) throw new Error(`read ${stored.length} records of ${result.baseOffset}..${result.lastOffset}`);
      },
    ),
    { seed, numRuns: 3000 },
  );
  t.log(counts);
  // The whole partition still reads, from the start.
  let next = 0;
  for (let records = log.read('t', 0, next); records.length > 0; records = log.read('t', 0, next)) next = records[records.length - 1].offset + 1;
  t.is(next, log.latestOffset('t', 0));
  t.true(counts.mutatedAccepted > 0 && counts.rejected > 0);
});
