/**
 * Idempotent producers across a broker kill: librdkafka (confluent-kafka,
 * enable.idempotence) and kafkajs (idempotent: true) send a numbered sequence while
 * the broker is SIGKILLed and restarted on the same ports and directory; the topic
 * then holds every number exactly once, in order: no duplicate (a batch written
 * before the kill and resent after it is recognised by its producer id and sequence)
 * and no gap.
 */
import test, { type ExecutionContext } from 'ava';
import { assertAvailable, consumeWith, latestOffset, createTopic, producerProc, skipFor, startBroker, type KafkaClient } from './harness.js';

const RECORDS = 300;

async function scenario(t: ExecutionContext, client: Extract<KafkaClient, 'confluent' | 'kafkajs'>): Promise<void> {
  t.timeout(170_000);
  assertAvailable([client, 'confluent']);
  const b = await startBroker(t);
  const topic = `idem-${client}`;
  await createTopic(b, topic, 1);
  const records = Array.from({ length: RECORDS }, (_, i) => ({ key: `k${i % 7}`, value: `seq-${i}`, partition: 0, pause_ms: 5 }));
  const producer = producerProc(t, client, { bootstrap: b.kafka, topic, records, idempotent: true });
  await producer.waitFor((lines) => lines.filter((l) => 'acked' in l).length >= 60, 60_000, '60 acknowledged records');
  await b.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  await b.restart('SIGKILL');
  const code = await producer.exited;
  t.is(code, 0, `${client} producer failed: ${producer.stderr().slice(-3000)}`);
  const seen = await consumeWith(t, 'confluent', { bootstrap: b.kafka, reads: [{ topic, partition: 0, offset: 0, count: RECORDS }], timeout_ms: 30_000 });
  t.deepEqual(seen.map((r) => r.value), records.map((r) => r.value), 'every record once, in order');
  t.deepEqual(seen.map((r) => r.offset), records.map((_, i) => i));
  t.is(await latestOffset(b, topic, 0), RECORDS, 'nothing beyond them: the log ends after the last one');
}

for (const client of ['confluent', 'kafkajs'] as const) {
  (skipFor([client, 'confluent']) ? test.skip : test)(`an idempotent ${client} producer across a broker kill: no duplicate, no gap`, (t) => scenario(t, client));
}
