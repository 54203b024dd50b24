/**
 * The Consumer checks what it fetches (checkCrcs, on by default): a damaged batch fails
 * only its partition's stream, with ERR_CORRUPT_BATCH naming topic, partition and
 * offset, at the place in the stream where it was; the other partitions carry on and
 * seek() resumes the failed one. The damaged batches come from a fake broker (the real
 * one checks its reads and would refuse to serve them).
 */
import test from 'ava';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { CRC_POS, encodeBatch, RECORD_COUNT_POS } from '../../src/log/batch.js';
import type { ConsumerRecord } from '../../src/net/client/client-types.js';
import { Consumer, type ConsumerOptions } from '../../src/net/client/consumer.js';
import { fakeBroker, quiet, within, type FakeBroker } from './client-helpers.js';

const TOPIC = 't';

/** A batch of `count` records at baseOffset whose values are 'p<partition>-<offset>'. */
function batch(partition: number, baseOffset: number, count: number): Buffer {
  return encodeBatch(Array.from({ length: count }, (_, i) => ({ value: `p${partition}-${baseOffset + i}` })), { baseOffset, timestamp: 1000 });
}

/** Flips one byte of the last record's value: the CRC32C no longer matches, the framing still decodes. */
function flipValueByte(b: Buffer): Buffer {
  const damaged = Buffer.from(b);
  damaged[damaged.length - 2] ^= 0x01;
  return damaged;
}

interface Seen {
  records: Map<number, ConsumerRecord[]>;
  errors: CommitLogError[];
}

/**
 * Iterates (again after each error, as an application would) until `done` says so;
 * every record and every error is kept.
 */
async function consume(consumer: Consumer, seen: Seen, done: () => boolean): Promise<void> {
  while (!done()) {
    try {
      for await (const r of consumer) {
        if (!seen.records.has(r.partition)) seen.records.set(r.partition, []);
        seen.records.get(r.partition)!.push(r);
        if (done()) return;
      }
      return;
    } catch (err) {
      if (!(err instanceof CommitLogError)) throw err;
      seen.errors.push(err);
      // A consumer that failed as a whole rejects every next(): stop, the checks say how.
      if (seen.errors.length > 10) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

function offsets(seen: Seen, partition: number): number[] {
  return (seen.records.get(partition) ?? []).map((r) => r.offset);
}

function consumer(broker: FakeBroker, options: Partial<ConsumerOptions> = {}): Consumer {
  return new Consumer({ broker: broker.address, topic: TOPIC, maxWaitMs: 50, maxBytes: 100, logger: quiet, ...options });
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('a batch whose CRC32C does not match fails only its partition, with ERR_CORRUPT_BATCH naming topic, partition and offset; the others carry on', async (t) => {
  const broker = await fakeBroker(t, TOPIC, 2);
  for (const base of [0, 5]) broker.append(0, batch(0, base, 5));
  broker.append(1, batch(1, 0, 5));
  broker.append(1, flipValueByte(batch(1, 5, 5)));
  broker.append(1, batch(1, 10, 5));
  const c = consumer(broker);
  t.teardown(() => c.close());
  const seen: Seen = { records: new Map(), errors: [] };

  await within(consume(c, seen, () => seen.errors.length === 1 && offsets(seen, 0).length === 10), 30_000, 'the error and partition 0');
  const [err] = seen.errors;
  t.is(err!.code, ErrorCode.CORRUPT_BATCH);
  t.is(err!.topic, TOPIC);
  t.is(err!.partition, 1);
  t.is(err!.offset, 5);
  t.regex(err!.message, /t\/1/);
  t.regex(err!.message, /offset 5/);
  t.regex(err!.message, /CRC/);
  // Every record before the damaged batch came, none of it or after it.
  t.deepEqual(offsets(seen, 1), range(0, 5));

  // Partition 0 keeps being consumed after the failure.
  broker.append(0, batch(0, 10, 5));
  await within(consume(c, seen, () => offsets(seen, 0).length === 15), 30_000, 'partition 0 after the failure');
  t.deepEqual(offsets(seen, 0), range(0, 15));
  t.deepEqual(seen.records.get(0)!.map((r) => r.value!.toString()), range(0, 15).map((o) => `p0-${o}`));
  t.is(seen.errors.length, 1, 'the error is reported once');

  // seek() past the damaged batch resumes the partition.
  c.seek(1, 10);
  await within(consume(c, seen, () => offsets(seen, 1).length === 10), 30_000, 'partition 1 after seek');
  t.deepEqual(offsets(seen, 1), [...range(0, 5), ...range(10, 15)]);
});

test('checkCrcs: false delivers a batch whose CRC32C does not match as it is', async (t) => {
  const broker = await fakeBroker(t, TOPIC, 1);
  broker.append(0, batch(0, 0, 2));
  broker.append(0, flipValueByte(batch(0, 2, 2)));
  const c = consumer(broker, { checkCrcs: false });
  t.teardown(() => c.close());
  const seen: Seen = { records: new Map(), errors: [] };
  await within(consume(c, seen, () => offsets(seen, 0).length === 4), 30_000, 'four records');
  t.deepEqual(offsets(seen, 0), [0, 1, 2, 3]);
  t.deepEqual(seen.errors, []);
  t.not(seen.records.get(0)![3]!.value!.toString(), 'p0-3', 'the damaged byte reached the application');
});

test('a batch that does not decode fails its partition even with checkCrcs: false; the other partition carries on', async (t) => {
  const broker = await fakeBroker(t, TOPIC, 2);
  broker.append(0, batch(0, 0, 3));
  broker.append(1, batch(1, 0, 3));
  // A record count above the records there: decoding runs past the batch.
  const damaged = batch(1, 3, 3);
  damaged.writeInt32BE(4, RECORD_COUNT_POS);
  broker.append(1, damaged);
  const c = consumer(broker, { checkCrcs: false });
  t.teardown(() => c.close());
  const seen: Seen = { records: new Map(), errors: [] };
  await within(consume(c, seen, () => seen.errors.length === 1 && offsets(seen, 0).length === 3), 30_000, 'the error and partition 0');
  t.is(seen.errors[0]!.code, ErrorCode.CORRUPT_BATCH);
  t.is(seen.errors[0]!.partition, 1);
  t.is(seen.errors[0]!.offset, 3);
  t.deepEqual(offsets(seen, 1), [0, 1, 2]);
  broker.append(0, batch(0, 3, 3));
  await within(consume(c, seen, () => offsets(seen, 0).length === 6), 30_000, 'partition 0 after the failure');
  t.deepEqual(offsets(seen, 0), range(0, 6));
});

test('a batch whose base offset (outside the CRC) breaks the sequence fails its partition at the offset expected', async (t) => {
  const broker = await fakeBroker(t, TOPIC, 1);
  broker.append(0, batch(0, 0, 5));
  // Offsets 5..9 claimed as 7..11: the CRC, which does not cover the base offset, still matches.
  const shifted = batch(0, 5, 5);
  shifted.writeUInt32BE(0, 0);
  shifted.writeUInt32BE(7, 4);
  broker.append(0, shifted);
  const c = consumer(broker, { maxBytes: 1024 * 1024 });
  t.teardown(() => c.close());
  const seen: Seen = { records: new Map(), errors: [] };
  await within(consume(c, seen, () => seen.errors.length === 1), 30_000, 'the error');
  t.is(seen.errors[0]!.code, ErrorCode.CORRUPT_BATCH);
  t.is(seen.errors[0]!.offset, 5);
  t.regex(seen.errors[0]!.message, /base offset 7/);
  t.deepEqual(offsets(seen, 0), range(0, 5));
});

test('a consumer whose only partition failed rejects every next() with that error until seek()', async (t) => {
  const broker = await fakeBroker(t, TOPIC, 1);
  const damaged = batch(0, 0, 1);
  damaged.writeUInt32BE(damaged.readUInt32BE(CRC_POS) ^ 1, CRC_POS);
  broker.append(0, damaged);
  const c = consumer(broker);
  t.teardown(() => c.close());
  const iterator = c[Symbol.asyncIterator]();
  const first = await t.throwsAsync(within(iterator.next(), 30_000, 'the error'), { code: ErrorCode.CORRUPT_BATCH });
  const again = await t.throwsAsync(within(iterator.next(), 30_000, 'the error again'), { code: ErrorCode.CORRUPT_BATCH });
  t.is(again, first);
  broker.append(0, batch(0, 1, 1));
  c.seek(0, 1);
  const next = await within(iterator.next(), 30_000, 'the record after seek');
  t.is(next.value?.offset, 1);
});
