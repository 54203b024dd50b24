/**
 * Hostile input on the Kafka port: garbage, a huge or negative size, a truncated
 * frame, a malformed body, an unknown API, an unserved version. Each closes only its
 * own connection (counted in badFrames); another connection opened before keeps
 * working throughout, the data stays intact, memory held for a client that sends
 * without reading stays bounded, and a client that stops reading mid-transfer is cut
 * off after transferTimeoutMs.
 */
import test from 'ava';
import net from 'node:net';
import { encodeBatch } from '../../../src/log/batch.js';
import { encodeRequest, type Message } from '../../../src/net/kafka/index.js';
import { MAX_PENDING_BYTES } from '../../../src/net/kafka/listener.js';
import { RawKafka, kafkaSetup } from './listener-helpers.js';
import { until } from '../../helpers/until.js';

type M = Message & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const listOffsets = { replicaId: -1, topics: [{ name: 'safe', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] };

/** Writes `bytes` on a new connection and resolves once the listener closed it. */
function closedAfter(port: number, bytes: Buffer, end = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      if (end) socket.end();
    });
    const got: Buffer[] = [];
    socket.on('data', (d) => got.push(d));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(Buffer.concat(got)));
    setTimeout(() => reject(new Error('connection was not closed')), 20_000).unref();
  });
}

test('garbage, bad sizes, malformed bodies and unserved APIs close only their own connection', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('safe');
  await log.append('safe', 0, [{ value: 'kept' }]);
  const healthy = await RawKafka.connect(t, kafka.port);
  t.is(((await healthy.request(2, 1, listOffsets)) as M).topics[0].partitions[0].offset, 1);

  const size = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n, 0);
    return b;
  };
  const valid = encodeRequest({ apiKey: 2, apiVersion: 1, correlationId: 9, clientId: 'x' }, listOffsets);
  const withVersion = (key: number, version: number): Buffer => {
    const b = Buffer.from(valid);
    b.writeInt16BE(key, 4);
    b.writeInt16BE(version, 6);
    return b;
  };
  const cases: [string, Buffer][] = [
    ['garbage', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['huge size', size(0x7fffffff)],
    ['negative size', size(-4)],
    ['size too small for a header', Buffer.concat([size(3), Buffer.from([0, 1, 2])])],
    ['body cut short', Buffer.concat([size(valid.length - 4 - 6), valid.subarray(4, valid.length - 6)])],
    ['trailing bytes', Buffer.concat([size(valid.length - 4 + 3), valid.subarray(4), Buffer.from([1, 2, 3])])],
    ['unknown API key', withVersion(999, 0)],
    ['unserved version', withVersion(2, 77)],
    ['a count of 2^31 topics', Buffer.concat([size(valid.length - 4), (() => {
      const b = Buffer.from(valid.subarray(4));
      b.writeInt32BE(0x7fffffff, 8 + 2 + 1 + 4); // header (8 + client id) then replica id: the topics count
      return b;
    })()])],
  ];
  for (const [name, bytes] of cases) {
    const before = kafka.stats().badFrames;
    const answer = await closedAfter(kafka.port, bytes);
    t.is(answer.length, 0, `${name}: nothing answered`);
    t.is(kafka.stats().badFrames, before + 1, `${name}: counted`);
    t.is(((await healthy.request(2, 1, listOffsets)) as M).topics[0].partitions[0].offset, 1, `${name}: the other connection still works`);
  }
  // A frame whose sender hangs up half way: the listener just drops it.
  const truncated = await closedAfter(kafka.port, valid.subarray(0, valid.length - 5), true);
  t.is(truncated.length, 0);
  t.deepEqual(log.read('safe', 0, 0).map((r) => String(r.value)), ['kept']);
  const fresh = await RawKafka.connect(t, kafka.port);
  t.is(((await fresh.request(2, 1, listOffsets)) as M).topics[0].partitions[0].offset, 1, 'new connections are served');
});

test('a corrupt batch is answered CORRUPT_MESSAGE on its partition and nothing is stored', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('safe', { partitions: 2 });
  const raw = await RawKafka.connect(t, kafka.port);
  const bad = encodeBatch([{ value: 'flipped' }]);
  bad[bad.length - 1] ^= 0xff; // inside the CRC
  const good = encodeBatch([{ value: 'fine' }]);
  const r = (await raw.request(0, 7, {
    transactionalId: null, acks: 1, timeoutMs: 1000,
    topicData: [{ name: 'safe', partitionData: [{ index: 0, records: bad }, { index: 1, records: good }, { index: 5, records: good }] }],
  })) as M;
  t.deepEqual(r.responses[0].partitionResponses.map((p: M) => [p.index, p.errorCode, p.baseOffset]), [[0, 2, -1], [1, 0, 0], [5, 3, -1]]);
  t.is(log.latestOffset('safe', 0), 0);
  t.deepEqual(log.read('safe', 1, 0).map((x) => String(x.value)), ['fine']);
});

test('a client that sends without reading holds bounded memory and is served in full once it reads', async (t) => {
  const { kafka, log } = await kafkaSetup(t);
  await log.createTopic('safe');
  await log.append('safe', 0, [{ value: 'x'.repeat(60_000) }]);
  const fetch = (id: number): Buffer => encodeRequest({ apiKey: 1, apiVersion: 4, correlationId: id, clientId: 'slow' }, {
    replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0,
    topics: [{ topic: 'safe', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }],
  });
  const count = 2000; // ~120 MB of responses if all were buffered
  const socket = net.connect(kafka.port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.pause();
  const requests = Buffer.concat(Array.from({ length: count }, (_, i) => fetch(i)));
  socket.write(requests);
  // Until the kernel buffers fill and the listener pauses: nothing to wait for but its stats.
  let last = -1;
  for (let i = 0; i < 200 && kafka.stats().responses !== last; i++) {
    last = kafka.stats().responses;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true(kafka.stats().responses < count, 'the listener stopped answering a client that does not read');
  t.true(kafka.stats().maxPendingBytes <= MAX_PENDING_BYTES + requests.length, `held ${kafka.stats().maxPendingBytes} bytes`);
  t.true(kafka.stats().maxPendingBytes < MAX_PENDING_BYTES * 2, `held ${kafka.stats().maxPendingBytes} bytes`);
  // Now read everything: every response arrives, in order.
  let received = 0;
  let ids = 0;
  let buffered = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    while (buffered.length >= 8 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const n = buffered.readInt32BE(0);
      if (buffered.readInt32BE(4) === ids) ids++;
      received++;
      buffered = buffered.subarray(4 + n);
    }
  });
  socket.resume();
  while (received < count) await new Promise((r) => setTimeout(r, 20));
  t.is(ids, count, 'in request order');
});

test('a client that stops reading during a fetch transfer is cut off after transferTimeoutMs; others keep being served and its ranges are released', async (t) => {
  const { kafka, log } = await kafkaSetup(t, { transferTimeoutMs: 1000 });
  await log.createTopic('big');
  for (let i = 0; i < 4; i++) await log.append('big', 0, Array.from({ length: 15 }, () => ({ value: 'b'.repeat(60_000) }))); // ~3.6 MB
  const fetch = (id: number): Buffer => encodeRequest({ apiKey: 1, apiVersion: 4, correlationId: id, clientId: 'hog' }, {
    replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 8 << 20, isolationLevel: 0,
    topics: [{ topic: 'big', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 8 << 20 }] }],
  });
  const hog = net.connect(kafka.port, '127.0.0.1');
  t.teardown(() => hog.destroy());
  hog.on('error', () => undefined);
  await new Promise<void>((resolve) => hog.once('connect', () => resolve()));
  hog.pause();
  // 16 fetches from offset 0, each answered with the first segment's ~0.7 MB (1 MiB
  // segments here): more than the socket buffers hold while nobody reads.
  hog.write(Buffer.concat(Array.from({ length: 16 }, (_, i) => fetch(i))));
  const other = await RawKafka.connect(t, kafka.port);
  const latest = { replicaId: -1, topics: [{ name: 'big', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] };
  const during = (await other.request(2, 1, latest)) as M;
  t.deepEqual([during.topics[0].partitions[0].errorCode, during.topics[0].partitions[0].offset], [0, 60]);
  await until('the transfer timeout', () => kafka.stats().transferTimeouts === 1, 60_000, () => JSON.stringify(kafka.stats()));
  await until('the hog connection to close', () => kafka.stats().connections === 1, 10_000);
  t.is(kafka.stats().transferTimeouts, 1);
  const after = (await other.request(2, 1, latest)) as M;
  t.deepEqual([after.topics[0].partitions[0].errorCode, after.topics[0].partitions[0].offset], [0, 60]);
  // The ranges the hog held are released: the topic can be deleted.
  await log.deleteTopic('big');
  t.false(log.listTopics().includes('big'));
});
