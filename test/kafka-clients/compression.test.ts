/**
 * Compressed batches through the Kafka listener: each client produces with every codec
 * it supports here, and every client that supports that codec reads the records back
 * exactly (the broker stores and serves the batches as they came). What each supports:
 * librdkafka 2.0.2 (kcat, confluent-kafka) gzip, snappy, lz4, zstd; kafka-python 2.0.2
 * with Debian's python3-snappy, python3-lz4 and python3-zstandard the same four;
 * @platformatic/kafka gzip, snappy, lz4 (its zstd needs Node 22's zlib); kafkajs gzip
 * only (its other codecs are separate packages); one pair the clients themselves do not
 * share is left out (CLIENT_INCOMPATIBLE). commitlog's own Consumer (native protocol)
 * reads every one of them too.
 */
import test from 'ava';
import { KAFKA_CLIENTS, assertAvailable, comparable, consumeOwn, consumeWith, createTopic, limiter, produceWith, skipFor, startBroker, type KafkaClient, type SeenRecord, type SpecRecord } from './harness.js';

const CODECS: Record<KafkaClient, string[]> = {
  kcat: ['gzip', 'snappy', 'lz4', 'zstd'],
  confluent: ['gzip', 'snappy', 'lz4', 'zstd'],
  'kafka-python': ['gzip', 'snappy', 'lz4', 'zstd'],
  platformatic: ['gzip', 'snappy', 'lz4'],
  kafkajs: ['gzip'],
};
const COUNT = 12;

/**
 * Pairs that fail between the clients themselves, whatever the broker: kafka-python
 * writes snappy in the xerial framing (as the Java client does), which librdkafka and
 * kafka-python read but @platformatic/kafka's snappy decoder does not ("fetch failed").
 */
const CLIENT_INCOMPATIBLE = new Set(['kafka-python/snappy -> platformatic']);

function recordsFor(client: KafkaClient, codec: string): SpecRecord[] {
  return Array.from({ length: COUNT }, (_, i) => {
    const value = `${codec} from ${client} #${i} ${'compressible text '.repeat(20 + i)}ü`;
    if (client === 'kcat') return { key: `k${i}`, value, headers: [['codec', codec]], partition: 0 };
    return { key: i % 3 === 0 ? null : `k${i}`, value, headers: [['codec', codec], ['i', String(i)]], timestamp: Date.UTC(2024, 5, 1) + i, partition: 0 };
  });
}

const topicOf = (client: KafkaClient, codec: string): string => `comp-${client}-${codec}`;

(skipFor(KAFKA_CLIENTS) ? test.skip : test)('compressed batches produced by each client are read exactly by every client that has the codec', async (t) => {
  t.timeout(170_000);
  assertAvailable(KAFKA_CLIENTS);
  const b = await startBroker(t);
  const run = limiter(3);
  const pairs = KAFKA_CLIENTS.flatMap((client) => CODECS[client].map((codec) => ({ client, codec })));
  await Promise.all(pairs.map(({ client, codec }) => createTopic(b, topicOf(client, codec), 1)));
  await Promise.all(pairs.map(({ client, codec }) => run(() => produceWith(t, client, { bootstrap: b.kafka, topic: topicOf(client, codec), records: recordsFor(client, codec), compression: codec }))));
  const results = await Promise.all(
    KAFKA_CLIENTS.map(async (reader) => {
      const reads = pairs.filter((p) => CODECS[reader].includes(p.codec) && !CLIENT_INCOMPATIBLE.has(`${p.client}/${p.codec} -> ${reader}`)).map((p) => ({ topic: topicOf(p.client, p.codec), partition: 0, offset: 0, count: COUNT }));
      return { reader, reads, seen: await run(() => consumeWith(t, reader, { bootstrap: b.kafka, reads, timeout_ms: 60_000 })) };
    }),
  );
  results.push({
    reader: 'commitlog' as KafkaClient,
    reads: pairs.map((p) => ({ topic: topicOf(p.client, p.codec), partition: 0, offset: 0, count: COUNT })),
    seen: (await Promise.all(pairs.map((p) => consumeOwn(b, topicOf(p.client, p.codec), 0, 0, COUNT)))).flat(),
  });
  for (const { reader, reads, seen } of results) {
    for (const r of reads) {
      const { client, codec } = pairs.find((p) => topicOf(p.client, p.codec) === r.topic)!;
      const want = recordsFor(client, codec);
      const got: SeenRecord[] = seen.filter((s) => s.topic === r.topic).sort((x, y) => x.offset - y.offset);
      t.deepEqual(got.map(comparable), want.map((w, i) => ({ topic: r.topic, partition: 0, offset: i, key: w.key, value: w.value, headers: w.headers ?? [] })), `${client} ${codec} -> ${reader}`);
      if (client !== 'kcat') t.deepEqual(got.map((g) => g.timestamp), want.map((w) => w.timestamp), `${client} ${codec} -> ${reader}: timestamps`);
    }
  }
});
