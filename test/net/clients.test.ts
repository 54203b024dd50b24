import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { xxh3Low32 } from '../../src/hash.js';
import { CommitLog } from '../../src/log/commit-log.js';
import { Admin } from '../../src/net/client/admin.js';
import { isConnectionError, isRetriable, parseBroker, type ConsumerRecord } from '../../src/net/client/client-types.js';
import { Connection } from '../../src/net/client/connection.js';
import { Consumer, type ConsumerOptions } from '../../src/net/client/consumer.js';
import { encodeFrame, FrameDecoder } from '../../src/net/protocol/frame.js';
import { decodeRequest, encodeResponse } from '../../src/net/protocol/messages.js';
import { Producer, type ProducerOptions } from '../../src/net/client/producer.js';
import { startBroker, type Broker } from '../../src/net/broker/server.js';

// End to end: each test opens its own CommitLog and broker on an ephemeral port.

const SEGMENT_BYTES = 65536;
const quiet = { info: () => undefined, warn: () => undefined };

interface Closable {
  close(): Promise<void>;
}

class Fixture {
  log!: CommitLog;
  broker!: Broker;
  private readonly clients: Closable[] = [];
  constructor(readonly dir: string, private readonly flush: 'async' | 'sync') {}

  get address(): string {
    return `127.0.0.1:${this.broker.port}`;
  }

  async start(port = 0): Promise<void> {
    this.log = await CommitLog.open({ dir: this.dir, flush: this.flush, topicDefaults: { segmentBytes: SEGMENT_BYTES }, logger: quiet });
    this.broker = await startBroker({ log: this.log, port, logger: quiet });
  }

  async stop(): Promise<void> {
    await this.broker.close();
    await this.log.close();
  }

  producer(options: Omit<ProducerOptions, 'broker'> = {}): Producer {
    return this.track(new Producer({ broker: this.address, ...options }));
  }

  consumer(options: Omit<ConsumerOptions, 'broker'>): Consumer {
    return this.track(new Consumer({ broker: this.address, ...options }));
  }

  admin(): Admin {
    return this.track(new Admin({ broker: this.address }));
  }

  track<T extends Closable>(client: T): T {
    this.clients.push(client);
    return client;
  }

  async teardown(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => undefined);
    await this.broker?.close().catch(() => undefined);
    await this.log?.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function setup(t: ExecutionContext, flush: 'async' | 'sync' = 'async'): Promise<Fixture> {
  const f = new Fixture(mkdtempSync(path.join(tmpdir(), 'commitlog-clients-')), flush);
  t.teardown(() => f.teardown());
  await f.start();
  return f;
}

/** Takes exactly n records from the consumer (leaving it open). */
async function take(consumer: Consumer, n: number): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  if (n === 0) return out;
  for await (const r of consumer) {
    out.push(r);
    if (out.length === n) break;
  }
  return out;
}

const text = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'));

function isCode(code: string): (err: unknown) => boolean {
  return (err) => err instanceof CommitLogError && err.code === code;
}

// ---- produce and consume ----------------------------------------------------------------

test('records produced to 3 partitions across segment rolls come back exactly, in offset order per partition', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('orders', { partitions: 3 });
  const producer = f.producer({ lingerMs: 1, batchBytes: 8 * 1024 });
  const value = (i: number): string => `value-${i}-${'x'.repeat(200 + (i % 50))}`;
  const sent = await Promise.all(
    Array.from({ length: 1500 }, (_, i) =>
      producer.send('orders', { key: `key-${i % 40}`, value: value(i), headers: { n: String(i), kind: i % 2 === 0 ? 'even' : 'odd' } }),
    ),
  );
  // Offsets per partition are dense and in send order.
  const perPartition = new Map<number, number[]>();
  sent.forEach((m, i) => {
    if (!perPartition.has(m.partition)) perPartition.set(m.partition, []);
    perPartition.get(m.partition)!.push(i);
  });
  t.is(perPartition.size, 3);
  for (const [p, indexes] of perPartition) {
    t.deepEqual(indexes.map((i) => sent[i]!.offset), indexes.map((_, k) => k), `partition ${p}`);
  }
  const description = f.log.describeTopic('orders');
  t.true(description.partitions.every((p) => p.segments > 1), 'every partition rolled');

  const consumer = f.consumer({ topic: 'orders', maxBytes: 16 * 1024 });
  const got = await take(consumer, 1500);
  const seen = new Map<number, number>();
  for (const r of got) {
    const expectedOffset = seen.get(r.partition) ?? 0;
    t.is(r.offset, expectedOffset);
    seen.set(r.partition, expectedOffset + 1);
    const i = perPartition.get(r.partition)![r.offset]!;
    t.is(r.topic, 'orders');
    t.is(text(r.key), `key-${i % 40}`);
    t.is(text(r.value), value(i));
    t.deepEqual(r.headers.map((h) => [h.key, text(h.value)]), [['n', String(i)], ['kind', i % 2 === 0 ? 'even' : 'odd']]);
    t.true(typeof r.timestamp === 'number' && r.timestamp > 0);
  }
  for (const [p, indexes] of perPartition) t.is(seen.get(p), indexes.length);
});

test('send of a list resolves per record in order; explicit partitions and null keys and values round-trip', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 2 });
  const producer = f.producer();
  const metas = await producer.send('t', [{ value: 'a' }, { key: null, value: null }, { key: Buffer.from([0, 1, 2]), value: Buffer.alloc(0), timestamp: 1234 }], { partition: 1 });
  t.deepEqual(metas, [{ partition: 1, offset: 0 }, { partition: 1, offset: 1 }, { partition: 1, offset: 2 }]);
  t.deepEqual(await producer.send('t', []), []);
  const got = await take(f.consumer({ topic: 't', partitions: [1] }), 3);
  t.deepEqual(got.map((r) => [r.partition, r.offset, r.key === null ? null : [...r.key], text(r.value)]), [
    [1, 0, null, 'a'],
    [1, 1, null, null],
    [1, 2, [0, 1, 2], ''],
  ]);
  t.is(got[2]!.timestamp, 1234);
});

test('the same key always lands on the same partition: xxh3Low32(key) % partitions', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('keys', { partitions: 3 });
  const producer = f.producer({ lingerMs: 0 });
  const keys = Array.from({ length: 30 }, (_, i) => `customer-${i}`);
  const first = await Promise.all(keys.map((key) => producer.send('keys', { key, value: 'v1' })));
  const second = await producer.send('keys', keys.map((key) => ({ key: Buffer.from(key), value: 'v2' })));
  keys.forEach((key, i) => {
    t.is(first[i]!.partition, xxh3Low32(key) % 3, key);
    t.is(second[i]!.partition, first[i]!.partition, key);
  });
  t.true(new Set(first.map((m) => m.partition)).size > 1, 'keys spread over partitions');
});

test("partitioner 'round-robin' and a custom function choose the partition", async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('rr', { partitions: 3 });
  const rr = f.producer({ partitioner: 'round-robin' });
  const metas = await rr.send('rr', Array.from({ length: 6 }, () => ({ key: 'same', value: 'x' })));
  t.deepEqual(metas.map((m) => m.partition), [0, 1, 2, 0, 1, 2]);
  const custom = f.producer({ partitioner: (record, partitions) => Number(record.value) % partitions });
  t.deepEqual((await custom.send('rr', [{ value: '5' }, { value: '7' }])).map((m) => m.partition), [2, 1]);
  const bad = f.producer({ partitioner: () => 9 });
  await t.throwsAsync(bad.send('rr', { value: 'x' }), { code: ErrorCode.INVALID_ARGUMENT });
});

test("acks 'none' resolves with offset -1 once written; 'flushed' with the offset", async (t) => {
  const f = await setup(t, 'sync');
  await f.admin().createTopic('t', { partitions: 1 });
  const none = f.producer({ acks: 'none', lingerMs: 0 });
  t.deepEqual(await none.send('t', [{ value: 'a' }, { value: 'b' }]), [{ partition: 0, offset: -1 }, { partition: 0, offset: -1 }]);
  await none.close();
  const flushed = f.producer({ acks: 'flushed' });
  t.deepEqual(await flushed.send('t', { value: 'c' }), { partition: 0, offset: 2 });
  t.deepEqual((await take(f.consumer({ topic: 't' }), 3)).map((r) => text(r.value)), ['a', 'b', 'c']);
});

test('flush() sends what lingers and waits for it; close() flushes and later sends reject', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 1 });
  const producer = f.producer({ lingerMs: 60_000 });
  const pending = producer.send('t', { value: 'late' });
  await producer.flush();
  t.deepEqual(await pending, { partition: 0, offset: 0 });
  const last = producer.send('t', { value: 'at close' });
  await producer.close();
  t.deepEqual(await last, { partition: 0, offset: 1 });
  await t.throwsAsync(producer.send('t', { value: 'x' }), { code: ErrorCode.LOG_CLOSED });
});

test('batches split at batchBytes and many concurrent sends keep their per-partition order', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 1 });
  const producer = f.producer({ batchBytes: 1000, maxInFlight: 2, lingerMs: 2 });
  const metas = await Promise.all(Array.from({ length: 500 }, (_, i) => producer.send('t', { value: `${i}`.padStart(50, '0') })));
  t.deepEqual(metas.map((m) => m.offset), Array.from({ length: 500 }, (_, i) => i));
  const records = await take(f.consumer({ topic: 't' }), 500);
  t.deepEqual(records.map((r) => Number(text(r.value))), Array.from({ length: 500 }, (_, i) => i));
});

test('a batch the estimate undersized is split to fit a frame; a record too large for one rejects alone', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 1 });
  // Strings are estimated at a byte per character; '€' takes three in UTF-8.
  const producer = f.producer({ maxFrameBytes: 64 * 1024, batchBytes: 60 * 1024, lingerMs: 50 });
  const value = (i: number): string => `${i}:${'€'.repeat(1000)}`;
  const tooLarge = producer.send('t', { value: 'x'.repeat(70 * 1024) });
  const metas = await Promise.all(Array.from({ length: 120 }, (_, i) => producer.send('t', { value: value(i) })));
  await t.throwsAsync(tooLarge, { code: ErrorCode.RECORD_TOO_LARGE });
  t.deepEqual(metas.map((m) => m.offset), Array.from({ length: 120 }, (_, i) => i));
  const got = await take(f.consumer({ topic: 't' }), 120);
  t.deepEqual(got.map((r) => text(r.value)), Array.from({ length: 120 }, (_, i) => value(i)));
});

// ---- where a consumer starts ---------------------------------------------------------------

async function producedTopic(f: Fixture, count: number, timestamp?: (i: number) => number): Promise<void> {
  await f.admin().createTopic('t', { partitions: 1 });
  const producer = f.producer();
  await producer.send('t', Array.from({ length: count }, (_, i) => ({ value: `r${i}`, timestamp: timestamp?.(i) })));
  await producer.close();
}

test("consumer from 'earliest' starts at the log start offset", async (t) => {
  const f = await setup(t);
  await producedTopic(f, 5);
  t.deepEqual((await take(f.consumer({ topic: 't', from: 'earliest' }), 5)).map((r) => r.offset), [0, 1, 2, 3, 4]);
});

test("consumer from 'latest' sees only records produced after connect()", async (t) => {
  const f = await setup(t);
  await producedTopic(f, 5);
  const consumer = f.consumer({ topic: 't', from: 'latest', maxWaitMs: 100 });
  await consumer.connect();
  t.is(consumer.position(0), 5);
  await f.producer().send('t', { value: 'new' });
  const [r] = await take(consumer, 1);
  t.is(r!.offset, 5);
  t.is(text(r!.value), 'new');
});

test('consumer from an offset skips the records before it inside the first batch', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 10); // one batch of 10
  const got = await take(f.consumer({ topic: 't', from: 7 }), 3);
  t.deepEqual(got.map((r) => [r.offset, text(r.value)]), [[7, 'r7'], [8, 'r8'], [9, 'r9']]);
});

test('consumer from a Date starts at the first record at or after it, or at the end when none is', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 10, (i) => 1_000_000 + i * 1000);
  const got = await take(f.consumer({ topic: 't', from: new Date(1_004_500) }), 5);
  t.deepEqual(got.map((r) => r.offset), [5, 6, 7, 8, 9]);
  t.is(got[0]!.timestamp, 1_005_000);
  const future = f.consumer({ topic: 't', from: new Date(2_000_000_000_000) });
  await future.connect();
  t.is(future.position(0), 10);
});

test('a long poll at the end wakes on a produce', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 1 });
  const consumer = f.consumer({ topic: 't', maxWaitMs: 10_000 });
  await consumer.connect();
  const next = take(consumer, 1);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the fetch is now parked in the broker
  const started = performance.now();
  await f.producer({ lingerMs: 0 }).send('t', { value: 'wake up' });
  const [r] = await next;
  t.is(text(r!.value), 'wake up');
  t.true(performance.now() - started < 2000, 'answered long before maxWaitMs');
});

test('seek() moves a partition: buffered records are dropped and the next one is at the new offset', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 20);
  const consumer = f.consumer({ topic: 't' });
  t.deepEqual((await take(consumer, 3)).map((r) => r.offset), [0, 1, 2]);
  consumer.seek(0, 15);
  t.deepEqual((await take(consumer, 2)).map((r) => r.offset), [15, 16]);
  consumer.seek(0, 1);
  t.deepEqual((await take(consumer, 2)).map((r) => r.offset), [1, 2]);
  t.is(consumer.position(0), 3);
  t.throws(() => consumer.seek(5, 0), { code: ErrorCode.INVALID_ARGUMENT });
});

// ---- groups and commits --------------------------------------------------------------------

test('a group resumes at its committed offset after a broker restart on the same directory', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 30);
  const first = f.consumer({ topic: 't', group: 'billing' });
  const got = await take(first, 10);
  t.deepEqual(got.map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  await first.commit();
  await first.close();

  await f.stop();
  await f.start();
  const second = f.consumer({ topic: 't', group: 'billing', from: 'latest' });
  await second.connect();
  t.is(second.position(0), 10, 'committed offset beats from');
  t.deepEqual((await take(second, 3)).map((r) => r.offset), [10, 11, 12]);
  // Another group has no committed offset: it starts at `from`.
  const other = f.consumer({ topic: 't', group: 'audit', from: 'earliest' });
  await other.connect();
  t.is(other.position(0), 0);
});

test('auto-commit commits what the loop is done with, and close() commits the rest', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 10);
  const consumer = f.consumer({ topic: 't', group: 'g', autoCommitIntervalMs: 20 });
  for await (const r of consumer) {
    if (r.offset === 3) {
      // Offset 3 is in the user's hands: auto-commit reaches 3 (0..2 are done) but
      // must not include it. Commits wait for an fsync each, so give them time.
      const admin = f.admin();
      const committed = async (): Promise<number | null> => (await admin.describeGroup('g', 't')).partitions[0]!.committedOffset;
      const deadline = performance.now() + 10_000;
      while ((await committed()) !== 3 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      t.is(await committed(), 3);
      await new Promise((resolve) => setTimeout(resolve, 100));
      t.is(await committed(), 3);
    }
    if (r.offset === 5) break;
  }
  await consumer.close();
  const after = await f.admin().describeGroup('g', 't');
  t.is(after.partitions[0]!.committedOffset, 6);
});

test('Admin.describeGroup reports committed offsets and the exact lag per partition', async (t) => {
  const f = await setup(t);
  const admin = f.admin();
  await admin.createTopic('t', { partitions: 3 });
  const producer = f.producer();
  for (const [partition, count] of [[0, 7], [1, 3], [2, 0]] as const) {
    if (count > 0) await producer.send('t', Array.from({ length: count }, () => ({ value: 'x' })), { partition });
  }
  const before = await admin.describeGroup('g', 't');
  t.deepEqual(before.partitions.map((p) => [p.partition, p.committedOffset, p.nextOffset, p.lag]), [[0, null, 7, 7], [1, null, 3, 3], [2, null, 0, 0]]);
  const consumer = f.consumer({ topic: 't', group: 'g', partitions: [0, 1] });
  const got = await take(consumer, 10);
  t.is(got.length, 10);
  consumer.seek(0, 4);
  await consumer.commit();
  const after = await admin.describeGroup('g', 't');
  t.deepEqual(after.partitions.map((p) => [p.partition, p.committedOffset, p.logStartOffset, p.nextOffset, p.lag]), [
    [0, 4, 0, 7, 3],
    [1, 3, 0, 3, 0],
    [2, null, 0, 0, 0],
  ]);
  t.is(after.lag, 3);
});

test('commit() without a group is an invalid argument', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 1);
  await t.throwsAsync(f.consumer({ topic: 't' }).commit(), { code: ErrorCode.INVALID_ARGUMENT });
});

// ---- admin ------------------------------------------------------------------------------

test('Admin creates, lists, describes and deletes topics and looks up offsets', async (t) => {
  const f = await setup(t);
  const admin = f.admin();
  await admin.createTopic('b', { partitions: 2, retentionMs: -1 });
  await admin.createTopic('a', { partitions: 1, segmentBytes: 128 * 1024 });
  t.deepEqual(await admin.listTopics(), ['a', 'b']);
  t.is(f.log.describeTopic('a').config.segmentBytes, 128 * 1024);
  t.is(f.log.describeTopic('b').config.retentionMs, -1);
  await t.throwsAsync(admin.createTopic('a', { partitions: 1 }), { code: ErrorCode.TOPIC_EXISTS });
  await t.throwsAsync(admin.createTopic('.bad', { partitions: 1 }), { code: ErrorCode.INVALID_TOPIC });

  const producer = f.producer();
  await producer.send('b', Array.from({ length: 4 }, (_, i) => ({ value: 'x', timestamp: 5000 + i })), { partition: 1 });
  t.deepEqual(await admin.describeTopic('b'), {
    name: 'b',
    partitions: [
      { partition: 0, logStartOffset: 0, nextOffset: 0, sizeBytes: 0, segments: 1 },
      { partition: 1, logStartOffset: 0, nextOffset: 4, sizeBytes: f.log.describeTopic('b').partitions[1].sizeBytes, segments: 1 },
    ],
  });
  t.true(f.log.describeTopic('b').partitions[1].sizeBytes > 61);
  t.is(await admin.listOffsets('b', 1, 'earliest'), 0);
  t.is(await admin.listOffsets('b', 1, 'latest'), 4);
  t.is(await admin.listOffsets('b', 1, 5002), 2);
  t.is(await admin.listOffsets('b', 1, new Date(5002)), 2);
  t.is(await admin.listOffsets('b', 1, 9999), null);
  await t.throwsAsync(admin.listOffsets('b', 7, 'latest'), { code: ErrorCode.UNKNOWN_PARTITION });

  await admin.deleteTopic('b');
  t.deepEqual(await admin.listTopics(), ['a']);
  await t.throwsAsync(admin.describeTopic('b'), { code: ErrorCode.UNKNOWN_TOPIC });
  await t.throwsAsync(admin.deleteTopic('b'), { code: ErrorCode.UNKNOWN_TOPIC });
  await admin.close();
  await t.throwsAsync(admin.listTopics(), { code: ErrorCode.LOG_CLOSED });
});

// ---- errors -----------------------------------------------------------------------------

test('producing to an unknown topic rejects with ERR_UNKNOWN_TOPIC, with or without a partition', async (t) => {
  const f = await setup(t);
  const producer = f.producer();
  const [a, b, c] = await Promise.allSettled([
    producer.send('nope', { value: 'x' }),
    producer.send('nope', [{ value: 'y' }, { value: 'z' }]),
    producer.send('nope', { value: 'x' }, { partition: 0 }),
  ]);
  for (const result of [a, b, c]) {
    t.is(result!.status, 'rejected');
    t.true(isCode(ErrorCode.UNKNOWN_TOPIC)((result as PromiseRejectedResult).reason));
  }
  await f.admin().createTopic('t', { partitions: 1 });
  await t.throwsAsync(producer.send('t', { value: 'x' }, { partition: 3 }), { code: ErrorCode.UNKNOWN_PARTITION });
  // The producer keeps working after refused batches.
  t.deepEqual(await producer.send('t', { value: 'ok' }), { partition: 0, offset: 0 });
});

test('a malformed record rejects its send at once with ERR_INVALID_ARGUMENT', async (t) => {
  const f = await setup(t);
  const producer = f.producer();
  await t.throwsAsync(producer.send('t', { value: 42 as unknown as string }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(producer.send('t', [{ value: 'ok' }, { key: {} as unknown as string, value: 'x' }]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(producer.send('t', { value: 'x', timestamp: -5 }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(producer.send('', { value: 'x' }), { code: ErrorCode.INVALID_ARGUMENT });
  t.throws(() => new Producer({ broker: 'no-port' }), { code: ErrorCode.INVALID_ARGUMENT });
});

test("with autoOffsetReset 'none', a consumer of an out-of-range offset fails with ERR_OFFSET_OUT_OF_RANGE", async (t) => {
  const f = await setup(t);
  await producedTopic(f, 3);
  const consumer = f.consumer({ topic: 't', from: 50, autoOffsetReset: 'none' });
  const err = await t.throwsAsync(take(consumer, 1), { code: ErrorCode.OFFSET_OUT_OF_RANGE });
  t.is((err as CommitLogError).partition, 0);
  // Its only partition failed: every next() says so.
  await t.throwsAsync(consumer[Symbol.asyncIterator]().next(), { code: ErrorCode.OFFSET_OUT_OF_RANGE });
});

test('a consumer of an unknown topic or partition fails on connect', async (t) => {
  const f = await setup(t);
  await t.throwsAsync(f.consumer({ topic: 'nope' }).connect(), { code: ErrorCode.UNKNOWN_TOPIC });
  await producedTopic(f, 1);
  await t.throwsAsync(f.consumer({ topic: 't', partitions: [4] }).connect(), { code: ErrorCode.UNKNOWN_PARTITION });
  await t.throwsAsync(take(f.consumer({ topic: 'nope' }), 1), { code: ErrorCode.UNKNOWN_TOPIC });
});

test('the producer retries through a broker restart on the same port', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 1 });
  const producer = f.producer({ lingerMs: 0, retries: 20, retryBackoffMs: 20 });
  t.deepEqual(await producer.send('t', { value: 'before' }), { partition: 0, offset: 0 });
  const port = f.broker.port;
  await f.stop();
  const during = producer.send('t', { value: 'during' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await f.start(port);
  t.deepEqual(await during, { partition: 0, offset: 1 });
  t.deepEqual(await producer.send('t', { value: 'after' }), { partition: 0, offset: 2 });
});

test('the consumer reconnects through a broker restart and continues where it was', async (t) => {
  const f = await setup(t);
  await producedTopic(f, 3);
  const consumer = f.consumer({ topic: 't', maxWaitMs: 50, retries: 20, retryBackoffMs: 20 });
  t.deepEqual((await take(consumer, 3)).map((r) => r.offset), [0, 1, 2]);
  const port = f.broker.port;
  await f.stop();
  await f.start(port);
  await f.producer().send('t', { value: 'after restart' });
  const [r] = await take(consumer, 1);
  t.is(r!.offset, 3);
});

test('with the broker gone for good, sends reject with a typed connection error once retries are spent', async (t) => {
  const f = await setup(t);
  await f.admin().createTopic('t', { partitions: 1 });
  const producer = f.producer({ lingerMs: 0, retries: 2, retryBackoffMs: 5 });
  await producer.send('t', { value: 'x' });
  await f.stop();
  const err = await t.throwsAsync(producer.send('t', { value: 'y' }), { code: ErrorCode.IO });
  t.true(isConnectionError(err));
  t.true(isRetriable(err));
  t.is((err as CommitLogError).errno, 'ECONNREFUSED');
  const refused = new Admin({ broker: f.address, retries: 0 });
  await t.throwsAsync(refused.listTopics(), { code: ErrorCode.IO });
  await refused.close();
});

// ---- the connection, against scripted brokers ---------------------------------------------

/** A TCP server that hands each decoded request to `onRequest`, which may answer with `reply`. */
async function scriptedBroker(
  t: ExecutionContext,
  onRequest: (request: ReturnType<typeof decodeRequest>, reply: (correlationId: number, errorCode?: string) => void, socket: net.Socket) => void,
): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const decoder = new FrameDecoder();
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      decoder.push(chunk);
      for (const frame of decoder) {
        onRequest(decodeRequest(frame.header), (correlationId, errorCode = '') => {
          const header = encodeResponse({ correlationId, errorCode, errorMessage: errorCode === '' ? '' : `scripted ${errorCode}`, body: { case: 'metadata', value: { topics: [] } } });
          socket.write(encodeFrame(header, 0));
        }, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

const metadataRequest = { case: 'metadata' as const, value: { topics: [] } };

test('Connection pipelines requests and matches responses in order; error codes reject only their request', async (t) => {
  const port = await scriptedBroker(t, (req, reply) => reply(req.correlationId, req.correlationId === 1 ? ErrorCode.UNKNOWN_TOPIC : ''));
  const conn = await Connection.connect({ host: '127.0.0.1', port });
  const results = await Promise.allSettled([conn.request(metadataRequest), conn.request(metadataRequest), conn.request(metadataRequest)]);
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  const err = (results[1] as PromiseRejectedResult).reason as CommitLogError;
  t.is(err.code, ErrorCode.UNKNOWN_TOPIC);
  t.is(err.message, 'scripted ERR_UNKNOWN_TOPIC');
  t.false(isRetriable(err));
  t.is((results[2] as PromiseFulfilledResult<{ header: { correlationId: number } }>).value.header.correlationId, 2);
  t.is(conn.inFlight, 0);
  await conn.close();
});

test('Connection fails loudly on a response out of order, rejecting everything pending', async (t) => {
  const port = await scriptedBroker(t, (req, reply) => reply(req.correlationId + 1));
  const conn = await Connection.connect({ host: '127.0.0.1', port });
  const results = await Promise.allSettled([conn.request(metadataRequest), conn.request(metadataRequest)]);
  for (const r of results) {
    t.is(r.status, 'rejected');
    t.is(((r as PromiseRejectedResult).reason as CommitLogError).code, ErrorCode.BAD_FRAME);
  }
  t.regex(((results[0] as PromiseRejectedResult).reason as Error).message, /correlation id 1, expected 0/);
  t.false(conn.isOpen);
  await t.throwsAsync(conn.request(metadataRequest), { code: ErrorCode.BAD_FRAME });
});

test('a request timeout rejects with ERR_IO ETIMEDOUT and closes the connection', async (t) => {
  const port = await scriptedBroker(t, () => undefined);
  const conn = await Connection.connect({ host: '127.0.0.1', port });
  const slow = conn.request(metadataRequest, undefined, 100);
  const other = conn.request(metadataRequest, undefined, 60_000);
  const err = await t.throwsAsync(slow, { code: ErrorCode.IO });
  t.is((err as CommitLogError).errno, 'ETIMEDOUT');
  const otherErr = await t.throwsAsync(other, { code: ErrorCode.IO });
  t.is((otherErr as CommitLogError).errno, 'ECONNABORTED');
  t.false(conn.isOpen);
});

test('a connection closed by the broker rejects every pending request with a connection error', async (t) => {
  const port = await scriptedBroker(t, (req, _reply, socket) => {
    if (req.correlationId === 1) socket.destroy();
  });
  const conn = await Connection.connect({ host: '127.0.0.1', port });
  const closed = new Promise<CommitLogError>((resolve) => conn.onClose(resolve));
  const results = await Promise.allSettled([conn.request(metadataRequest), conn.request(metadataRequest)]);
  for (const r of results) t.true(isConnectionError((r as PromiseRejectedResult).reason));
  t.is((await closed).code, ErrorCode.IO);
});

test('Connection honours backpressure: needsDrain while the broker does not read, drained() once it does', async (t) => {
  let peer: net.Socket | undefined;
  const server = net.createServer((socket) => {
    peer = socket;
    socket.pause(); // reads nothing until told to
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    peer?.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const conn = await Connection.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, writeHighWaterMarkBytes: 64 * 1024 });
  const payload = Buffer.alloc(1024 * 1024);
  const produce = { case: 'produce' as const, value: { topic: 't', partition: 0, acks: 'NONE' as const } };
  const sent: Promise<void>[] = [];
  // The kernel's buffers take a few MiB first; then Node queues past the high-water mark.
  for (let i = 0; i < 256 && !conn.needsDrain; i++) sent.push(conn.send(produce, payload));
  t.true(conn.needsDrain);
  const drained = conn.drained();
  peer!.on('data', () => undefined);
  peer!.resume();
  await drained;
  t.false(conn.needsDrain);
  await Promise.all(sent);
  await conn.close();
});

test('connecting to a closed port rejects with ERR_IO ECONNREFUSED; parseBroker accepts both forms', async (t) => {
  const unused = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const err = await t.throwsAsync(Connection.connect({ host: '127.0.0.1', port: unused }), { code: ErrorCode.IO });
  t.is((err as CommitLogError).errno, 'ECONNREFUSED');
  t.deepEqual(parseBroker('localhost:9092'), { host: 'localhost', port: 9092 });
  t.deepEqual(parseBroker('[::1]:7070'), { host: '::1', port: 7070 });
  t.deepEqual(parseBroker({ host: 'h', port: 1 }), { host: 'h', port: 1 });
  t.throws(() => parseBroker('h:0'), { code: ErrorCode.INVALID_ARGUMENT });
});
