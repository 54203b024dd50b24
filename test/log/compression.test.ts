/**
 * Compressed batches (gzip, snappy, lz4, zstd) in the log: batches captured from real
 * Kafka clients (test/log/fixtures/compressed/, made by capture-compressed.ts next to
 * them) are accepted by appendBatch, get their offsets in place, are served back byte
 * for byte, decode to exactly the records the client was given, and survive a reopen;
 * zip bombs and damaged compressed payloads are ERR_CORRUPT_BATCH with nothing stored.
 * Also the codecs themselves (src/log/compression.ts): round trips, xerial and raw
 * snappy, and the decompressed-size bound.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { CommitLog, ErrorCode, decodeBatches, encodeBatch, verifyBatch } from '../../src/index.js';
import type { LogRecord } from '../../src/index.js';
import { ATTRIBUTES_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, CRC_POS, LAST_OFFSET_DELTA_POS, LOG_OVERHEAD, RECORD_COUNT_POS, decodeRecords } from '../../src/log/batch.js';
import { validateRecords } from '../../src/log/batch-validate.js';
import { DecompressionError, MAX_DECOMPRESSED_BYTES, compress, decompress, rawSnappyCompress } from '../../src/log/compression.js';
import { crc32c } from '../../src/native.js';
import { randInt, rng, testSeed, tmpDir } from '../helpers/tmp.js';

const require = createRequire(import.meta.url);
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'compressed');
const expected = JSON.parse(fs.readFileSync(path.join(fixtures, 'records.json'), 'utf8')) as Record<string, { key: string | null; value: string; headers: [string, string][]; timestamp: number }[]>;
const FIXTURES = Object.keys(expected);
const CODECS = { gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
const corruptBatch = { code: ErrorCode.CORRUPT_BATCH };

async function openLog(t: ExecutionContext, dir: string): Promise<CommitLog> {
  const log = await CommitLog.open({ dir, warmSegments: false, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: 1 << 20 } });
  t.teardown(() => log.close());
  return log;
}

/** The batches of a run of batches (split by their lengths). */
function batchesOf(run: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < run.length;) {
    const size = LOG_OVERHEAD + run.readInt32BE(p + BATCH_LENGTH_POS);
    out.push(run.subarray(p, p + size));
    p += size;
  }
  return out;
}

function plain(r: LogRecord): unknown {
  return {
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : r.key.toString('utf8'),
    value: r.value === null ? null : r.value.toString('utf8'),
    headers: r.headers.map((h) => [h.key, h.value === null ? null : h.value.toString('utf8')]),
  };
}

function want(name: string, firstOffset: number): unknown[] {
  return expected[name].map((r, i) => ({ offset: firstOffset + i, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers }));
}

/** The stored bytes of a partition from `offset` (the batches as sendfile would serve them). */
function served(log: CommitLog, topic: string, offset: number): Buffer {
  const slice = log.readSlice(topic, 0, offset, 1 << 20);
  if (slice === null) throw new Error('nothing to read');
  try {
    return Buffer.from(slice.segment.view(slice.position, slice.length));
  } finally {
    slice.release();
  }
}

/** Rewrites a batch's records section (codec bits, length and CRC follow): what a producer with that codec sends. */
function withRecords(batch: Buffer, codec: number, records: Buffer, recordCount?: number): Buffer {
  const out = Buffer.concat([batch.subarray(0, BATCH_HEADER_BYTES), records]);
  out.writeInt32BE(out.length - LOG_OVERHEAD, BATCH_LENGTH_POS);
  out.writeInt16BE((out.readInt16BE(ATTRIBUTES_POS) & ~7) | codec, ATTRIBUTES_POS);
  if (recordCount !== undefined) {
    out.writeInt32BE(recordCount, RECORD_COUNT_POS);
    out.writeInt32BE(recordCount - 1, LAST_OFFSET_DELTA_POS);
  }
  out.writeUInt32BE(crc32c(out, ATTRIBUTES_POS, out.length), CRC_POS);
  return out;
}

/** An uncompressed batch of n records and the same records compressed with codec. */
function sample(codec: number, n = 20): { plainBatch: Buffer; packed: Buffer } {
  const plainBatch = encodeBatch(Array.from({ length: n }, (_, i) => ({
    key: i % 4 === 0 ? null : `k${i}`,
    value: `value ${i} ${'abc'.repeat(i)}`,
    headers: i % 2 === 0 ? [{ key: 'h', value: Buffer.from(`v${i}`) }, { key: 'null', value: null }] : undefined,
    timestamp: 1_700_000_000_000 + i,
  })), { timestamp: 1_700_000_000_000 });
  return { plainBatch, packed: withRecords(plainBatch, codec, compress(codec, plainBatch.subarray(BATCH_HEADER_BYTES))) };
}

test('the fixtures cover every codec and real clients', (t) => {
  t.deepEqual(FIXTURES.sort(), [
    'confluent-zstd', 'kafka-python-gzip', 'kafka-python-lz4', 'kafka-python-snappy', 'kafka-python-zstd',
    'kafkajs-gzip', 'platformatic-gzip', 'platformatic-lz4', 'platformatic-snappy',
  ]);
  for (const name of FIXTURES) {
    const codec = CODECS[name.slice(name.lastIndexOf('-') + 1) as keyof typeof CODECS];
    for (const b of batchesOf(fs.readFileSync(path.join(fixtures, `${name}.bin`)))) t.is(b.readInt16BE(ATTRIBUTES_POS) & 7, codec, name);
  }
});

for (const name of FIXTURES) {
  test(`${name}: appended, offsets assigned in place, served back byte for byte, decoded exactly, and the same after a reopen`, async (t) => {
    const run = fs.readFileSync(path.join(fixtures, `${name}.bin`));
    const dir = tmpDir(t);
    let log = await openLog(t, dir);
    await log.createTopic('t', { partitions: 1 });
    // Three uncompressed records first, so the client's batches get offsets 3.. in place.
    await log.append('t', 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    const batches = batchesOf(run);
    let next = 3;
    for (const b of batches) {
      const copy = Buffer.from(b);
      const result = await log.appendBatch('t', 0, copy);
      const count = b.readInt32BE(RECORD_COUNT_POS);
      t.deepEqual(result, { baseOffset: next, lastOffset: next + count - 1 });
      next += count;
    }
    t.is(next - 3, expected[name].length);
    const check = (l: CommitLog): void => {
      const stored = served(l, 't', 3);
      t.is(stored.length, run.length);
      let p = 0;
      let base = 3;
      for (const b of batches) {
        const s = stored.subarray(p, p + b.length);
        t.is(s.readBigInt64BE(0), BigInt(base), 'base offset assigned');
        // Everything from the magic on (CRC, attributes, compressed records) is the client's.
        t.true(s.subarray(16).equals(b.subarray(16)), 'bytes after the leader epoch are unchanged');
        t.true(s.subarray(8, 12).equals(b.subarray(8, 12)));
        verifyBatch(s);
        p += b.length;
        base += b.readInt32BE(RECORD_COUNT_POS);
      }
      t.deepEqual(decodeBatches(stored, 0, stored.length, 3).map(plain), want(name, 3));
      t.deepEqual(l.read('t', 0, 3).map(plain), want(name, 3));
      // From an offset inside a batch: the records before it are skipped.
      t.deepEqual(l.read('t', 0, 5).map(plain), want(name, 3).slice(2));
    };
    check(log);
    await log.close();
    log = await openLog(t, dir);
    check(log);
    t.deepEqual(log.read('t', 0, 0).slice(0, 3).map((r) => r.value!.toString()), ['a', 'b', 'c']);
  });
}

test('kafkajs decodes the gzip batches we build, and we decode its own', async (t) => {
  const kafkajsRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js');
  const Decoder = require('kafkajs/src/protocol/decoder.js');
  const { packed } = sample(1);
  const theirs = await kafkajsRecordBatch(new Decoder(packed));
  const ours = decodeRecords(packed).map(plain) as { key: string | null; value: string; timestamp: number }[];
  t.deepEqual(theirs.records.map((r: { key: Buffer | null; value: Buffer; timestamp: string }) => ({ key: r.key === null ? null : r.key.toString(), value: r.value.toString(), timestamp: Number(r.timestamp) })),
    ours.map((r) => ({ key: r.key, value: r.value, timestamp: r.timestamp })));
});

for (const [name, codec] of Object.entries(CODECS)) {
  test(`${name}: a batch we compress is accepted and reads back the records of its uncompressed twin`, async (t) => {
    const { plainBatch, packed } = sample(codec);
    t.true(packed.length < plainBatch.length);
    t.is(validateRecords(packed, 0, verifyBatch(packed)), validateRecords(plainBatch, 0, verifyBatch(plainBatch)));
    t.deepEqual(decodeRecords(packed).map(plain), decodeRecords(plainBatch).map(plain));
    const log = await openLog(t, tmpDir(t));
    await log.createTopic('t', { partitions: 1 });
    t.deepEqual(await log.appendBatch('t', 0, packed), { baseOffset: 0, lastOffset: 19 });
    t.deepEqual(log.read('t', 0, 0).map(plain), decodeRecords(plainBatch).map(plain));
  });

  test(`${name}: a truncated, a damaged or a miscounted compressed payload is ERR_CORRUPT_BATCH and nothing is stored`, async (t) => {
    const { plainBatch, packed } = sample(codec);
    const body = packed.subarray(BATCH_HEADER_BYTES);
    const truncated = withRecords(packed, codec, body.subarray(0, Math.floor(body.length / 2)));
    const garbage = withRecords(packed, codec, Buffer.from(body.map((x, i) => (i >= 20 ? x ^ 0x5a : x))));
    const miscounted = withRecords(packed, codec, body, 21);
    const short = withRecords(packed, codec, body, 19);
    // Records that are not compressed at all, marked as compressed.
    const unpacked = withRecords(packed, codec, plainBatch.subarray(BATCH_HEADER_BYTES));
    const log = await openLog(t, tmpDir(t));
    await log.createTopic('t', { partitions: 1 });
    for (const [what, bad, message] of [
      ['truncated', truncated, /do not decompress|record|bytes left/],
      ['damaged', garbage, /do not decompress|record|bytes left/],
      ['record count 21 of 20', miscounted, /record 20 at byte \d+ of the decompressed records: missing: the record count in the header is 21/],
      ['record count 19 of 20', short, /bytes? left after the last record: the record count in the header is 19, the decompressed records end at byte/],
      ['not compressed', unpacked, /do not decompress/],
    ] as const) {
      const err = await t.throwsAsync(log.appendBatch('t', 0, bad), corruptBatch, what);
      t.regex(err!.message, message, what);
      t.regex(err!.message, /^corrupt batch at position 0: /, what);
    }
    t.is(log.latestOffset('t', 0), 0);
    t.deepEqual(log.read('t', 0, 0), []);
    t.deepEqual(await log.appendBatch('t', 0, packed), { baseOffset: 0, lastOffset: 19 });
  });
}

test('zip bombs: batches that decompress past 64 MiB are ERR_CORRUPT_BATCH and nothing is stored', async (t) => {
  t.timeout(60_000);
  const { plainBatch } = sample(1, 1);
  const zeros = Buffer.alloc(MAX_DECOMPRESSED_BYTES + 1024);
  const GiB = 2 ** 30;
  // Snappy's length preamble, LZ4's and zstd's content size: headers that claim 1 GiB.
  const snappyClaim = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04, 0x00]);
  const lz4Claim = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x68, 0x40]), Buffer.from([0, 0, 0, 0x40, 0, 0, 0, 0]), Buffer.from([0, 0, 0, 0, 0])]);
  const zstdClaim = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0]), Buffer.from([0, 0, 0, 0x40]), Buffer.from([0x01, 0, 0])]);
  const bombs: [string, number, Buffer, RegExp][] = [
    ['gzip of 64 MiB + 1 KiB of zeros', 1, zlib.gzipSync(zeros, { level: 9 }), /gzip data decompresses to more than the limit of 67108864 bytes/],
    ['zstd of 64 MiB + 1 KiB of zeros', 4, compress(4, zeros), /zstd data decompresses to more than the limit of 67108864 bytes/],
    ['raw snappy of 64 MiB + 1 KiB of zeros', 2, rawSnappyCompress(zeros), /snappy data decompresses to more than the limit .*its length preamble says 67109888 bytes/],
    ['xerial snappy of 64 MiB + 1 KiB of zeros', 2, compress(2, zeros), /snappy data decompresses to more than the limit .*at least 67\d+ bytes/],
    ['lz4 of 64 MiB + 1 KiB of zeros', 3, compress(3, zeros), /lz4 data decompresses to more than the limit .*its blocks so far may hold/],
    ['a snappy preamble claiming 1 GiB', 2, snappyClaim, new RegExp(`its length preamble says ${GiB} bytes`)],
    ['an lz4 content size of 1 GiB', 3, lz4Claim, new RegExp(`its content size says ${GiB} bytes`)],
    ['a zstd content size of 1 GiB', 4, zstdClaim, new RegExp(`its content size says ${GiB} bytes`)],
  ];
  const log = await openLog(t, tmpDir(t));
  await log.createTopic('t', { partitions: 1 });
  for (const [what, codec, payload, message] of bombs) {
    t.true(payload.length < 4 << 20, `${what}: ${payload.length} bytes compressed`);
    const bomb = withRecords(plainBatch, codec, payload);
    const err = await t.throwsAsync(log.appendBatch('t', 0, bomb), corruptBatch, what);
    t.regex(err!.message, message, what);
    t.throws(() => decodeRecords(bomb), { ...corruptBatch, message }, what);
  }
  t.is(log.latestOffset('t', 0), 0);
});

test('codecs: round trips, xerial snappy and raw snappy, the decompressed-size bound', (t) => {
  const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => `line ${i % 977}\n`).join(''));
  for (const codec of [1, 2, 3, 4]) {
    const packed = compress(codec, data);
    t.true(decompress(codec, packed).equals(data), `codec ${codec}`);
    // gzip and snappy know the exact size; lz4 and zstd bound a compressed block by its maximum.
    const slack = { 1: 0, 2: 0, 3: 4 << 20, 4: 128 << 10 }[codec]!;
    t.true(decompress(codec, packed, data.length + slack).equals(data), `codec ${codec} at its size + ${slack}`);
    t.throws(() => decompress(codec, packed, data.length - 1), { message: /decompresses to more than the limit/ }, `codec ${codec} one byte over`);
    t.true(decompress(codec, compress(codec, Buffer.alloc(0))).equals(Buffer.alloc(0)), `codec ${codec} empty`);
  }
  const xerial = compress(2, data);
  t.is(xerial.subarray(0, 16).toString('hex'), '82534e41505059000000000100000001');
  t.true(decompress(2, rawSnappyCompress(data)).equals(data));
  t.throws(() => decompress(5, data), { message: /codec 5 is not a compression codec/ });
  t.throws(() => decompress(3, Buffer.from('not an lz4 frame')), { message: /lz4: frame magic 0x20746f6e at byte 0, expected 0x184d2204/ });
  t.throws(() => decompress(4, Buffer.from('not a zstd frame')), { message: /zstd: frame magic/ });
});

const seed = testSeed();
test(`codecs: randomly damaged payloads decode or throw DecompressionError, never anything else, never past the bound (seed ${seed})`, (t) => {
  const r = rng(seed);
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => `record ${i % 97} ${'xyz'.repeat(i % 13)}`).join('|'));
  let refused = 0;
  let decoded = 0;
  for (const codec of [1, 2, 3, 4]) {
    const packed = compress(codec, data);
    for (let n = 0; n < 500; n++) {
      const bad = Buffer.from(packed);
      const flips = randInt(r, 1, 4);
      for (let k = 0; k < flips; k++) bad[randInt(r, 0, bad.length - 1)] = randInt(r, 0, 255);
      const cut = randInt(r, 0, 3) === 0 ? bad.subarray(0, randInt(r, 0, bad.length)) : bad;
      try {
        const out = decompress(codec, cut, 200_000);
        t.true(out.length <= 200_000);
        decoded++;
      } catch (err) {
        if (!(err instanceof DecompressionError)) t.fail(`codec ${codec}: ${String(err)}`);
        refused++;
      }
    }
  }
  t.log(`${refused} refused, ${decoded} decoded`);
  t.true(refused > 0);
});
