/**
 * The Kafka listener with a real client (kafkajs): produce and consume exact keys,
 * values, headers and timestamps; the offsets a kafkajs group commits read back
 * through the native protocol's store and the reverse.
 */
import test from 'ava';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaSetup } from './listener-helpers.js';

function client(address: string): Kafka {
  return new Kafka({ clientId: 'listener-test', brokers: [address], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
}

test('kafkajs produces and consumes exact keys, values, headers and timestamps', async (t) => {
  const { address, log, broker } = await kafkaSetup(t);
  const kafka = client(address);
  const admin = kafka.admin();
  await admin.connect();
  t.true(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 2 }] }));
  await admin.disconnect();
  t.deepEqual(log.describeTopic('orders').partitions.length, 2);

  const producer = kafka.producer();
  await producer.connect();
  const sent = Array.from({ length: 20 }, (_, i) => ({
    key: `k${i}`,
    value: `value-${i}`,
    partition: i % 2,
    timestamp: String(1_700_000_000_000 + i),
    headers: { h: `hv${i}`, n: String(i) },
  }));
  const meta = await producer.send({ topic: 'orders', messages: sent, acks: -1 });
  t.deepEqual(meta.map((m) => m.errorCode), meta.map(() => 0));
  await producer.disconnect();
  t.is(log.latestOffset('orders', 0) + log.latestOffset('orders', 1), 20);

  const consumer = kafka.consumer({ groupId: 'g1', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: 'orders', fromBeginning: true });
  const got: { partition: number; offset: string; key: string; value: string; timestamp: string; headers: Record<string, string> }[] = [];
  await new Promise<void>((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        got.push({ partition, offset: message.offset, key: String(message.key), value: String(message.value), timestamp: message.timestamp, headers });
        if (got.length === sent.length) resolve();
      },
    }).catch(reject);
  });
  await consumer.commitOffsets([{ topic: 'orders', partition: 0, offset: '10' }, { topic: 'orders', partition: 1, offset: '10' }]);
  await consumer.disconnect();
  // The group's offsets, committed over Kafka, are in the broker's one offsets store.
  t.deepEqual(broker.offsets.fetch('g1', 'orders', [0, 1]).map((c) => c.offset), [10, 10]);
  got.sort((a, b) => Number(a.key.slice(1)) - Number(b.key.slice(1)));
  t.deepEqual(got, sent.map((s, i) => ({
    partition: s.partition, offset: String(Math.floor(i / 2)), key: s.key, value: s.value, timestamp: s.timestamp, headers: s.headers,
  })));
  // And commitlog's own reading of the same records.
  const native = log.read('orders', 1, 0);
  t.is(native[0].key!.toString(), 'k1');
  t.is(native[0].timestamp, 1_700_000_000_001);
});

test('a group moves between protocols: kafkajs commits, a commitlog Consumer of the group resumes there, and the reverse', async (t) => {
  const { address, log, broker } = await kafkaSetup(t);
  await log.createTopic('moves');
  await log.append('moves', 0, Array.from({ length: 10 }, (_, i) => ({ value: `r${i}` })));
  const kafka = client(address);

  // kafkajs reads r0..r3 and commits offset 4.
  const first = kafka.consumer({ groupId: 'movers', maxWaitTimeInMs: 100 });
  await first.connect();
  await first.subscribe({ topic: 'moves', fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    let n = 0;
    first.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (++n === 4) {
          await first.commitOffsets([{ topic: 'moves', partition: 0, offset: String(Number(message.offset) + 1) }]);
          resolve();
        }
      },
    }).catch(reject);
  });
  await first.disconnect();

  // commitlog's own Consumer of the same group (its partitions named: no membership) resumes at r4.
  const { Consumer } = await import('../../../src/net/client/consumer.js');
  const native = new Consumer({ broker: `127.0.0.1:${broker.port}`, topic: 'moves', partitions: [0], group: 'movers' });
  const it = native[Symbol.asyncIterator]();
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) seen.push(String((await it.next()).value.value));
  t.deepEqual(seen, ['r4', 'r5', 'r6']);
  await native.commit();
  await native.close();

  // kafkajs resumes where the commitlog Consumer committed.
  const second = kafka.consumer({ groupId: 'movers', maxWaitTimeInMs: 100 });
  await second.connect();
  await second.subscribe({ topic: 'moves', fromBeginning: true });
  const rest: string[] = [];
  await new Promise<void>((resolve, reject) => {
    second.run({
      eachMessage: async ({ message }) => {
        rest.push(String(message.value));
        if (rest.length === 3) resolve();
      },
    }).catch(reject);
  });
  await second.disconnect();
  t.deepEqual(rest, ['r7', 'r8', 'r9']);
});
