// Capture client: kafkajs 2.2.4 (npm dev dependency). See capture.sh.
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const kafka = new Kafka({ clientId: 'capture-kafkajs', brokers: [`127.0.0.1:${process.env.PORT}`], logLevel: logLevel.NOTHING, retry: { retries: 1 } });
const what = process.argv[2];
if (what === 'producer') {
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  await p.send({ topic: 'test', messages: [{ key: 'k1', value: 'hello' }] });
  await p.disconnect();
} else if (what === 'consumer') {
  const c = kafka.consumer({ groupId: 'capture-group', sessionTimeout: 10000 });
  await c.connect();
  await c.subscribe({ topic: 'test', fromBeginning: true });
  await c.run({ eachMessage: async () => {} });
  await new Promise((r) => setTimeout(r, 5000));
  await c.disconnect();
} else if (what === 'admin') {
  const a = kafka.admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic: 't2', numPartitions: 2 }] });
  await a.createPartitions({ topicPartitions: [{ topic: 't2', count: 3 }] });
  await a.describeConfigs({ resources: [{ type: 2, name: 't2' }], includeSynonyms: false });
  await a.listGroups();
  await a.describeGroups(['g1']);
  await a.describeCluster();
  await a.deleteTopics({ topics: ['t2'] });
  await a.disconnect();
}
process.exit(0);
