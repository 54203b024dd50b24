/**
 * The Kafka listener through raw frames built with the codec: pipelining and split
 * frames, acks 0, the fetch long poll, out-of-range fetches, ListOffsets, Metadata
 * auto-creation, topic admin, offsets shared with the native protocol, ApiVersions,
 * and the sendfile accounting.
 */
import test from 'ava';
import { decodeBatches, encodeBatch, readBatchHeader } from '../../../src/log/batch.js';
import { Connection } from '../../../src/net/client/connection.js';
import { KAFKA_HANDLERS } from '../../../src/net/kafka/handlers/index.js';
import { apiVersionsAnswer, type Message } from '../../../src/net/kafka/index.js';
import { RawKafka, kafkaSetup } from './listener-helpers.js';

const PRODUCE = 0;
const FETCH = 1;
const LIST_OFFSETS = 2;
const METADATA = 3;
const OFFSET_COMMIT = 8;
const OFFSET_FETCH = 9;
const FIND_COORDINATOR = 10;
const API_VERSIONS = 18;
const CREATE_TOPICS = 19;
const DELETE_TOPICS = 20;
const DESCRIBE_CONFIGS = 32;
const CREATE_PARTITIONS = 37;
const DESCRIBE_CLUSTER = 60;

const produceBody = (topic: string, partition: number, values: string[], acks = 1, timestamp = 1_700_000_000_000): Message => ({
  transactionalId: null, acks, timeoutMs: 5000,
  topicData: [{ name: topic, partitionData: [{ index: partition, records: encodeBatch(values.map((v, i) => ({ key: `k-${v}`, value: v, timestamp: timestamp + i }))) }] }],
});

const fetchBody = (topic: string, partition: number, fetchOffset: number, extra: Message = {}): Message => ({
  replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
  topics: [{ topic, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset, logStartOffset: -1, partitionMaxBytes: 1 << 20 }] }],
  forgottenTopicsData: [], rackId: '', ...extra,
});

type M = Message & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function partitionOf(fetched: Message): M {
  return ((fetched as M).responses[0].partitions[0]) as M;
}

function valuesOf(records: unknown): string[] {
  const buf = records as Buffer;
  return decodeBatches(buf, 0, buf.length, 0).map((r) => String(r.value));
}

test('pipelined requests in one write and a frame split byte by byte are answered in order', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('p', { partitions: 1 });
  const raw = await RawKafka.connect(t, kafka.port);
  const frames = [
    raw.frame(API_VERSIONS, 0, {}),
    raw.frame(PRODUCE, 7, produceBody('p', 0, ['a', 'b'])),
    raw.frame(METADATA, 1, { topics: [{ name: 'p' }] }),
    raw.frame(PRODUCE, 3, produceBody('p', 0, ['c'])),
    raw.frame(FETCH, 11, fetchBody('p', 0, 0)),
  ];
  raw.socket.write(Buffer.concat(frames.map((f) => f.bytes)));
  const [versions, p1, meta, p2, fetched] = (await Promise.all(frames.map((f) => f.response))) as M[];
  t.is(versions.errorCode, 0);
  t.is(p1.responses[0].partitionResponses[0].baseOffset, 0);
  t.is(p2.responses[0].partitionResponses[0].baseOffset, 2);
  t.deepEqual(meta.topics.map((x: M) => [x.name, x.errorCode, x.partitions.length]), [['p', 0, 1]]);
  t.deepEqual(valuesOf(partitionOf(fetched).records), ['a', 'b', 'c']);
  t.is(partitionOf(fetched).highWatermark, 3);

  // One frame dribbled a byte at a time.
  const split = raw.frame(LIST_OFFSETS, 1, { replicaId: -1, topics: [{ name: 'p', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] });
  for (const byte of split.bytes) {
    raw.socket.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  t.is(((await split.response) as M).topics[0].partitions[0].offset, 3);
});

test('acks 0 gets no response, yet is appended; the next request is answered with its own correlation id', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('silent');
  const raw = await RawKafka.connect(t, kafka.port);
  const zero = raw.frame(PRODUCE, 7, produceBody('silent', 0, ['x', 'y'], 0), false);
  const after = raw.frame(LIST_OFFSETS, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'silent', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1 }] }] });
  raw.socket.write(Buffer.concat([zero.bytes, after.bytes]));
  const listed = (await after.response) as M;
  t.is(listed.topics[0].partitions[0].offset, 2);
  t.deepEqual(log.read('silent', 0, 0).map((r) => String(r.value)), ['x', 'y']);
});

test('a fetch at the high watermark long-polls and is woken by an append; past it or below the start is OFFSET_OUT_OF_RANGE', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('poll');
  await log.append('poll', 0, [{ value: 'first' }]);
  const raw = await RawKafka.connect(t, kafka.port);
  const waiting = raw.request(FETCH, 12, fetchBody('poll', 0, 1, { maxWaitMs: 60_000, minBytes: 1 }));
  let answered = false;
  void waiting.then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 100));
  t.false(answered, 'no data yet: the fetch waits');
  await log.append('poll', 0, [{ value: 'second' }]);
  const woken = partitionOf(await waiting);
  t.is(woken.errorCode, 0);
  t.deepEqual(valuesOf(woken.records), ['second']);
  t.is(woken.highWatermark, 2);
  t.is(woken.lastStableOffset, 2);
  t.is(woken.logStartOffset, 0);
  t.is(woken.preferredReadReplica, -1);

  const past = partitionOf(await raw.request(FETCH, 11, fetchBody('poll', 0, 3)));
  t.is(past.errorCode, 1);
  t.is(past.highWatermark, 2);
  t.deepEqual(past.records, Buffer.alloc(0), 'empty records, never null');
  const below = partitionOf(await raw.request(FETCH, 4, fetchBody('poll', 0, -5)));
  t.is(below.errorCode, 1);
  const unknown = partitionOf(await raw.request(FETCH, 4, fetchBody('nope', 0, 0)));
  t.is(unknown.errorCode, 3);
  // At the high watermark with max_wait 0: at once, empty.
  const empty = partitionOf(await raw.request(FETCH, 7, fetchBody('poll', 0, 2)));
  t.is(empty.errorCode, 0);
  t.deepEqual(empty.records, Buffer.alloc(0));
});

test('fetch sends whole batches from the one holding the offset, at least one past max_bytes, cut at batch boundaries', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('cut');
  const big = 'v'.repeat(3000);
  for (let i = 0; i < 4; i++) await log.append('cut', 0, [{ value: `${i}a-${big}` }, { value: `${i}b-${big}` }]);
  const raw = await RawKafka.connect(t, kafka.port);
  // Offset 3 lies inside the second batch (offsets 2-3): it starts there.
  const from3 = partitionOf(await raw.request(FETCH, 11, fetchBody('cut', 0, 3)));
  const buf = from3.records as Buffer;
  t.is(readBatchHeader(buf, 0).baseOffset, 2);
  t.is(valuesOf(buf).length, 6);
  // max_bytes 1: still one whole batch.
  const tiny = partitionOf(await raw.request(FETCH, 11, fetchBody('cut', 0, 0, { maxBytes: 1 })));
  t.deepEqual(valuesOf(tiny.records).map((v) => v.slice(0, 2)), ['0a', '0b']);
  // Partition max bytes of one and a half batches: one batch.
  const batch = readBatchHeader(buf, 0).size;
  const body = fetchBody('cut', 0, 0);
  (body as M).topics[0].partitions[0].partitionMaxBytes = Math.floor(batch * 1.5);
  const half = partitionOf(await raw.request(FETCH, 11, body));
  t.is((half.records as Buffer).length, batch);
});

test('ListOffsets: latest is the high watermark, earliest the log start, a timestamp the first record at or after it', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('times');
  await log.append('times', 0, [{ value: 'a', timestamp: 1000 }, { value: 'b', timestamp: 2000 }]);
  await log.append('times', 0, [{ value: 'c', timestamp: 3000 }]);
  const raw = await RawKafka.connect(t, kafka.port);
  const ask = async (version: number, timestamp: number): Promise<M> => {
    const r = (await raw.request(LIST_OFFSETS, version, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'times', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }] })) as M;
    return r.topics[0].partitions[0];
  };
  for (const v of [1, 2, 3, 4, 5]) {
    t.is((await ask(v, -1)).offset, 3, `latest v${v}`);
    t.is((await ask(v, -2)).offset, 0, `earliest v${v}`);
  }
  const at2500 = await ask(5, 2500);
  t.is(at2500.offset, 2);
  t.is(at2500.timestamp, 3000);
  t.is((await ask(1, 1500)).offset, 1);
  const after = await ask(5, 9999);
  t.deepEqual([after.errorCode, after.offset, after.timestamp], [0, -1, -1]);
  const r = (await raw.request(LIST_OFFSETS, 5, { replicaId: -1, topics: [{ name: 'times', partitions: [{ partitionIndex: 7, timestamp: -1 }] }] })) as M;
  t.is(r.topics[0].partitions[0].errorCode, 3);
});

test('Metadata: one broker (the advertised address), a cluster id, the controller; null lists all; auto-create on, off and not allowed', async (t) => {
  const on = await kafkaSetup(t, { advertisedHost: 'kafka.example', defaultPartitions: 3 });
  await on.log.createTopic('existing', { partitions: 2 });
  const raw = await RawKafka.connect(t, on.kafka.port);
  const all = (await raw.request(METADATA, 9, { topics: null, allowAutoTopicCreation: true })) as M;
  t.deepEqual(all.brokers, [{ nodeId: 1, host: 'kafka.example', port: on.kafka.port, rack: null }]);
  t.is(all.controllerId, 1);
  t.regex(all.clusterId, /^[A-Za-z0-9_-]{22}$/);
  t.deepEqual(all.topics.map((x: M) => x.name), ['existing']);
  t.deepEqual(all.topics[0].partitions.map((p: M) => [p.partitionIndex, p.leaderId, p.replicaNodes, p.isrNodes]), [[0, 1, [1], [1]], [1, 1, [1], [1]]]);
  // v0: an empty list means all topics.
  t.deepEqual(((await raw.request(METADATA, 0, { topics: [] })) as M).topics.map((x: M) => x.name), ['existing']);

  const created = (await raw.request(METADATA, 4, { topics: [{ name: 'fresh' }], allowAutoTopicCreation: true })) as M;
  t.deepEqual([created.topics[0].errorCode, created.topics[0].partitions.length], [0, 3]);
  t.is(on.log.describeTopic('fresh').partitions.length, 3);
  const notAllowed = (await raw.request(METADATA, 4, { topics: [{ name: 'other' }], allowAutoTopicCreation: false })) as M;
  t.is(notAllowed.topics[0].errorCode, 3);
  t.false(on.log.listTopics().includes('other'));
  const invalid = (await raw.request(METADATA, 9, { topics: [{ name: 'bad name!' }], allowAutoTopicCreation: true })) as M;
  t.is(invalid.topics[0].errorCode, 17);

  const off = await kafkaSetup(t, { autoCreateTopics: false });
  const raw2 = await RawKafka.connect(t, off.kafka.port);
  const refused = (await raw2.request(METADATA, 1, { topics: [{ name: 'fresh' }] })) as M;
  t.is(refused.topics[0].errorCode, 3);
  t.deepEqual(off.log.listTopics(), []);
});

test('CreateTopics, CreatePartitions, DescribeConfigs and DeleteTopics change and show the log', async (t) => {
  const { kafka, log, broker } = await kafkaSetup(t);
  const raw = await RawKafka.connect(t, kafka.port);
  const created = (await raw.request(CREATE_TOPICS, 7, {
    topics: [
      { name: 'made', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '60000' }, { name: 'cleanup.policy', value: 'delete' }] },
      { name: 'replicated', numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] },
      { name: 'compacted', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'cleanup.policy', value: 'compact' }] },
    ],
    timeoutMs: 1000, validateOnly: false,
  })) as M;
  t.deepEqual(created.topics.map((x: M) => [x.name, x.errorCode, x.numPartitions]), [['made', 0, 2], ['replicated', 38, -1], ['compacted', 40, -1]]);
  t.is(log.describeTopic('made').config.retentionMs, 60000);
  const again = (await raw.request(CREATE_TOPICS, 3, { topics: [{ name: 'made', numPartitions: 1, replicationFactor: -1, assignments: [], configs: [] }], timeoutMs: 1000, validateOnly: false })) as M;
  t.is(again.topics[0].errorCode, 36);

  await log.append('made', 1, [{ value: 'kept' }]);
  const grown = (await raw.request(CREATE_PARTITIONS, 1, { topics: [{ name: 'made', count: 4, assignments: null }], timeoutMs: 1000, validateOnly: false })) as M;
  t.deepEqual(grown.results.map((r: M) => [r.name, r.errorCode]), [['made', 0]]);
  t.is(log.describeTopic('made').partitions.length, 4);
  t.deepEqual(log.read('made', 1, 0).map((r) => String(r.value)), ['kept']);
  await log.append('made', 3, [{ value: 'new partition' }]);
  const shrink = (await raw.request(CREATE_PARTITIONS, 0, { topics: [{ name: 'made', count: 2, assignments: null }], timeoutMs: 1000, validateOnly: false })) as M;
  t.is(shrink.results[0].errorCode, 37);

  const configs = (await raw.request(DESCRIBE_CONFIGS, 2, { resources: [{ resourceType: 2, resourceName: 'made', configurationKeys: null }], includeSynonyms: false })) as M;
  const byName = Object.fromEntries(configs.results[0].configs.map((c: M) => [c.name, c.value]));
  t.is(byName['retention.ms'], '60000');
  t.is(byName['cleanup.policy'], 'delete');
  t.is(byName['segment.bytes'], String(log.describeTopic('made').config.segmentBytes));
  const missing = (await raw.request(DESCRIBE_CONFIGS, 1, { resources: [{ resourceType: 2, resourceName: 'nope', configurationKeys: ['retention.ms'] }] })) as M;
  t.is(missing.results[0].errorCode, 3);

  const cluster = (await raw.request(DESCRIBE_CLUSTER, 0, { includeClusterAuthorizedOperations: false })) as M;
  t.deepEqual(cluster.brokers.map((b: M) => [b.brokerId, b.host, b.port]), [[1, '127.0.0.1', kafka.port]]);

  await broker.offsets.commit('g', [{ topic: 'made', partition: 1, offset: 1 }]);
  const deleted = (await raw.request(DELETE_TOPICS, 1, { topicNames: ['made', 'nope'], timeoutMs: 1000 })) as M;
  t.deepEqual(deleted.responses.map((r: M) => [r.name, r.errorCode]), [['made', 0], ['nope', 3]]);
  t.false(log.listTopics().includes('made'));
  t.deepEqual(broker.offsets.fetch('g', 'made', [1]).map((c) => c.offset), [-1], 'offsets of a deleted topic are dropped');
});

test('offsets committed over Kafka are read by the native protocol and the reverse; metadata round-trips; -1 when none; past the high watermark is refused', async (t) => {
  const { kafka, log, broker } = await kafkaSetup(t);
  await log.createTopic('shared', { partitions: 2 });
  await log.append('shared', 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
  const raw = await RawKafka.connect(t, kafka.port);
  const native = await Connection.connect({ host: '127.0.0.1', port: broker.port });
  t.teardown(() => native.close());

  const commit = (await raw.request(OFFSET_COMMIT, 2, {
    groupId: 'billing', generationIdOrMemberEpoch: -1, memberId: '', retentionTimeMs: -1,
    topics: [{ name: 'shared', partitions: [
      { partitionIndex: 0, committedOffset: 2, committedMetadata: 'from kafka' },
      { partitionIndex: 1, committedOffset: 5, committedMetadata: null },
    ] }],
  })) as M;
  t.deepEqual(commit.topics[0].partitions.map((p: M) => p.errorCode), [0, 1], 'partition 1 is empty: offset 5 is past its high watermark');
  const read = await native.request({ case: 'offsetFetch', value: { group: 'billing', topic: 'shared', partitions: [0, 1] } });
  t.deepEqual(read.header.body?.case === 'offsetFetch' ? read.header.body.value.offsets : null, [
    { partition: 0, offset: 2, metadata: 'from kafka' },
    { partition: 1, offset: -1, metadata: '' },
  ]);

  await native.request({ case: 'offsetCommit', value: { group: 'billing', offsets: [{ topic: 'shared', partition: 0, offset: 3, metadata: 'from native' }] } });
  for (const version of [1, 5, 7]) {
    const fetched = (await raw.request(OFFSET_FETCH, version, { groupId: 'billing', topics: [{ name: 'shared', partitionIndexes: [0, 1] }], requireStable: false })) as M;
    t.deepEqual(fetched.topics[0].partitions.map((p: M) => [p.partitionIndex, p.committedOffset, p.metadata, p.errorCode]), [[0, 3, 'from native', 0], [1, -1, '', 0]], `v${version}`);
  }
  const v8 = (await raw.request(OFFSET_FETCH, 8, { groups: [{ groupId: 'billing', topics: null }, { groupId: 'nobody', topics: null }], requireStable: false })) as M;
  t.deepEqual(v8.groups.map((g: M) => [g.groupId, g.errorCode, g.topics.map((x: M) => [x.name, x.partitions.map((p: M) => p.committedOffset)])]),
    [['billing', 0, [['shared', [3]]]], ['nobody', 0, []]]);

  const coordinator = (await raw.request(FIND_COORDINATOR, 4, { keyType: 0, coordinatorKeys: ['billing', 'other'] })) as M;
  t.deepEqual(coordinator.coordinators.map((c: M) => [c.key, c.nodeId, c.host, c.port, c.errorCode]), [['billing', 1, '127.0.0.1', kafka.port, 0], ['other', 1, '127.0.0.1', kafka.port, 0]]);
  const v0 = (await raw.request(FIND_COORDINATOR, 0, { key: 'billing' })) as M;
  t.deepEqual([v0.errorCode, v0.nodeId, v0.port], [0, 1, kafka.port]);
});

test('ApiVersions lists exactly the served APIs; an unsupported ApiVersions version gets error 35 in the v0 body', async (t) => {
  const { kafka } = await kafkaSetup(t);
  const raw = await RawKafka.connect(t, kafka.port);
  const v3 = (await raw.request(API_VERSIONS, 3, { clientSoftwareName: 'raw', clientSoftwareVersion: '1' })) as M;
  t.is(v3.errorCode, 0);
  t.deepEqual(v3.apiKeys.map((k: M) => k.apiKey).sort((a: number, b: number) => a - b), [...KAFKA_HANDLERS.keys()].sort((a, b) => a - b));
  t.deepEqual(v3.apiKeys, apiVersionsAnswer(3, KAFKA_HANDLERS.keys()).body.apiKeys);
  // Version 9 of ApiVersions: the answer is read as v0.
  const f = raw.frame(API_VERSIONS, 0, {});
  const bytes = Buffer.from(f.bytes);
  bytes.writeInt16BE(9, 6);
  raw.socket.write(bytes);
  const answer = (await f.response) as M;
  t.is(answer.errorCode, 35);
  t.true(answer.apiKeys.length > 5);
});

test('every fetched record byte left through sendfile (the listener\'s counters)', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('zero', { partitions: 2 });
  let appended = 0;
  for (let i = 0; i < 30; i++) {
    const batch = encodeBatch([{ value: `record ${i} ${'x'.repeat(i * 37)}` }, { value: 'second' }]);
    appended += batch.length;
    await log.appendBatch('zero', i % 2, batch);
  }
  const raw = await RawKafka.connect(t, kafka.port);
  let received = 0;
  let records = 0;
  for (const p of [0, 1]) {
    const body = fetchBody('zero', p, 0);
    const r = partitionOf(await raw.request(FETCH, 12, body));
    received += (r.records as Buffer).length;
    records += valuesOf(r.records).length;
  }
  const s = kafka.stats();
  t.is(received, appended);
  t.is(s.fetchedRecordBytes, appended);
  t.is(s.sendfileBytes, s.fetchedRecordBytes);
  t.is(records, 60);
  t.is(s.fetchedRecords, 60);
});

test('a fetch of several partitions long-polls until any of them gets data', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('many', { partitions: 3 });
  const raw = await RawKafka.connect(t, kafka.port);
  const body = fetchBody('many', 0, 0, { maxWaitMs: 60_000, minBytes: 1 });
  (body as M).topics[0].partitions = [0, 1, 2].map((partition) => ({ partition, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1 << 20 }));
  const waiting = raw.request(FETCH, 11, body);
  let answered = false;
  void waiting.then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 100));
  t.false(answered);
  await log.append('many', 2, [{ value: 'on two' }]);
  const r = (await waiting) as M;
  t.deepEqual(r.responses[0].partitions.map((p: M) => [p.partitionIndex, p.highWatermark, valuesOf(p.records)]), [[0, 0, []], [1, 0, []], [2, 1, ['on two']]]);
});

test('partitions added with CreatePartitions survive a reopen of the log, with their data', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('grow', { partitions: 1 });
  const raw = await RawKafka.connect(t, kafka.port);
  const r = (await raw.request(CREATE_PARTITIONS, 3, { topics: [{ name: 'grow', count: 3, assignments: null }], timeoutMs: 1000, validateOnly: false })) as M;
  t.is(r.results[0].errorCode, 0);
  await log.append('grow', 2, [{ value: 'in the new partition' }]);
  const validated = (await raw.request(CREATE_PARTITIONS, 0, { topics: [{ name: 'grow', count: 5, assignments: null }], timeoutMs: 1000, validateOnly: true })) as M;
  t.is(validated.results[0].errorCode, 0);
  t.is(log.describeTopic('grow').partitions.length, 3, 'validate_only changes nothing');
  const dir = log.dir;
  await kafka.close();
  await log.close();
  const { CommitLog } = await import('../../../src/log/commit-log.js');
  const reopened = await CommitLog.open({ dir, logger: { info: () => undefined, warn: () => undefined } });
  t.teardown(() => reopened.close());
  t.is(reopened.describeTopic('grow').partitions.length, 3);
  t.deepEqual(reopened.read('grow', 2, 0).map((x) => String(x.value)), ['in the new partition']);
});

test('close() answers a parked long poll at once with what is there, then closes its connections', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('bye');
  const raw = await RawKafka.connect(t, kafka.port);
  const waiting = raw.request(FETCH, 11, fetchBody('bye', 0, 0, { maxWaitMs: 120_000, minBytes: 1 }));
  await new Promise((r) => setTimeout(r, 50));
  await kafka.close();
  const r = partitionOf(await waiting);
  t.deepEqual([r.errorCode, r.highWatermark, (r.records as Buffer).length], [0, 0, 0]);
  await raw.closed;
  t.is(kafka.stats().connections, 0);
});
