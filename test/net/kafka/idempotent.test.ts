/**
 * kafkajs with `idempotent: true` against the Kafka listener: InitProducerId gives it
 * an id, its batches carry sequences, and a produce whose answer is lost (a proxy
 * between client and listener drops the connection after the batch was stored) is
 * resent with the same sequence and answered with the original offsets: nothing is
 * stored twice. InitProducerId with a transactional id is refused (INVALID_REQUEST).
 */
import net from 'node:net';
import test from 'ava';
import { Kafka, logLevel } from 'kafkajs';
import { CommitLog } from '../../../src/log/commit-log.js';
import { startBroker } from '../../../src/net/broker/server.js';
import { startKafkaListener } from '../../../src/net/kafka/listener.js';
import { tmpDir } from '../../helpers/tmp.js';
import { RawKafka, quiet } from './listener-helpers.js';

interface Proxy {
  port: number;
  /** Drop the next answer that arrives once `when()` holds, and cut that connection. */
  dropNextAnswer(when: () => boolean): void;
  dropped: number;
  close(): Promise<void>;
}

/** A TCP proxy in front of the listener (its port is the advertised one). */
async function startProxy(target: () => number): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let armed: (() => boolean) | null = null;
  const proxy: Proxy = {
    port: 0,
    dropped: 0,
    dropNextAnswer: (when) => (armed = when),
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(target(), '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (armed !== null && armed()) {
        armed = null;
        proxy.dropped++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  return proxy;
}

test('kafkajs idempotent producer: exact offsets, and a produce resent after a lost answer is not stored twice', async (t) => {
  t.timeout(60_000);
  const log = await CommitLog.open({ dir: tmpDir(t, 'commitlog-idem-'), flush: 'sync', retentionCheckIntervalMs: 0, logger: quiet });
  const broker = await startBroker({ log, port: 0, logger: quiet });
  let listenerPort = 0;
  const proxy = await startProxy(() => listenerPort);
  const kafka = await startKafkaListener({ log, offsets: broker.offsets, coordinator: broker.coordinator, port: 0, advertisedPort: proxy.port, logger: quiet });
  listenerPort = kafka.port;
  t.teardown(async () => {
    await proxy.close();
    await kafka.close().catch(() => undefined);
    await broker.close().catch(() => undefined);
    await log.close().catch(() => undefined);
  });
  await log.createTopic('idem', { partitions: 1 });
  const client = new Kafka({ clientId: 'idem-test', brokers: [`127.0.0.1:${proxy.port}`], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 50 } });
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.teardown(() => producer.disconnect().catch(() => undefined));

  const send = async (from: number, count: number): Promise<string> => {
    const messages = Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: `v${from + i}` }));
    const [meta] = await producer.send({ topic: 'idem', acks: -1, messages: messages.map((m) => ({ ...m, partition: 0 })) });
    t.is(meta.errorCode, 0);
    return meta.baseOffset!;
  };
  t.is(await send(0, 3), '0');
  t.is(await send(3, 2), '3');
  const state = log.partition('idem', 0).producers;
  t.is(state.size, 1);
  // The answer to the next produce is lost after the batch was stored: kafkajs resends it.
  proxy.dropNextAnswer(() => log.latestOffset('idem', 0) >= 9);
  t.is(await send(5, 4), '5', 'the resend is answered with the original base offset');
  t.is(proxy.dropped, 1);
  t.is(await send(9, 1), '9');
  t.is(log.latestOffset('idem', 0), 10, 'the resent batch was not stored again');
  const values = log.read('idem', 0, 0, { maxBytes: 1 << 20 }).map((r) => String(r.value));
  t.deepEqual(values, Array.from({ length: 10 }, (_, i) => `v${i}`));
  // The stored batches carry the id and consecutive sequences.
  const only = state.maxProducerId;
  t.deepEqual(state.entry(only)?.batches.map((b) => [b.firstSeq, b.lastSeq, b.baseOffset, b.lastOffset]), [[0, 2, 0, 2], [3, 4, 3, 4], [5, 8, 5, 8], [9, 9, 9, 9]]);
});

test('InitProducerId: new ids each call, epoch 0; a transactional id gets INVALID_REQUEST (42)', async (t) => {
  const log = await CommitLog.open({ dir: tmpDir(t, 'commitlog-idem-'), flush: 'async', retentionCheckIntervalMs: 0, logger: quiet });
  const broker = await startBroker({ log, port: 0, logger: quiet });
  const kafka = await startKafkaListener({ log, offsets: broker.offsets, coordinator: broker.coordinator, port: 0, logger: quiet });
  t.teardown(async () => {
    await kafka.close().catch(() => undefined);
    await broker.close().catch(() => undefined);
    await log.close().catch(() => undefined);
  });
  const raw = await RawKafka.connect(t, kafka.port);
  const a = await raw.request(22, 0, { transactionalId: null, transactionTimeoutMs: 60_000 });
  const b = await raw.request(22, 4, { transactionalId: null, transactionTimeoutMs: 60_000, producerId: 17, producerEpoch: 3 });
  t.like(a, { errorCode: 0, producerId: 0, producerEpoch: 0 });
  t.like(b, { errorCode: 0, producerId: 1, producerEpoch: 0 });
  const tx = await raw.request(22, 2, { transactionalId: 'tx-1', transactionTimeoutMs: 60_000 });
  t.like(tx, { errorCode: 42, producerId: -1, producerEpoch: -1 });
});
