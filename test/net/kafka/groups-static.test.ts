/**
 * Static membership with a real client: librdkafka (through Debian's confluent-kafka)
 * consumers with a group.instance.id. A restarted instance takes its old place under a
 * new member id without a rebalance, and the old id is fenced.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { ErrorCode } from '../../../src/errors.js';
import { CommitLog } from '../../../src/log/commit-log.js';
import { startBroker } from '../../../src/net/broker/server.js';
import { startKafkaListener } from '../../../src/net/kafka/listener.js';

const PYTHON = process.env.KAFKA_MATRIX_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'groups-static-consumer.py');

async function runConsumer(port: number, instance: string): Promise<{ code: number | null; lines: { assigned?: number[] }[]; stderr: string }> {
  const child = spawn(PYTHON, [SCRIPT, String(port), 'static', instance], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, lines: out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)), stderr };
}

// Missing client: a failure under CI=true (.ci/run installs it), a skip with its reason otherwise.
const available = spawnSync(PYTHON, ['-c', 'import confluent_kafka']).status === 0;
const MISSING = `confluent-kafka is missing for ${PYTHON} (apt-get install python3-confluent-kafka)`;
if (!available && process.env.CI === 'true') test('librdkafka static membership', (t) => t.fail(MISSING));
if (!available && process.env.CI !== 'true') console.error(`groups-static.test.ts skipped: ${MISSING}`);

(available ? test : test.skip)('a librdkafka static member restarted with the same group.instance.id keeps its partitions without a rebalance; its old member id is fenced', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-static-'));
  const log = await CommitLog.open({ dir, flush: 'async' });
  await log.createTopic('orders', { partitions: 4 });
  const broker = await startBroker({ log, port: 0, groups: { initialRebalanceDelayMs: 0, minSessionTimeoutMs: 1000 } });
  const listener = await startKafkaListener({ log, offsets: broker.offsets, coordinator: broker.coordinator, host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await listener.close();
    await broker.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const first = await runConsumer(listener.port, 'host-1');
  t.is(first.code, 0, first.stderr);
  t.deepEqual(first.lines, [{ assigned: [0, 1, 2, 3] }]);
  const before = broker.coordinator.describeGroup('static')!;
  t.is(before.state, 'Stable', 'a static member sends no LeaveGroup on close');
  t.deepEqual(before.members.map((m) => m.groupInstanceId), ['host-1']);
  const oldId = before.members[0]!.memberId;
  t.regex(oldId, /^host-1-/);
  const { rebalances } = broker.coordinator.stats();

  const second = await runConsumer(listener.port, 'host-1');
  t.is(second.code, 0, second.stderr);
  t.deepEqual(second.lines, [{ assigned: [0, 1, 2, 3] }]);
  const after = broker.coordinator.describeGroup('static')!;
  t.is(after.state, 'Stable');
  t.is(after.generationId, before.generationId, 'no new generation');
  t.is(broker.coordinator.stats().rebalances, rebalances, 'no rebalance');
  t.is(after.members.length, 1);
  t.not(after.members[0]!.memberId, oldId);
  t.deepEqual(after.members[0]!.assignment, before.members[0]!.assignment);
  t.is(broker.coordinator.heartbeat({ groupId: 'static', memberId: oldId, generationId: before.generationId, groupInstanceId: 'host-1' }).error, ErrorCode.FENCED_INSTANCE_ID);
});
