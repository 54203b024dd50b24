import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import test from 'ava';
import { apiVersionsAnswer, encodeResponse, flattenFrame, type Message } from '../../../src/net/kafka/index.js';

// An independent decoder for our responses: kafkajs's own (it reads what a broker
// sends). Golden bytes cover requests; this covers the response side for every
// version kafkajs knows inside our windows.
const require = createRequire(import.meta.url);
const root = new URL('../../../node_modules/kafkajs/src/protocol/requests/', import.meta.url);

function kafkajsDecode(dir: string, v: number, body: Buffer): Promise<any> | null {
  const path = new URL(`${dir}/v${v}/response.js`, root);
  if (!existsSync(path)) return null;
  return require(path.pathname).decode(body);
}

const cases: { key: number; dir: string; body: Message; check: (d: any, t: any) => void }[] = [
  { key: 3, dir: 'metadata', body: { brokers: [{ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null }], clusterId: 'c1', controllerId: 1, topics: [{ errorCode: 0, name: 'test', partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1] }] }] },
    check: (d, t) => { t.like(d.brokers[0], { nodeId: 1, host: '127.0.0.1', port: 9092 }); t.is(d.topicMetadata[0].topic, 'test'); t.is(d.topicMetadata[0].partitionMetadata[0].leader, 1); } },
  { key: 0, dir: 'produce', body: { responses: [{ name: 'test', partitionResponses: [{ index: 0, errorCode: 0, baseOffset: 42 }] }] },
    check: (d, t) => { t.is(d.topics[0].topicName, 'test'); t.is(String(d.topics[0].partitions[0].baseOffset), '42'); } },
  { key: 1, dir: 'fetch', body: { responses: [{ topic: 'test', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 5, lastStableOffset: 5, logStartOffset: 0, abortedTransactions: [], records: Buffer.alloc(0) }] }] },
    check: (d, t) => { t.is(d.responses[0].topicName, 'test'); t.is(String(d.responses[0].partitions[0].highWatermark), '5'); } },
  { key: 2, dir: 'listOffsets', body: { topics: [{ name: 'test', partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: -1, offset: 7 }] }] },
    check: (d, t) => { t.is(String(d.responses[0].partitions[0].offset), '7'); } },
  { key: 10, dir: 'findCoordinator', body: { errorCode: 0, nodeId: 1, host: '127.0.0.1', port: 9092 },
    check: (d, t) => { t.like(d.coordinator, { nodeId: 1, host: '127.0.0.1', port: 9092 }); } },
  { key: 11, dir: 'joinGroup', body: { errorCode: 0, generationId: 3, protocolName: 'RoundRobinAssigner', leader: 'm1', memberId: 'm1', members: [{ memberId: 'm1', metadata: Buffer.from('0001', 'hex') }] },
    check: (d, t) => { t.like(d, { generationId: 3, groupProtocol: 'RoundRobinAssigner', leaderId: 'm1', memberId: 'm1' }); t.is(d.members[0].memberId, 'm1'); } },
  { key: 14, dir: 'syncGroup', body: { errorCode: 0, assignment: Buffer.from('abcd', 'hex') },
    check: (d, t) => { t.is(d.memberAssignment.toString('hex'), 'abcd'); } },
  { key: 12, dir: 'heartbeat', body: { errorCode: 0 }, check: (d, t) => { t.is(d.errorCode, 0); } },
  { key: 9, dir: 'offsetFetch', body: { topics: [{ name: 'test', partitions: [{ partitionIndex: 0, committedOffset: 11, metadata: '', errorCode: 0 }] }] },
    check: (d, t) => { t.is(d.responses[0].partitions[0].offset, '11'); } },
  { key: 8, dir: 'offsetCommit', body: { topics: [{ name: 'test', partitions: [{ partitionIndex: 0, errorCode: 0 }] }] },
    check: (d, t) => { t.is(d.responses[0].topic, 'test'); } },
  { key: 19, dir: 'createTopics', body: { topics: [{ name: 't2', errorCode: 0, errorMessage: null }] },
    check: (d, t) => { t.is(d.topicErrors[0].topic, 't2'); } },
  { key: 22, dir: 'initProducerId', body: { errorCode: 0, producerId: 1000, producerEpoch: 2 },
    check: (d, t) => { t.is(String(d.producerId), '1000'); t.is(d.producerEpoch, 2); } },
  { key: 16, dir: 'listGroups', body: { errorCode: 0, groups: [{ groupId: 'g1', protocolType: 'consumer' }] },
    check: (d, t) => { t.is(d.groups[0].groupId, 'g1'); } },
  { key: 37, dir: 'createPartitions', body: { results: [{ name: 't2', errorCode: 0, errorMessage: null }] },
    check: (d, t) => { t.is(d.topicErrors[0].topic, 't2'); } },
];

for (const c of cases) {
  for (let v = 0; v <= 12; v++) {
    let bytes: Buffer;
    try {
      bytes = flattenFrame(encodeResponse(c.key, v, 1, c.body));
    } catch {
      continue; // outside our window
    }
    if (!existsSync(new URL(`${c.dir}/v${v}/response.js`, root))) continue;
    test(`kafkajs decodes our ${c.dir} v${v} response`, async (t) => {
      c.check(await kafkajsDecode(c.dir, v, bytes.subarray(8)), t);
    });
  }
}

for (const v of [0, 1, 2]) {
  test(`kafkajs decodes our ApiVersions v${v} response`, async (t) => {
    const a = apiVersionsAnswer(v);
    const d = await kafkajsDecode('apiVersions', v, flattenFrame(encodeResponse(18, a.version, 1, a.body)).subarray(8));
    t.is(d.errorCode, 0);
    t.deepEqual(d.apiVersions.find((x: any) => x.apiKey === 1), { apiKey: 1, minVersion: 4, maxVersion: 12 });
  });
}
