/**
 * autoOffsetReset: what a Consumer does when a fetch answers ERR_OFFSET_OUT_OF_RANGE
 * (retention deleted the position, or a committed offset lies past the log end), and
 * how Admin.describeGroup shows a committed offset outside the log. A real broker in
 * this process; retention runs when the test calls enforceRetention().
 */
import test, { type ExecutionContext } from 'ava';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { OffsetsStore } from '../../src/index/offsets-store.js';
import { Admin } from '../../src/net/client/admin.js';
import type { ConsumerRecord } from '../../src/net/client/client-types.js';
import { Consumer, type ConsumerOptions, type OffsetReset } from '../../src/net/client/consumer.js';
import { Producer } from '../../src/net/client/producer.js';
import { startBroker } from '../../src/net/broker/server.js';
import { inProcessBroker, quiet, within, type InProcessBroker } from './client-helpers.js';

const TOPIC = 't';
const VALUE = 'v'.repeat(1000);

interface Fixture extends InProcessBroker {
  admin: Admin;
  producer: Producer;
  consumer(options: Partial<ConsumerOptions>): Consumer;
  /** Appends `count` records of about 1 KiB to `partition`; returns the last offset. */
  produce(partition: number, count: number): Promise<number>;
}

/**
 * Topic t of 2 partitions, 64 KiB segments and 64 KiB retention. Partition 0 gets 300
 * records (about 5 segments) and retention runs, so its early offsets are gone;
 * partition 1 holds 5 records from offset 0.
 */
async function setup(t: ExecutionContext): Promise<Fixture> {
  const b = await inProcessBroker(t);
  const admin = new Admin({ broker: b.address });
  const producer = new Producer({ broker: b.address, lingerMs: 0 });
  const consumers: Consumer[] = [];
  t.teardown(async () => {
    for (const c of consumers) await c.close().catch(() => undefined);
    await producer.close().catch(() => undefined);
    await admin.close().catch(() => undefined);
  });
  await admin.createTopic(TOPIC, { partitions: 2, segmentBytes: 65536, retentionBytes: 65536 });
  const f: Fixture = {
    ...b,
    admin,
    producer,
    consumer(options) {
      const c = new Consumer({ broker: b.address, topic: TOPIC, maxWaitMs: 50, logger: quiet, ...options });
      consumers.push(c);
      return c;
    },
    async produce(partition, count) {
      let last = -1;
      for (let i = 0; i < count; i += 20) {
        const metas = await producer.send(TOPIC, Array.from({ length: Math.min(20, count - i) }, () => ({ value: VALUE })), { partition });
        last = metas.at(-1)!.offset;
      }
      return last;
    },
  };
  await f.produce(0, 300);
  await f.produce(1, 5);
  await retainOnlyActive(b, TOPIC, 0);
  t.true(b.log.earliestOffset(TOPIC, 0) > 0, 'retention deleted the first segments of partition 0');
  t.is(b.log.earliestOffset(TOPIC, 1), 0);
  return f;
}

/**
 * Runs retention until only the active segment of the partition is left (segments
 * are sealed in the background after a roll, and only sealed ones are deleted).
 */
async function retainOnlyActive(f: InProcessBroker, topic: string, partition: number): Promise<void> {
  const segments = (): number => f.log.describeTopic(topic).partitions[partition]!.segments;
  await within((async () => {
    for (;;) {
      await f.log.enforceRetention();
      if (segments() === 1) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })(), 30_000, `retention on ${topic}/${partition}`);
}

/** The next `n` records, with a hang guard. */
async function take(consumer: Consumer, n: number): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const run = async (): Promise<void> => {
    for await (const r of consumer) {
      out.push(r);
      if (out.length === n) return;
    }
  };
  await within(run(), 30_000, `${n} records`);
  return out;
}

function resets(): { list: OffsetReset[]; onOffsetReset: (r: OffsetReset) => void } {
  const list: OffsetReset[] = [];
  return { list, onOffsetReset: (r) => list.push(r) };
}

test("autoOffsetReset 'earliest': a position retention deleted moves to the log start, and the reset is reported", async (t) => {
  const f = await setup(t);
  const start = f.log.earliestOffset(TOPIC, 0);
  const end = f.log.latestOffset(TOPIC, 0);
  const r = resets();
  const c = f.consumer({ partitions: [0], from: 0, autoOffsetReset: 'earliest', onOffsetReset: r.onOffsetReset });
  const [first] = await take(c, 1);
  t.is(first!.offset, start);
  t.deepEqual(r.list, [{ topic: TOPIC, partition: 0, offset: 0, resetTo: start, policy: 'earliest', logStartOffset: start, logEndOffset: end }]);
});

test("autoOffsetReset 'latest': the position moves to the log end and only records produced after it arrive", async (t) => {
  const f = await setup(t);
  const end = f.log.latestOffset(TOPIC, 0);
  let reported!: () => void;
  const reset = new Promise<void>((resolve) => (reported = resolve));
  const list: OffsetReset[] = [];
  const c = f.consumer({ partitions: [0], from: 0, autoOffsetReset: 'latest', onOffsetReset: (x) => { list.push(x); reported(); } });
  const next = take(c, 1);
  await within(reset, 30_000, 'the reset');
  t.is(c.position(0), end);
  const offset = await f.produce(0, 1);
  t.is((await next)[0]!.offset, offset);
  t.is(offset, end);
  t.is(list.length, 1);
  t.like(list[0], { partition: 0, offset: 0, resetTo: end, policy: 'latest' });
});

test("autoOffsetReset 'none' fails only that partition's stream with ERR_OFFSET_OUT_OF_RANGE; the other carries on", async (t) => {
  const f = await setup(t);
  const r = resets();
  const c = f.consumer({ from: 0, autoOffsetReset: 'none', onOffsetReset: r.onOffsetReset });
  const got: ConsumerRecord[] = [];
  let failure: unknown;
  const run = async (): Promise<void> => {
    for (;;) {
      try {
        for await (const rec of c) {
          got.push(rec);
          if (failure !== undefined && got.length >= 5) return;
        }
      } catch (err) {
        // A second failure means the consumer as a whole failed: stop, the checks say how.
        if (failure !== undefined || got.length >= 5) return;
        failure = err;
      }
    }
  };
  await within(run(), 30_000, 'the failure and partition 1');
  t.true(failure instanceof CommitLogError);
  const err = failure as CommitLogError;
  t.is(err.code, ErrorCode.OFFSET_OUT_OF_RANGE);
  t.is(err.topic, TOPIC);
  t.is(err.partition, 0);
  t.is(err.offset, 0);
  t.deepEqual(got.map((x) => [x.partition, x.offset]), [[1, 0], [1, 1], [1, 2], [1, 3], [1, 4]]);
  t.deepEqual(r.list, []);
  // Partition 1 goes on after partition 0 failed.
  const offset = await f.produce(1, 1);
  const [after] = await take(c, 1);
  t.deepEqual([after!.partition, after!.offset], [1, offset]);
});

test("the default is 'earliest', and a reset is logged even without onOffsetReset", async (t) => {
  const f = await setup(t);
  const start = f.log.earliestOffset(TOPIC, 0);
  const warnings: [object, string][] = [];
  const c = f.consumer({ partitions: [0], from: 0, logger: { info: () => undefined, warn: (fields, message) => warnings.push([fields, message]) } });
  const [first] = await take(c, 1);
  t.is(first!.offset, start);
  t.is(warnings.length, 1);
  t.regex(warnings[0]![1], /reset/);
  t.like(warnings[0]![0], { topic: TOPIC, partition: 0, offset: 0, resetTo: start, policy: 'earliest' });
});

test('retention overtaking a consumer: what it fetched still comes, then the position jumps to the log start, reported once', async (t) => {
  const f = await setup(t);
  await f.admin.createTopic('slow', { partitions: 1, segmentBytes: 65536, retentionBytes: 65536 });
  await f.producer.send('slow', Array.from({ length: 10 }, () => ({ value: VALUE })), { partition: 0 });
  const r = resets();
  const c = new Consumer({ broker: f.address, topic: 'slow', maxWaitMs: 50, maxBytes: 1024, logger: quiet, onOffsetReset: r.onOffsetReset });
  t.teardown(() => c.close());
  t.deepEqual((await take(c, 1)).map((x) => x.offset), [0]);
  for (let i = 0; i < 15; i++) await f.producer.send('slow', Array.from({ length: 20 }, () => ({ value: VALUE })), { partition: 0 });
  await retainOnlyActive(f, 'slow', 0);
  const start = f.log.earliestOffset('slow', 0);
  t.true(start > 10);
  const got: number[] = [];
  const run = async (): Promise<void> => {
    for await (const x of c) {
      got.push(x.offset);
      if (x.offset >= start + 4) return;
    }
  };
  await within(run(), 30_000, 'the records after the reset');
  // A contiguous run from 1 (what was fetched before retention), then the log start on.
  const jump = got.findIndex((o, i) => o !== i + 1);
  t.true(jump >= 0, `the position jumped: ${got.join(',')}`);
  t.deepEqual(got.slice(jump), Array.from({ length: got.length - jump }, (_, i) => start + i));
  t.is(r.list.length, 1);
  t.like(r.list[0], { topic: 'slow', partition: 0, offset: jump + 1, resetTo: start, policy: 'earliest', logStartOffset: start });
});

test('a committed offset past the log end: describeGroup flags it, and the group consumer resets with its policy', async (t) => {
  const f = await setup(t);
  const start0 = f.log.earliestOffset(TOPIC, 0);
  const end0 = f.log.latestOffset(TOPIC, 0);
  // As after a recovery that dropped records the group had consumed: its committed
  // offset of partition 1 (end 5) is 1000. The broker refuses such a commit, so it is
  // written into the offsets store while the broker is down.
  const port = f.broker.port;
  await f.broker.close();
  await new OffsetsStore(f.log.dir).commit('g', [
    { topic: TOPIC, partition: 0, offset: 0, metadata: '' },
    { topic: TOPIC, partition: 1, offset: 1000, metadata: '' },
  ]);
  const restarted = await startBroker({ log: f.log, port, logger: quiet });
  t.teardown(() => restarted.close());

  const g = await f.admin.describeGroup('g', TOPIC);
  t.deepEqual(g.partitions.map((p) => [p.partition, p.committedOffset, p.logStartOffset, p.nextOffset, p.committedPastEnd, p.committedBeforeStart, p.lag]), [
    [0, 0, start0, end0, false, true, end0],
    [1, 1000, 0, 5, true, false, 0],
  ]);

  const r = resets();
  const latest = f.consumer({ group: 'g', partitions: [1], autoOffsetReset: 'latest', onOffsetReset: r.onOffsetReset });
  await latest.connect();
  t.is(latest.position(1), 1000, 'it starts at the committed offset');
  const next = take(latest, 1);
  await within((async () => { while (r.list.length === 0) await new Promise((resolve) => setTimeout(resolve, 5)); })(), 30_000, 'the reset');
  const offset = await f.produce(1, 1);
  t.is((await next)[0]!.offset, offset);
  t.like(r.list[0], { partition: 1, offset: 1000, resetTo: 5, policy: 'latest', logStartOffset: 0, logEndOffset: 5 });

  const earliest = f.consumer({ group: 'g', partitions: [1], autoOffsetReset: 'earliest', logger: quiet });
  t.deepEqual((await take(earliest, 6)).map((x) => x.offset), [0, 1, 2, 3, 4, 5]);
});
