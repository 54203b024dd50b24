/**
 * Consumer groups of real kafkajs consumers against the Kafka listener and the broker
 * core's GroupCoordinator: partitions split without overlap, move when a member
 * leaves, and a restarted consumer resumes at the committed offsets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { CommitLog } from '../../../src/log/commit-log.js';
import { startBroker, type Broker } from '../../../src/net/broker/server.js';
import { startKafkaListener } from '../../../src/net/kafka/listener.js';
import { BrokerMetrics } from '../../../src/ops/metrics.js';

const TOPIC = 'orders';
const GROUP = 'billing';
const PARTITIONS = [0, 1, 2, 3];

interface Member {
  name: string;
  consumer: Consumer;
  memberId: string;
  assignment: number[];
  records: { partition: number; offset: number; value: string }[];
}

/** Polls until cond() holds; fails after a generous liveness bound (never a timing assertion). */
async function waitFor(cond: () => boolean, what: string, boundMs = 90_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup(t: { teardown(fn: () => Promise<void> | void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-groups-'));
  const log = await CommitLog.open({ dir, flush: 'async' });
  await log.createTopic(TOPIC, { partitions: PARTITIONS.length });
  const broker = await startBroker({ log, port: 0, groups: { initialRebalanceDelayMs: 0, minSessionTimeoutMs: 1000 } });
  const listener = await startKafkaListener({ log, offsets: broker.offsets, coordinator: broker.coordinator, host: '127.0.0.1', port: 0 });
  const kafka = new Kafka({ clientId: 'groups-test', brokers: [`127.0.0.1:${listener.port}`], logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100 } });
  const consumers: Consumer[] = [];
  t.teardown(async () => {
    for (const c of consumers) await c.disconnect().catch(() => undefined);
    await listener.close();
    await broker.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const member = async (name: string): Promise<Member> => {
    const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 6000, rebalanceTimeout: 10_000, heartbeatInterval: 200, maxWaitTimeInMs: 100 });
    consumers.push(consumer);
    const m: Member = { name, consumer, memberId: '', assignment: [], records: [] };
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      m.memberId = e.payload.memberId;
      m.assignment = [...((e.payload.memberAssignment as Record<string, number[]>)[TOPIC] ?? [])].sort((a, b) => a - b);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        m.records.push({ partition, offset: Number(message.offset), value: message.value!.toString() });
      },
    });
    return m;
  };
  return { log, broker, kafka, member };
}

async function produce(kafka: Kafka, from: number, count: number): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  for (const partition of PARTITIONS) {
    const messages = Array.from({ length: count }, (_, i) => ({ key: `k${partition}`, value: `p${partition}-${from + i}` }));
    await producer.send({ topic: TOPIC, messages: messages.map((msg) => ({ ...msg, partition })) });
  }
  await producer.disconnect();
}

/** kafkajs's RoundRobinAssigner: partition i goes to the i-th (mod n) member id in sorted order. */
function roundRobin(memberIds: string[]): Map<string, number[]> {
  const sorted = [...memberIds].sort();
  const out = new Map<string, number[]>(sorted.map((id) => [id, []]));
  for (const p of PARTITIONS) out.get(sorted[p % sorted.length]!)!.push(p);
  return out;
}

/** The group is Stable with exactly these members, and each member's last join saw the current member set. */
function settled(broker: Broker, members: Member[]): boolean {
  const d = broker.coordinator.describeGroup(GROUP);
  if (d === null || d.state !== 'Stable' || d.members.length !== members.length) return false;
  const ids = new Set(d.members.map((m) => m.memberId));
  if (!members.every((m) => ids.has(m.memberId))) return false;
  const union = members.flatMap((m) => m.assignment);
  return union.length === PARTITIONS.length && new Set(union).size === PARTITIONS.length;
}

test.serial('kafkajs consumers of one group split 4 partitions, the survivor takes all after a leave, a restarted consumer resumes at the committed offsets', async (t) => {
  const { log, broker, kafka, member } = await setup(t);
  const metrics = new BrokerMetrics();
  metrics.attach(log, broker);
  const scraped = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await metrics.metrics())?.[1]);
  await produce(kafka, 0, 10);

  const a = await member('a');
  const b = await member('b');
  await waitFor(() => settled(broker, [a, b]), 'a Stable group of a and b');
  const expected = roundRobin([a.memberId, b.memberId]);
  t.deepEqual(a.assignment, expected.get(a.memberId));
  t.deepEqual(b.assignment, expected.get(b.memberId));
  t.deepEqual([...a.assignment, ...b.assignment].sort(), PARTITIONS);
  const d = broker.coordinator.describeGroup(GROUP)!;
  t.is(d.protocolType, 'consumer');
  t.is(d.protocolName, 'RoundRobinAssigner');
  t.true(d.generationId >= 2);

  // b leaves (LeaveGroup): a rejoins and gets every partition.
  const generationBefore = d.generationId;
  await b.consumer.disconnect();
  await waitFor(() => settled(broker, [a]), 'a alone in a Stable group');
  t.deepEqual(a.assignment, PARTITIONS);
  t.true(broker.coordinator.describeGroup(GROUP)!.generationId > generationBefore);
  // Rebalances so far: the first join, b's join, b's leave at least; metrics read the coordinator's counters.
  const { rebalances } = broker.coordinator.stats();
  t.true(rebalances >= 3);
  t.is(await scraped('commitlog_group_rebalances_total'), rebalances);
  t.is(await scraped('commitlog_group_members'), 1);
  t.is(await scraped('commitlog_group_session_expirations_total'), 0);

  // Every record reaches the group; kafkajs commits after each batch.
  const seen = () => new Set([...a.records, ...b.records].map((r) => r.value));
  await waitFor(() => seen().size === 40, 'all 40 records consumed');
  await waitFor(() => broker.offsets.fetch(GROUP, TOPIC, PARTITIONS).every((o) => o.offset === 10), 'offsets committed at 10');
  t.deepEqual(broker.offsets.fetch(GROUP, TOPIC, PARTITIONS).map((o) => o.offset), [10, 10, 10, 10]);
  await a.consumer.disconnect();
  await waitFor(() => broker.coordinator.describeGroup(GROUP)?.state === 'Empty', 'the group Empty');

  // A new consumer of the group starts at the committed offsets, not at the beginning.
  await produce(kafka, 10, 5);
  const c = await member('c');
  await waitFor(() => broker.offsets.fetch(GROUP, TOPIC, PARTITIONS).every((o) => o.offset === 15), 'offsets committed at 15');
  t.deepEqual(c.assignment, PARTITIONS);
  t.is(c.records.length, 20);
  t.deepEqual(c.records.map((r) => r.offset).sort((x, y) => x - y), [...Array(20)].map((_, i) => 10 + Math.floor(i / 4)));
  t.deepEqual(c.records.map((r) => r.value).sort(), PARTITIONS.flatMap((p) => [10, 11, 12, 13, 14].map((i) => `p${p}-${i}`)).sort());
});

test.serial('three kafkajs consumers split 4 partitions exactly as the leader assigned them; the coordinator shows the same', async (t) => {
  const { broker, member } = await setup(t);
  const ms = [await member('a'), await member('b'), await member('c')];
  await waitFor(() => settled(broker, ms), 'a Stable group of three');
  const expected = roundRobin(ms.map((m) => m.memberId));
  for (const m of ms) t.deepEqual(m.assignment, expected.get(m.memberId), m.name);
  t.deepEqual(ms.flatMap((m) => m.assignment).sort(), PARTITIONS);
  const d = broker.coordinator.describeGroup(GROUP)!;
  t.deepEqual(d.members.map((m) => m.memberId).sort(), ms.map((m) => m.memberId).sort());
  t.true(d.members.every((m) => m.assignment.length > 0 && m.clientId === 'groups-test' && m.clientHost.endsWith('127.0.0.1')));
  t.true(ms.some((m) => m.memberId === d.leaderId));

  // One leaves: the two left split all four.
  await ms[2]!.consumer.disconnect();
  await waitFor(() => settled(broker, ms.slice(0, 2)), 'a Stable group of two');
  const two = roundRobin(ms.slice(0, 2).map((m) => m.memberId));
  for (const m of ms.slice(0, 2)) t.deepEqual(m.assignment, two.get(m.memberId), m.name);
});
