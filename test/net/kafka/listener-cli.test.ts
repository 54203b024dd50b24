/**
 * `commitlog broker` and its Kafka listener: the start-up line (before the listening
 * line), a real Kafka client (kafkajs) against the process, settings from flags,
 * `off`, and a taken port as a start-up error naming the flag.
 */
import test from 'ava';
import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { RawKafka } from './listener-helpers.js';
import { tmpDir } from '../../helpers/tmp.js';
import { runCli, startBroker } from '../../cli/helpers.js';

test('--kafka-port 0 prints the kafka listener line before the listening line; kafkajs and the native CLI share the data', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir, ['--kafka-port', '0', '--kafka-default-partitions', '3']);
  const out = broker.stdout();
  const m = /^commitlog broker kafka listener on 127\.0\.0\.1:(\d+)$/m.exec(out);
  t.truthy(m, out);
  t.true(out.indexOf('kafka listener on') < out.indexOf('commitlog broker listening on'));
  const port = Number(m![1]);
  t.true(port > 0 && port !== broker.port);

  const kafka = new Kafka({ clientId: 'cli-test', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  await producer.send({ topic: 'auto', messages: [{ key: 'a', value: 'from kafkajs', partition: 2 }] });
  await producer.disconnect();
  // Auto-created with --kafka-default-partitions; read back with the native CLI.
  const consumed = await runCli(['consume', 'auto', '--partition', '2', '--from', 'earliest', '--max', '1', '--broker', broker.address]);
  t.is(consumed.code, 0, consumed.stderr);
  t.regex(consumed.stdout.toString(), /from kafkajs/);
  const described = await runCli(['topics', 'describe', 'auto', '--broker', broker.address]);
  t.regex(described.stdout.toString(), /^topic: auto partitions: 3$/m);
  t.is(await broker.stop('SIGTERM'), 0, broker.stderr());
});

test('--kafka-port off: no kafka line; a taken Kafka port exits 1 naming --kafka-port; --kafka-auto-create must be on or off', async (t) => {
  const dir = tmpDir(t);
  const off = await startBroker(t, `${dir}/a`);
  t.notRegex(off.stdout(), /kafka listener/);
  t.is(await off.stop('SIGTERM'), 0);

  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as net.AddressInfo).port;
  const r = await runCli(['broker', '--dir', `${dir}/b`, '--port', '0', '--http-port', 'off', '--kafka-port', String(taken)]);
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`cannot serve the Kafka protocol on 127\\.0\\.0\\.1:${taken}: the port is in use; choose another with --kafka-port`));
  t.notRegex(r.stdout.toString(), /listening on/);

  const bad = await runCli(['broker', '--dir', `${dir}/c`, '--kafka-auto-create', 'maybe']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--kafka-auto-create must be one of on, off/);
  const badPort = await runCli(['broker', '--dir', `${dir}/c`, '--kafka-port', 'nine']);
  t.is(badPort.code, 2);
  t.regex(badPort.stderr, /--kafka-port must be an integer in \[0, 65535\] or off/);
});

test('--advertised-host is the broker address Metadata and FindCoordinator give', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir, ['--kafka-port', '0', '--advertised-host', 'kafka.internal', '--kafka-auto-create', 'off']);
  const port = Number(/kafka listener on 127\.0\.0\.1:(\d+)/.exec(broker.stdout())![1]);
  const raw = await RawKafka.connect(t, port);
  const meta = (await raw.request(3, 9, { topics: [{ name: 'absent' }], allowAutoTopicCreation: true })) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.deepEqual(meta.brokers.map((b: { host: string; port: number }) => [b.host, b.port]), [['kafka.internal', port]]);
  t.is(meta.topics[0].errorCode, 3, '--kafka-auto-create off');
  const found = (await raw.request(10, 3, { key: 'g', keyType: 0 })) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  t.deepEqual([found.errorCode, found.host, found.port], [0, 'kafka.internal', port]);
  t.is(await broker.stop('SIGTERM'), 0, broker.stderr());
});
