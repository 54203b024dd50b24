import test from 'ava';
import { createRequire } from 'node:module';
import { crc32c } from '../../src/native.js';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import type { LogRecord, ProducerRecord, RecordHeader } from '../../src/log/record.js';
import {
  ATTRIBUTES_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, CRC_POS, LAST_OFFSET_DELTA_POS, LOG_OVERHEAD,
  MAGIC_POS, RECORD_COUNT_POS, batchSizeOf, decodeBatches, decodeRecords, encodeBatch, readBatchHeader,
  setBaseOffset, verifyBatch,
} from '../../src/log/batch.js';
import { varint } from '../helpers/varint.js';

// kafkajs's internal RecordBatch v2 codec: an independent implementation to cross-check against.
const require = createRequire(import.meta.url);
interface KafkaEncoder { buffer: Buffer }
interface KafkaRecordInput { offsetDelta: number; timestampDelta: number; key?: Buffer | string | null; value: Buffer | string | null; headers?: Record<string, Buffer | string | (Buffer | string)[]> }
interface KafkaDecodedRecord { offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | null | (Buffer | null)[]> }
interface KafkaDecodedBatch { firstOffset: string; partitionLeaderEpoch: number; producerId: string; producerEpoch: number; firstSequence: number; records: KafkaDecodedRecord[] }
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch(options: Record<string, unknown>): Promise<KafkaEncoder>;
};
const KafkaRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: KafkaRecordInput) => KafkaEncoder;
const decodeKafkaBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<KafkaDecodedBatch>;
const KafkaDecoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const kafkaCrc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (buffer: Buffer) => number;

const seed = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 32));

/** mulberry32: a tiny seeded generator, so a failing random case can be replayed with SEED=. */
function rng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

const corruptBatch = { instanceOf: CommitLogError, code: ErrorCode.CORRUPT_BATCH };
const invalidArgument = { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT };

type Bytes = Buffer | string | null | undefined;
const hex = (v: Bytes): string | null => (v == null ? null : Buffer.from(v).toString('hex'));

/** Comparable form of a decoded record. */
function plain(r: LogRecord): unknown {
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

function headerList(headers: ProducerRecord['headers']): [string, string | null][] {
  if (headers === undefined) return [];
  if (Array.isArray(headers)) return headers.map((h) => [h.key, hex(h.value)]);
  return Object.entries(headers).map(([k, v]) => [k, hex(v)]);
}

/** What decoding an encoded ProducerRecord must give back. */
function expected(r: ProducerRecord, offset: number, defaultTimestamp: number): unknown {
  return { offset, timestamp: r.timestamp ?? defaultTimestamp, key: hex(r.key), value: hex(r.value), headers: headerList(r.headers) };
}


/** Recomputes the CRC after a test edits a field inside it. */
function reseal(buf: Buffer, position = 0): Buffer {
  const end = position + LOG_OVERHEAD + buf.readInt32BE(position + BATCH_LENGTH_POS);
  buf.writeUInt32BE(crc32c(buf, position + ATTRIBUTES_POS, end), position + CRC_POS);
  return buf;
}

/** A valid header (count records, timestamp 1000) followed by raw record bytes: for lying records. */
function rawBatch(recordBytes: number[], count: number): Buffer {
  const buf = Buffer.concat([encodeBatch([{ value: null }], { timestamp: 1000 }).subarray(0, BATCH_HEADER_BYTES), Buffer.from(recordBytes)]);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_POS);
  buf.writeInt32BE(count, RECORD_COUNT_POS);
  buf.writeInt32BE(count - 1, LAST_OFFSET_DELTA_POS);
  return reseal(buf);
}

const ts = 1_700_000_000_000;

// ---------------------------------------------------------------- golden bytes

const golden =
  '0000000000000000' + // baseOffset 0
  '0000003a' + // batchLength 58
  '00000000' + // partitionLeaderEpoch 0
  '02' + // magic
  'e99b8dd8' + // CRC32C of bytes 21..69
  '0000' + // attributes
  '00000000' + // lastOffsetDelta 0
  '0000018bcfe56800' + // firstTimestamp 1700000000000
  '0000018bcfe56800' + // maxTimestamp
  'ffffffffffffffff' + // producerId -1
  'ffff' + // producerEpoch -1
  'ffffffff' + // baseSequence -1
  '00000001' + // recordCount 1
  '10' + // record length 8
  '00' + // record attributes
  '00' + // timestampDelta 0
  '00' + // offsetDelta 0
  '026b' + // key length 1, 'k'
  '0276' + // value length 1, 'v'
  '00'; // no headers

test('encodes a one-record batch to the exact golden bytes', (t) => {
  const buf = encodeBatch([{ key: 'k', value: 'v' }], { timestamp: ts });
  t.is(buf.length, 70);
  t.is(buf.toString('hex'), golden);
  t.deepEqual(readBatchHeader(buf), {
    baseOffset: 0, batchLength: 58, size: 70, partitionLeaderEpoch: 0, magic: 2, crc: 0xe99b8dd8, attributes: 0,
    lastOffsetDelta: 0, firstTimestamp: ts, maxTimestamp: ts, producerId: -1, producerEpoch: -1, baseSequence: -1, recordCount: 1,
  });
  t.is(kafkaCrc32C(buf.subarray(ATTRIBUTES_POS)), 0xe99b8dd8, 'kafkajs computes the same CRC32C');
  t.deepEqual(verifyBatch(buf), readBatchHeader(buf));
});

test('encodes byte for byte what kafkajs encodes given the same header fields', async (t) => {
  const records: ProducerRecord[] = [
    { key: null, value: 'first', timestamp: ts + 5 },
    { key: Buffer.from([0, 1, 2]), value: Buffer.alloc(200, 7), headers: { a: 'x', b: Buffer.from('yy') }, timestamp: ts },
    { key: 'ключ', value: '', headers: { '€': 'z'.repeat(70) }, timestamp: ts + 100_000 },
  ];
  const ours = encodeBatch(records, { baseOffset: 42, producerId: 7, producerEpoch: 3, baseSequence: 9 });
  const theirs = await RecordBatch({
    firstOffset: 42, firstTimestamp: ts, maxTimestamp: ts + 100_000, lastOffsetDelta: 2, producerId: 7, producerEpoch: 3, firstSequence: 9,
    records: records.map((r, i) => KafkaRecord({ ...r, offsetDelta: i, timestampDelta: r.timestamp! - ts } as KafkaRecordInput)),
  });
  t.is(ours.toString('hex'), theirs.buffer.toString('hex'));
});

// ---------------------------------------------------------------- round trips

test('round-trips keys, values, headers and timestamps of every kind', (t) => {
  const records: ProducerRecord[] = [
    { value: 'no key' },
    { key: null, value: null },
    { key: Buffer.from('bk'), value: Buffer.alloc(0) },
    { key: 'sk', value: '' },
    { key: '', value: 'émoji 😀' },
    { value: 'obj headers', headers: { a: 'A', b: Buffer.from([0xff, 0]), c: null, '': '' } },
    { value: 'list headers', headers: [{ key: 'dup', value: Buffer.from('1') }, { key: 'dup', value: null }, { key: 'ü', value: Buffer.alloc(0) }] },
    { value: 'empty headers', headers: {}, timestamp: 5 },
    { value: 'explicit', timestamp: ts + 123_456_789 },
  ];
  const buf = encodeBatch(records, { baseOffset: 1000, timestamp: ts });
  t.is(buf.length, batchSizeOf(records, { timestamp: ts }));
  const header = verifyBatch(buf);
  t.is(header.firstTimestamp, 5);
  t.is(header.maxTimestamp, ts + 123_456_789);
  t.is(header.recordCount, records.length);
  t.deepEqual(decodeRecords(buf).map(plain), records.map((r, i) => expected(r, 1000 + i, ts)));
});

test('returns keys, values and header values as views of the source buffer', (t) => {
  const buf = encodeBatch([{ key: 'k', value: 'v', headers: { h: 'x' } }]);
  const [record] = decodeRecords(buf);
  for (const view of [record.key!, record.value!, record.headers[0].value!]) t.is(view.buffer, buf.buffer);
  buf[record.value!.byteOffset - buf.byteOffset] = 0x41;
  t.is(record.value!.toString(), 'A');
});

for (const n of [1, 1000]) {
  test(`round-trips ${n} records with offsets base+0..${n - 1}`, (t) => {
    const records = Array.from({ length: n }, (_, i) => ({ key: `key-${i}`, value: Buffer.alloc(100, i) }));
    const buf = encodeBatch(records, { baseOffset: 2 ** 40, timestamp: ts });
    const header = verifyBatch(buf);
    t.is(header.lastOffsetDelta, n - 1);
    t.is(header.recordCount, n);
    t.is(header.size, buf.length);
    t.deepEqual(decodeRecords(buf).map(plain), records.map((r, i) => expected(r, 2 ** 40 + i, ts)));
  });
}

test('round-trips a 1 MiB value', (t) => {
  const value = Buffer.alloc(1 << 20);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  const buf = encodeBatch([{ key: 'big', value }]);
  verifyBatch(buf);
  const [record] = decodeRecords(buf);
  t.true(record.value!.equals(value));
  const body = 1 + 1 + 1 + varint(3).length + 3 + varint(value.length).length + value.length + 1;
  t.is(buf.length, BATCH_HEADER_BYTES + varint(body).length + body);
});

test('defaults every record timestamp to Date.now() at encode', (t) => {
  const before = Date.now();
  const buf = encodeBatch([{ value: 'a' }, { value: 'b' }]);
  const after = Date.now();
  const records = decodeRecords(buf);
  t.true(records[0].timestamp >= before && records[0].timestamp <= after);
  t.is(records[1].timestamp, records[0].timestamp);
});

test('takes firstTimestamp and maxTimestamp as min and max of unordered timestamps', (t) => {
  const stamps = [ts + 10, ts, ts + 2 ** 33, ts + 1];
  const buf = encodeBatch(stamps.map((timestamp) => ({ value: 'x', timestamp })));
  const header = readBatchHeader(buf);
  t.is(header.firstTimestamp, ts);
  t.is(header.maxTimestamp, ts + 2 ** 33);
  t.deepEqual(decodeRecords(buf).map((r) => r.timestamp), stamps);
});

test('writes the header fields given in the options', (t) => {
  const buf = encodeBatch([{ value: 'x' }], { baseOffset: 2 ** 50, producerId: 2 ** 45 + 3, producerEpoch: 0x7fff, baseSequence: 0x7fffffff, partitionLeaderEpoch: -1 });
  const header = verifyBatch(buf);
  t.like(header, { baseOffset: 2 ** 50, producerId: 2 ** 45 + 3, producerEpoch: 0x7fff, baseSequence: 0x7fffffff, partitionLeaderEpoch: -1 });
});

// ---------------------------------------------------------------- varints

for (const length of [0, 1, 63, 64, 127, 128, 8191, 8192, 16383, 16384, 1_048_575, 1_048_576]) {
  test(`encodes a ${length}-byte length as a ${varint(length).length}-byte varint and round-trips it`, (t) => {
    const value = Buffer.alloc(length, 0x5a);
    const buf = encodeBatch([{ key: null, value }], { timestamp: ts });
    // record: length varint, attributes, timestampDelta 0, offsetDelta 0, key -1, value length varint
    const lengthBytes = varint(1 + 1 + 1 + 1 + varint(length).length + length + 1).length;
    const at = BATCH_HEADER_BYTES + lengthBytes + 4;
    t.deepEqual([...buf.subarray(at, at + varint(length).length)], varint(length));
    t.is(buf.length, at + varint(length).length + length + 1);
    const records = [{ key: 'k'.repeat(length), value: 'v'.repeat(length), headers: [{ key: 'h'.repeat(length), value }] }];
    const both = encodeBatch(records, { timestamp: ts });
    t.is(both.length, batchSizeOf(records, { timestamp: ts }));
    verifyBatch(both);
    t.deepEqual(decodeRecords(both).map(plain), [expected(records[0], 0, ts)]);
  });
}

test('encodes timestamp deltas across varlong boundaries', (t) => {
  const deltas = [0, 63, 64, 8191, 8192, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 35 + 7, 2 ** 45];
  const records = deltas.map((d) => ({ value: null, timestamp: ts + d }));
  const buf = encodeBatch(records);
  t.is(buf.length, batchSizeOf(records));
  t.deepEqual(decodeRecords(buf).map((r) => r.timestamp - ts), deltas);
});

test('decodes negative timestamp deltas (written by kafkajs and Java producers)', async (t) => {
  const deltas = [0, -1, -64, -65, -8192, -(2 ** 31), -(2 ** 33) - 1, 5];
  const kafka = await RecordBatch({
    firstTimestamp: ts, maxTimestamp: ts + 5, lastOffsetDelta: deltas.length - 1,
    records: deltas.map((timestampDelta, offsetDelta) => KafkaRecord({ offsetDelta, timestampDelta, value: 'x' })),
  });
  const buf = kafka.buffer;
  verifyBatch(buf);
  t.deepEqual(decodeRecords(buf).map((r) => r.timestamp - ts), deltas);
});

// ---------------------------------------------------------------- setBaseOffset

test('setBaseOffset assigns offsets in place and keeps the CRC valid', (t) => {
  const buf = encodeBatch([{ value: 'a' }, { value: 'b' }]);
  const crc = readBatchHeader(buf).crc;
  for (const base of [1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER - 1, 0]) {
    setBaseOffset(buf, 0, base);
    t.is(verifyBatch(buf).baseOffset, base);
    t.is(readBatchHeader(buf).crc, crc);
    t.deepEqual(decodeRecords(buf).map((r) => r.offset), [base, base + 1]);
  }
  const inside = Buffer.concat([Buffer.alloc(3), buf]);
  setBaseOffset(inside, 3, 77);
  t.is(verifyBatch(inside, 3).baseOffset, 77);
  t.throws(() => setBaseOffset(buf, 0, -1), invalidArgument);
  t.throws(() => setBaseOffset(buf, 0, 2 ** 53), invalidArgument);
  t.throws(() => setBaseOffset(buf, buf.length - 11, 1), invalidArgument);
});

// ---------------------------------------------------------------- verifyBatch

/** A valid batch at position 5 of a larger buffer, so errors must report that position. */
function placed(): { buf: Buffer; end: number } {
  const batch = encodeBatch([{ key: 'k', value: 'value' }, { value: 'two' }], { timestamp: ts });
  return { buf: Buffer.concat([Buffer.alloc(5, 0xee), batch, Buffer.alloc(7, 0xee)]), end: 5 + batch.length };
}

test('verifyBatch accepts a valid batch inside a larger buffer', (t) => {
  const { buf, end } = placed();
  t.is(verifyBatch(buf, 5, end).size, end - 5);
  t.is(verifyBatch(buf, 5).recordCount, 2);
});

test('verifyBatch rejects a flipped byte in the records as a CRC mismatch', (t) => {
  const { buf, end } = placed();
  buf[end - 3] ^= 0x10;
  const err = t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message: /position 5: CRC mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/ });
  t.is(err?.position, 5);
});

test('verifyBatch rejects a flipped byte in each CRC-covered header field', (t) => {
  for (let at = ATTRIBUTES_POS; at < BATCH_HEADER_BYTES; at++) {
    const { buf, end } = placed();
    buf[5 + at] ^= 0x01;
    t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message: /CRC mismatch/ }, `byte ${at}`);
  }
});

test('verifyBatch rejects a wrong magic', (t) => {
  const { buf, end } = placed();
  buf[5 + MAGIC_POS] = 1;
  t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message: /position 5: magic 1, expected 2/ });
});

test('verifyBatch rejects a truncated batch', (t) => {
  const { buf, end } = placed();
  t.throws(() => verifyBatch(buf, 5, end - 1), { ...corruptBatch, message: /truncated/ });
  t.throws(() => verifyBatch(buf.subarray(0, end - 1), 5), { ...corruptBatch, message: /truncated/ });
  t.throws(() => verifyBatch(buf, 5, 5 + LOG_OVERHEAD - 1), { ...corruptBatch, message: /truncated: 11 bytes left/ });
  t.throws(() => verifyBatch(buf, 5, 5), corruptBatch);
});

test('verifyBatch rejects a batch length below the header size', (t) => {
  const { buf, end } = placed();
  buf.writeInt32BE(48, 5 + BATCH_LENGTH_POS);
  t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message: /batch length 48 is below the minimum 49/ });
  buf.writeInt32BE(-1, 5 + BATCH_LENGTH_POS);
  t.throws(() => verifyBatch(buf, 5, end), corruptBatch);
});

test('verifyBatch rejects a bad record count even under a valid CRC', (t) => {
  for (const [count, lastDelta, message] of [
    [3, 1, /last offset delta 1 does not match record count 3/],
    [0, -1, /record count 0/],
    [2, 5, /last offset delta 5/],
  ] as const) {
    const { buf, end } = placed();
    buf.writeInt32BE(count, 5 + RECORD_COUNT_POS);
    buf.writeInt32BE(lastDelta, 5 + LAST_OFFSET_DELTA_POS);
    t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message: /CRC mismatch/ });
    reseal(buf, 5);
    t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message });
  }
});

test('verifyBatch accepts codecs 1-4 (their records are checked when decompressed) and rejects 5-7 with a clear message', (t) => {
  for (const codec of [1, 2, 3, 4]) {
    const { buf, end } = placed();
    buf.writeInt16BE(codec, 5 + ATTRIBUTES_POS);
    reseal(buf, 5);
    t.is(verifyBatch(buf, 5, end).attributes, codec);
    // Plain records marked compressed: the decoder's decompression refuses them.
    t.throws(() => decodeRecords(buf, 5), { ...corruptBatch, message: /corrupt batch at position 5: its (gzip|snappy|lz4|zstd)-compressed records do not decompress: / });
  }
  for (const codec of [5, 6, 7]) {
    const { buf, end } = placed();
    buf.writeInt16BE(codec, 5 + ATTRIBUTES_POS);
    reseal(buf, 5);
    t.throws(() => verifyBatch(buf, 5, end), { ...corruptBatch, message: new RegExp(`compression codec ${codec} in the attributes at byte 26 is not one of Kafka's \\(0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd\\)`) });
    t.throws(() => decodeRecords(buf, 5), { ...corruptBatch, message: new RegExp(`compression codec ${codec} `) });
  }
});

test('verifyBatch accepts the transactional and timestamp-type bits', (t) => {
  const buf = encodeBatch([{ value: 'x', timestamp: ts }, { value: 'y', timestamp: ts + 9 }]);
  buf.writeInt16BE(0x18, ATTRIBUTES_POS);
  reseal(buf);
  t.is(verifyBatch(buf).attributes, 0x18);
  t.deepEqual(decodeRecords(buf).map((r) => r.timestamp), [ts + 9, ts + 9], 'LogAppendTime: every record takes maxTimestamp');
});

test('readBatchHeader reads a Uint8Array and throws only when the header is out of bounds', (t) => {
  const buf = encodeBatch([{ value: 'x' }], { baseOffset: 9 });
  buf[MAGIC_POS] = 7;
  t.like(readBatchHeader(new Uint8Array(buf)), { baseOffset: 9, magic: 7 });
  t.throws(() => readBatchHeader(buf, buf.length - BATCH_HEADER_BYTES + 1), corruptBatch);
  t.throws(() => readBatchHeader(buf, -1), invalidArgument);
});

// ---------------------------------------------------------------- decoding

test('decodeRecords with fromOffset skips earlier records', (t) => {
  const buf = encodeBatch(Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, headers: { i: `${i}` } })), { baseOffset: 100 });
  t.deepEqual(decodeRecords(buf, 0, 105).map((r) => [r.offset, r.key!.toString(), r.headers[0].value!.toString()]),
    [105, 106, 107, 108, 109].map((o) => [o, `k${o - 100}`, `${o - 100}`]));
  t.is(decodeRecords(buf, 0, 0).length, 10);
  t.is(decodeRecords(buf, 0, 110).length, 0);
});

test('decodeBatches reads consecutive batches, skips by fromOffset and stops at a zero length', (t) => {
  const batches = [0, 3, 5].map((base, b) => encodeBatch(Array.from({ length: b === 1 ? 2 : 3 }, (_, i) => ({ value: `${base + i}` })), { baseOffset: base }));
  const buf = Buffer.concat([Buffer.alloc(4, 9), ...batches, Buffer.alloc(100)]);
  const end = 4 + batches.reduce((n, b) => n + b.length, 0);
  const values = (records: LogRecord[]) => records.map((r) => [r.offset, Number(r.value!.toString())]);
  t.deepEqual(values(decodeBatches(buf, 4, end)), [0, 1, 2, 3, 4, 5, 6, 7].map((o) => [o, o]));
  t.deepEqual(values(decodeBatches(buf, 4, buf.length, 4)), [4, 5, 6, 7].map((o) => [o, o]));
  t.deepEqual(values(decodeBatches(buf, 4, buf.length, 6)), [6, 7].map((o) => [o, o]));
  t.deepEqual(decodeBatches(buf, end, buf.length), []);
  t.deepEqual(decodeBatches(buf, end, end + 5), [], 'fewer than 12 zero bytes is the end too');
  buf[end + 2] = 1;
  t.throws(() => decodeBatches(buf, 4, end + 5), { ...corruptBatch, message: /5 trailing bytes/ });
  t.throws(() => decodeBatches(buf, 4, end - 1), { ...corruptBatch, message: /truncated/ });
});

const lies: [string, number[], number, RegExp][] = [
  ['a record length past the batch', [...varint(100), 0, 0, 0, 1, 1, 0], 1, /record 0 of 100 bytes runs past/],
  ['a negative record length', [...varint(-5), 0, 0, 0, 1, 1, 0], 1, /record 0 of -5 bytes/],
  ['a record length shorter than its fields', [...varint(4), 0, 0, 0, 1, 1, 0], 1, /runs past/],
  ['a record length longer than its fields', [...varint(7), 0, 0, 0, 1, 1, 0, 0], 1, /declares 7 bytes but its fields take 6/],
  ['a key length past the record', [...varint(6), 0, 0, 0, ...varint(50), 1, 0], 1, /field of 50 bytes runs past/],
  ['a value length of -2', [...varint(6), 0, 0, 0, 1, ...varint(-2), 0], 1, /negative length -2/],
  ['a header count with no headers', [...varint(7), 0, 0, 0, 1, 1, ...varint(1000)], 1, /runs past/],
  ['a negative header count', [...varint(6), 0, 0, 0, 1, 1, ...varint(-3)], 1, /header count -3/],
  ['a header key past the record', [...varint(8), 0, 0, 0, 1, 1, ...varint(1), ...varint(40), 0x61], 1, /header key of 40 bytes/],
  ['a six-byte varint', [...varint(11), 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0], 1, /exceeds 32 bits/],
  ['a varint cut by the batch end', [0x80], 1, /varint runs past/],
  ['a ten-byte timestamp delta', [...varint(15), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 1, 1, 0], 1, /beyond ±2\^52/],
  ['a negative offset delta', [...varint(6), 0, 0, ...varint(-1), 1, 1, 0], 1, /offset delta -1/],
  ['a record count above the records present', [...varint(6), 0, 0, 0, 1, 1, 0], 2, /varint runs past/],
  ['bytes after the last record', [...varint(6), 0, 0, 0, 1, 1, 0, 0, 0], 1, /2 bytes left after the last of 1 records/],
  ['a negative record count', [], -1, /record count -1/],
];

for (const [what, bytes, count, message] of lies) {
  test(`decodeRecords throws ERR_CORRUPT_BATCH on ${what}`, (t) => {
    t.throws(() => decodeRecords(rawBatch(bytes, count)), { ...corruptBatch, message });
  });
}

test('the lie-test harness itself builds decodable batches', (t) => {
  t.deepEqual(decodeRecords(rawBatch([...varint(6), 0, 0, 0, 1, 1, 0], 1)).map(plain), [{ offset: 0, timestamp: 1000, key: null, value: null, headers: [] }]);
});

test(`decodeRecords on randomly mutated batches returns records or throws ERR_CORRUPT_BATCH, never RangeError (seed ${seed})`, (t) => {
  t.log(`seed ${seed}`);
  const random = rng(seed ^ 0x1234);
  const original = encodeBatch(Array.from({ length: 20 }, (_, i) => ({ key: i % 3 ? `k${i}` : null, value: 'v'.repeat(i * 7), headers: i % 2 ? { h: 'x'.repeat(i) } : undefined })), { timestamp: ts });
  let corrupt = 0;
  for (let round = 0; round < 3000; round++) {
    const buf = Buffer.from(original);
    const flips = 1 + Math.floor(random() * 4);
    for (let f = 0; f < flips; f++) buf[BATCH_HEADER_BYTES + Math.floor(random() * (buf.length - BATCH_HEADER_BYTES))] = Math.floor(random() * 256);
    if (random() < 0.2) buf.writeInt32BE(BATCH_HEADER_BYTES - LOG_OVERHEAD + Math.floor(random() * (buf.length - BATCH_HEADER_BYTES)), BATCH_LENGTH_POS);
    if (random() < 0.2) buf.writeInt32BE(Math.floor(random() * 40) - 5, RECORD_COUNT_POS);
    try {
      const bad = decodeRecords(buf).find((r) => !(r.offset >= 0 && Number.isSafeInteger(r.timestamp)));
      if (bad !== undefined) t.fail(`round ${round}: decoded ${JSON.stringify(bad)}`);
    } catch (err) {
      if (!(err instanceof CommitLogError) || err.code !== ErrorCode.CORRUPT_BATCH) {
        t.fail(`round ${round}: ${String(err)}`);
        return;
      }
      corrupt++;
    }
    if (!buf.equals(original)) t.throws(() => verifyBatch(buf), corruptBatch);
  }
  t.log(`${corrupt} of 3000 mutated batches reported corrupt, the rest decoded`);
  t.true(corrupt > 1000);
});

// ---------------------------------------------------------------- arguments

test('encodeBatch rejects bad arguments with ERR_INVALID_ARGUMENT', (t) => {
  const bad: [unknown, unknown?][] = [
    [[]],
    [undefined],
    [[null]],
    [[{ value: 5 }]],
    [[{}]],
    [[{ key: {}, value: 'x' }]],
    [[{ value: 'x', timestamp: -1 }]],
    [[{ value: 'x', timestamp: NaN }]],
    [[{ value: 'x', timestamp: Infinity }]],
    [[{ value: 'x', timestamp: 1.5 }]],
    [[{ value: 'x', headers: { h: 1 } }]],
    [[{ value: 'x', headers: [{ key: 1, value: null }] }]],
    [[{ value: 'x', headers: 'h' }]],
    [[{ value: 'x' }], { timestamp: -5 }],
    [[{ value: 'x' }], { baseOffset: -1 }],
    [[{ value: 'x' }], { baseOffset: 1.5 }],
    [[{ value: 'x' }], { producerEpoch: 0x8000 }],
  ];
  for (const [records, options] of bad) {
    t.throws(() => encodeBatch(records as ProducerRecord[], options as object), invalidArgument, JSON.stringify([records, options]));
  }
  t.throws(() => encodeBatch([]), { ...invalidArgument, message: /at least one record/ });
  t.throws(() => encodeBatch([{ value: 5 as unknown as string }]), { ...invalidArgument, message: /value of record 0 must be a Buffer, a string or null, got number/ });
});

test('a failed encode leaves the next encode correct', (t) => {
  t.throws(() => encodeBatch([{ value: 'x', headers: { a: 'y' } }, { value: 5 as unknown as string }]));
  const buf = encodeBatch([{ value: 'ok', headers: [{ key: 'h', value: Buffer.from('v') }] }], { timestamp: ts });
  t.deepEqual(decodeRecords(buf).map(plain), [{ offset: 0, timestamp: ts, key: null, value: hex('ok'), headers: [['h', hex('v')]] }]);
});

// ---------------------------------------------------------------- kafkajs cross-check

const alphabet = ['a', 'b', 'z', '0', ' ', 'é', 'ü', '€', 'ß', '中', '😀'];

function randomLength(random: () => number): number {
  const r = random();
  if (r < 0.6) return Math.floor(random() * 20);
  if (r < 0.95) return Math.floor(random() * 300);
  return 8000 + Math.floor(random() * 10_000);
}

function randomString(random: () => number, length = randomLength(random)): string {
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
  return s;
}

function randomBuffer(random: () => number, length = randomLength(random)): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = Math.floor(random() * 256);
  return b;
}

function randomBytes(random: () => number, nullable: boolean): Buffer | string | null {
  const r = random();
  if (nullable && r < 0.2) return null;
  if (r < 0.3) return random() < 0.5 ? '' : Buffer.alloc(0);
  return r < 0.65 ? randomString(random) : randomBuffer(random);
}

/** kafkajs's shape of headers: an object, a repeated key becoming an array of values. */
function kafkaHeaders(list: [string, Buffer | string | null][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of list) {
    const value = v === null ? null : Buffer.from(v);
    out[k] = out[k] === undefined ? value : Array.isArray(out[k]) ? [...(out[k] as unknown[]), value] : [out[k], value];
  }
  return out;
}

test(`kafkajs-encoded random batches pass verifyBatch and decode to the same records (seed ${seed})`, async (t) => {
  t.log(`seed ${seed}`);
  const random = rng(seed);
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(random() * (random() < 0.9 ? 8 : 200));
    const firstOffset = Math.floor(random() * 2 ** 45);
    const firstTimestamp = Math.floor(random() * 2 ** 42);
    const inputs: KafkaRecordInput[] = [];
    const want: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const key = randomBytes(random, true);
      const value = randomBytes(random, true);
      const timestampDelta = Math.floor((random() - 0.3) * (random() < 0.9 ? 1000 : 2 ** 36));
      // kafkajs cannot encode a null header value (Buffer.byteLength(null) throws), so none here.
      const list: [string, Buffer | string][] = [];
      const headers: Record<string, Buffer | string | (Buffer | string)[]> = {};
      for (let h = Math.floor(random() * 4); h > 0; h--) {
        const k = randomString(random, Math.floor(random() * 6));
        const values = Array.from({ length: random() < 0.2 ? 2 : 1 }, () => (random() < 0.5 ? randomString(random, Math.floor(random() * 30)) : randomBuffer(random, Math.floor(random() * 30))));
        if (headers[k] !== undefined) continue;
        headers[k] = values.length === 1 ? values[0] : values;
        for (const v of values) list.push([k, v]);
      }
      inputs.push({ offsetDelta: i, timestampDelta, key, value, headers });
      // kafkajs writes object keys in Object.keys order (integer-like keys first), as we decode them.
      const ordered = Object.keys(headers).flatMap((k) => list.filter(([lk]) => lk === k));
      want.push({ offset: firstOffset + i, timestamp: firstTimestamp + timestampDelta, key: hex(key), value: hex(value), headers: ordered.map(([k, v]) => [k, hex(v)]) });
    }
    const encoded = await RecordBatch({ firstOffset, firstTimestamp, maxTimestamp: firstTimestamp, lastOffsetDelta: n - 1, records: inputs.map((r) => KafkaRecord(r)) });
    const buf = encoded.buffer;
    const header = verifyBatch(buf);
    t.is(header.baseOffset, firstOffset);
    t.deepEqual(decodeRecords(buf).map(plain), want, `round ${round}`);
  }
});

test(`our random batches decode in kafkajs to the same records (seed ${seed})`, async (t) => {
  t.log(`seed ${seed}`);
  const random = rng(seed ^ 0x9e3779b9);
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(random() * (random() < 0.9 ? 8 : 200));
    const baseOffset = Math.floor(random() * 2 ** 45);
    const batchTimestamp = Math.floor(random() * 2 ** 42);
    const records: ProducerRecord[] = [];
    for (let i = 0; i < n; i++) {
      const record: ProducerRecord = { key: randomBytes(random, true), value: randomBytes(random, true) };
      if (random() < 0.3) record.key = undefined;
      if (random() < 0.5) record.timestamp = Math.max(0, batchTimestamp + Math.floor((random() - 0.5) * (random() < 0.9 ? 1000 : 2 ** 36)));
      const r = random();
      if (r < 0.3) {
        const headers: RecordHeader[] = [];
        for (let h = Math.floor(random() * 4); h > 0; h--) {
          const v = randomBytes(random, true);
          headers.push({ key: randomString(random, Math.floor(random() * 4)), value: v === null ? null : Buffer.from(v) });
        }
        record.headers = headers;
      } else if (r < 0.6) {
        const headers: Record<string, Buffer | string | null> = {};
        for (let h = Math.floor(random() * 4); h > 0; h--) headers[randomString(random, Math.floor(random() * 6))] = randomBytes(random, true);
        record.headers = headers;
      }
      records.push(record);
    }
    const producerId = random() < 0.5 ? -1 : Math.floor(random() * 2 ** 40);
    const buf = encodeBatch(records, { baseOffset, timestamp: batchTimestamp, producerId, producerEpoch: producerId < 0 ? -1 : 1, baseSequence: producerId < 0 ? -1 : 17 });
    t.is(buf.length, batchSizeOf(records, { timestamp: batchTimestamp }));
    const theirs = await decodeKafkaBatch(new KafkaDecoder(buf));
    t.like(theirs, { firstOffset: String(baseOffset), partitionLeaderEpoch: 0, producerId: String(producerId), producerEpoch: producerId < 0 ? -1 : 1, firstSequence: producerId < 0 ? -1 : 17 });
    const got = theirs.records.map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers }));
    const want = records.map((r, i) => ({
      offset: String(baseOffset + i),
      timestamp: String(r.timestamp ?? batchTimestamp),
      key: hex(r.key),
      value: hex(r.value),
      headers: kafkaHeaders(headerList(r.headers).map(([k, v]) => [k, v === null ? null : Buffer.from(v, 'hex')])),
    }));
    t.deepEqual(got, want, `round ${round}`);
  }
});

test('1000-record batches round-trip through kafkajs in both directions', async (t) => {
  const records = Array.from({ length: 1000 }, (_, i) => ({ key: `key-${i}`, value: Buffer.alloc(100, i), timestamp: ts + i }));
  const ours = encodeBatch(records, { baseOffset: 5000 });
  const theirs = await decodeKafkaBatch(new KafkaDecoder(ours));
  t.deepEqual(theirs.records.map((r) => [r.offset, r.timestamp, r.key!.toString(), r.value!.equals(records[Number(r.offset) - 5000].value)]),
    records.map((r, i) => [String(5000 + i), String(r.timestamp), r.key, true]));
  const kafka = await RecordBatch({
    firstOffset: 5000, firstTimestamp: ts, maxTimestamp: ts + 999, lastOffsetDelta: 999, producerEpoch: -1, firstSequence: -1,
    records: records.map((r, i) => KafkaRecord({ offsetDelta: i, timestampDelta: i, key: r.key, value: r.value })),
  });
  t.is(kafka.buffer.toString('hex'), ours.toString('hex'));
});
