/**
 * Null values (tombstones) and null keys through the Kafka listener: each client that
 * can send a null value (kafka-python, confluent-kafka, kafkajs, @platformatic/kafka,
 * commitlog's Producer; kcat and the CLI cannot tell an empty value from none) sends
 * one, and every consumer (kcat -J, the Python and Node clients, commitlog's Consumer and
 * `commitlog consume --format json`) reports null, not an empty value.
 */
import test from 'ava';
import { KAFKA_CLIENTS, assertAvailable, comparable, consumeCli, consumeOwn, consumeWith, createTopic, produceOwn, produceWith, skipFor, startBroker, type KafkaClient, type SpecRecord } from './harness.js';

type Sender = Exclude<KafkaClient, 'kcat'> | 'commitlog';
const SENDERS: Sender[] = ['kafka-python', 'confluent', 'kafkajs', 'platformatic', 'commitlog'];
const RECORDS: SpecRecord[] = [
  { key: 'deleted', value: null, headers: [['why', 'tombstone']], timestamp: Date.UTC(2024, 1, 1), partition: 0 },
  { key: null, value: 'no key', headers: [], timestamp: Date.UTC(2024, 1, 1) + 1, partition: 0 },
  { key: '', value: '', headers: [['empty', '']], timestamp: Date.UTC(2024, 1, 1) + 2, partition: 0 },
];

(skipFor(KAFKA_CLIENTS) ? test.skip : test)('null values and null keys stay null, empty ones stay empty, across every client', async (t) => {
  t.timeout(170_000);
  assertAvailable(KAFKA_CLIENTS);
  const b = await startBroker(t);
  const topic = (s: Sender): string => `tomb-${s}`;
  for (const s of SENDERS) {
    await createTopic(b, topic(s), 1);
    if (s === 'commitlog') await produceOwn(b, topic(s), RECORDS);
    else await produceWith(t, s, { bootstrap: b.kafka, topic: topic(s), records: RECORDS });
  }
  const reads = SENDERS.map((s) => ({ topic: topic(s), partition: 0, offset: 0, count: RECORDS.length }));
  const readers = await Promise.all([
    ...KAFKA_CLIENTS.map(async (c) => ({ reader: c as string, seen: await consumeWith(t, c, { bootstrap: b.kafka, reads, timeout_ms: 60_000 }) })),
    (async () => ({ reader: 'commitlog', seen: (await Promise.all(reads.map((r) => consumeOwn(b, r.topic, 0, 0, r.count)))).flat() }))(),
    (async () => ({ reader: 'commitlog-cli', seen: (await Promise.all(reads.map((r) => consumeCli(b, r.topic, 0, 0, r.count)))).flat() }))(),
  ]);
  for (const { reader, seen } of readers) {
    for (const s of SENDERS) {
      const got = seen.filter((r) => r.topic === topic(s)).sort((x, y) => x.offset - y.offset);
      t.deepEqual(got.map(comparable), RECORDS.map((r, i) => ({ topic: topic(s), partition: 0, offset: i, key: r.key, value: r.value, headers: r.headers })), `${s} -> ${reader}`);
      t.deepEqual(got.map((r) => r.timestamp), RECORDS.map((r) => r.timestamp), `${s} -> ${reader}: timestamps`);
    }
  }
});
