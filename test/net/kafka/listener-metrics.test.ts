/**
 * The Kafka listener's metrics (BrokerMetrics.kafkaObserver): requests by API and
 * version, error codes by API, open connections.
 */
import test from 'ava';
import { BrokerMetrics } from '../../../src/ops/metrics.js';
import { RawKafka, kafkaSetup } from './listener-helpers.js';

test('requests by API and version, errors by code, connections', async (t) => {
  const metrics = new BrokerMetrics();
  const { kafka, log } = await kafkaSetup(t, { observer: metrics.kafkaObserver, autoCreateTopics: false });
  await log.createTopic('m');
  const raw = await RawKafka.connect(t, kafka.port);
  await raw.request(3, 9, { topics: [{ name: 'm' }, { name: 'missing' }], allowAutoTopicCreation: true });
  await raw.request(3, 9, { topics: null });
  await raw.request(3, 1, { topics: null });
  await raw.request(2, 5, { replicaId: -1, topics: [{ name: 'm', partitions: [{ partitionIndex: 0, timestamp: -1 }, { partitionIndex: 3, timestamp: -1 }] }] });
  const text = await metrics.metrics();
  t.regex(text, /^commitlog_kafka_requests_total\{api="Metadata",version="9"\} 2$/m);
  t.regex(text, /^commitlog_kafka_requests_total\{api="Metadata",version="1"\} 1$/m);
  t.regex(text, /^commitlog_kafka_requests_total\{api="ListOffsets",version="5"\} 1$/m);
  t.regex(text, /^commitlog_kafka_errors_total\{api="Metadata",code="3"\} 1$/m);
  t.regex(text, /^commitlog_kafka_errors_total\{api="ListOffsets",code="3"\} 1$/m);
  t.regex(text, /^commitlog_kafka_request_duration_seconds_count\{api="Metadata"\} 3$/m);
  t.regex(text, /^commitlog_kafka_connections 1$/m);
  raw.socket.destroy();
  await raw.closed;
  // The close is seen by the listener a moment later: wait for its stats, then the gauge agrees.
  while (kafka.stats().connections > 0) await new Promise((r) => setTimeout(r, 5));
  t.regex(await metrics.metrics(), /^commitlog_kafka_connections 0$/m);
});
