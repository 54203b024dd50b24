/**
 * Clients ride out a broker restart (issue 9.5): the real broker (a child process,
 * flush 'sync') is stopped for 10 s, by SIGKILL and by SIGTERM, while a Producer sends
 * 3,000 records (acks 'written') and a Consumer reads them. Once both are done:
 * - every send settled: acknowledged, or failed with a typed error (none is expected:
 *   the outage is far shorter than the default deliveryTimeoutMs);
 * - the consumer saw every offset of every partition exactly once, in order (it never
 *   redelivered what it had delivered, never skipped);
 * - every acknowledged record is at its acknowledged offset, and acknowledged offsets
 *   grow in send order per partition (retries did not reorder);
 * - anything else in the log is a resend of an acknowledged record (a batch written
 *   just before a SIGKILL whose answer was lost; at least once), never after SIGTERM.
 * And a consumer with no broker at all keeps trying for reconnectTimeoutMs.
 */
import test, { type ExecutionContext } from 'ava';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { Admin } from '../../src/net/client/admin.js';
import type { ConsumerRecord, RecordMetadata } from '../../src/net/client/client-types.js';
import { Consumer } from '../../src/net/client/consumer.js';
import { Producer } from '../../src/net/client/producer.js';
import { tmpDir } from '../helpers/tmp.js';
import { BrokerChild, freePort, quiet, sleep, within } from './client-helpers.js';

const TOPIC = 'restart';
const PARTITIONS = 3;
const RECORDS = 3000;
const OUTAGE_MS = 10_000;

async function rideOut(t: ExecutionContext, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const broker = new BrokerChild(t, tmpDir(t, 'commitlog-restart-'), await freePort());
  await broker.start();
  const admin = new Admin({ broker: broker.address });
  await admin.createTopic(TOPIC, { partitions: PARTITIONS });
  await admin.close();

  const producer = new Producer({ broker: broker.address, acks: 'written', lingerMs: 2, batchBytes: 4096, clientId: 'restart-producer' });
  const consumer = new Consumer({ broker: broker.address, topic: TOPIC, from: 'earliest', maxWaitMs: 100, maxBytes: 8192, logger: quiet, clientId: 'restart-consumer' });
  t.teardown(async () => {
    await producer.close().catch(() => undefined);
    await consumer.close().catch(() => undefined);
  });

  const consumed: ConsumerRecord[][] = Array.from({ length: PARTITIONS }, () => []);
  let consumerError: unknown;
  const consuming = (async () => {
    try {
      for await (const r of consumer) consumed[r.partition]!.push({ ...r, value: Buffer.from(r.value!) });
    } catch (err) {
      consumerError = err;
    }
  })();

  const acked: (RecordMetadata | undefined)[] = new Array(RECORDS);
  const failed: unknown[] = [];
  const sends: Promise<void>[] = [];
  const send = (i: number): void => {
    sends.push(producer.send(TOPIC, { value: String(i) }, { partition: i % PARTITIONS }).then(
      (meta) => void (acked[i] = meta),
      (err: unknown) => void failed.push(err),
    ));
  };

  // A third before the outage (the stop lands while sends are in flight), a third
  // during it, a third after the broker is back.
  let outage: Promise<void> | undefined;
  for (let i = 0; i < RECORDS; i++) {
    if (i === 800) {
      outage = (async () => {
        await broker.stop(signal);
        await sleep(OUTAGE_MS);
        await broker.start();
      })();
    }
    if (i === 2000) await outage;
    send(i);
    if (i % 20 === 19) await sleep(i >= 1000 && i < 2000 ? 80 : 5);
  }
  await within(Promise.all(sends), 180_000, 'every send to settle');
  t.log(`${signal}: ${acked.filter(Boolean).length} acknowledged, ${failed.length} failed`);

  // Read up to the log end of every partition, then stop the consumer.
  const check = new Admin({ broker: broker.address });
  const ends = (await check.describeTopic(TOPIC)).partitions.map((p) => p.nextOffset);
  await check.close();
  await within((async () => {
    while (consumerError === undefined && consumed.some((list, p) => list.length < ends[p]!)) await sleep(20);
  })(), 60_000, 'the consumer to reach the log end');
  await consumer.close();
  await consuming;
  t.is(consumerError, undefined, `the consumer failed: ${String(consumerError)}`);

  // Every send settled; a failure would be typed (and none is expected).
  for (const err of failed) t.true(err instanceof CommitLogError, String(err));
  t.deepEqual(failed.map((e) => (e as CommitLogError).code), []);

  let duplicates = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    const list = consumed[p]!;
    // Each offset exactly once, in order.
    t.deepEqual(list.map((r) => r.offset), Array.from({ length: ends[p]! }, (_, k) => k), `partition ${p} offsets`);
    const ackedHere = new Map<number, number>();
    let lastOffset = -1;
    for (let i = p; i < RECORDS; i += PARTITIONS) {
      const meta = acked[i];
      if (meta === undefined) continue;
      t.is(meta.partition, p);
      t.true(meta.offset > lastOffset, `record ${i} at offset ${meta.offset} after ${lastOffset}: reordered`);
      lastOffset = meta.offset;
      ackedHere.set(meta.offset, i);
      t.is(list[meta.offset]?.value?.toString(), String(i), `record ${i} at ${p}:${meta.offset}`);
    }
    for (const r of list) {
      if (ackedHere.has(r.offset)) continue;
      const i = Number(r.value!.toString());
      t.true(Number.isInteger(i) && i % PARTITIONS === p && acked[i] !== undefined, `${p}:${r.offset} holds ${r.value!.toString()}, not a resend of an acknowledged record`);
      duplicates++;
    }
  }
  t.log(`${signal}: ${duplicates} resent records in the log (at least once)`);
  if (signal === 'SIGTERM') t.is(duplicates, 0, 'a clean shutdown answers what it wrote');
  t.is(acked.filter(Boolean).length + failed.length, RECORDS);
}

test('producer and consumer ride out a broker SIGKILLed for 10 s: nothing lost, nothing consumed twice, order kept', (t) => rideOut(t, 'SIGKILL'));
test('producer and consumer ride out a broker stopped cleanly (SIGTERM) for 10 s: nothing lost, nothing consumed twice, order kept', (t) => rideOut(t, 'SIGTERM'));

test('with no broker, a consumer keeps trying to connect until reconnectTimeoutMs, then connect() rejects with the last connection error', async (t) => {
  const port = await freePort();
  const consumer = new Consumer({ broker: `127.0.0.1:${port}`, topic: 't', reconnectTimeoutMs: 1500, retryBackoffMs: 10, retryBackoffMaxMs: 50, logger: quiet });
  t.teardown(() => consumer.close());
  const started = Date.now();
  const err = await t.throwsAsync(within(consumer.connect(), 30_000, 'connect to fail'), { code: ErrorCode.IO });
  t.true(Date.now() - started >= 1500, 'not before reconnectTimeoutMs');
  t.is((err as CommitLogError).errno, 'ECONNREFUSED');
});
