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
