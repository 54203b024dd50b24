/**
 * Consumers with `group` and no `partitions` share the topic's partitions (issue 11),
 * in process against a real broker: exactly-once handling while membership is stable,
 * commit on revoke when a member leaves, and the options' typed errors.
 */
import test, { type ExecutionContext } from 'ava';
import { CommitLog } from '../../../src/log/commit-log.js';
import { startBroker, type Broker } from '../../../src/net/broker/server.js';
import { Consumer, type ConsumerOptions } from '../../../src/net/client/consumer.js';
import type { ConsumerRecord } from '../../../src/net/client/client-types.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined };

async function setup(t: ExecutionContext, partitions = 6): Promise<{ log: CommitLog; broker: Broker }> {
  const log = await CommitLog.open({ dir: tmpDir(t, 'consumer-groups-'), flush: 'async', logger: quiet });
  await log.createTopic('orders', { partitions });
  const broker = await startBroker({ log, logger: quiet, groups: { initialRebalanceDelayMs: 0, minSessionTimeoutMs: 100 } });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  return { log, broker };
}

async function produce(log: CommitLog, perPartition: number, partitions = 6, from = 0): Promise<void> {
  for (let p = 0; p < partitions; p++) {
    await log.append('orders', p, Array.from({ length: perPartition }, (_, i) => ({ value: `p${p}-${from + i}` })));
  }
  await log.flush();
}

interface Running {
  consumer: Consumer;
  handled: ConsumerRecord[];
  assigned: number[][];
  revoked: number[][];
  loop: Promise<void>;
}

function run(broker: Broker, t: ExecutionContext, extra: Partial<ConsumerOptions> = {}): Running {
  const r: Running = { consumer: undefined as unknown as Consumer, handled: [], assigned: [], revoked: [], loop: Promise.resolve() };
  r.consumer = new Consumer({
    broker: `127.0.0.1:${broker.port}`, topic: 'orders', group: 'billing', sessionTimeoutMs: 1000, heartbeatIntervalMs: 50,
    maxWaitMs: 50, logger: quiet, onAssigned: (ps) => r.assigned.push(ps), onRevoked: (ps) => void r.revoked.push(ps), ...extra,
  });
  r.loop = (async () => {
    for await (const record of r.consumer) r.handled.push(record);
  })();
  t.teardown(() => r.consumer.close());
  return r;
}


const key = (r: ConsumerRecord): string => `${r.partition}:${r.offset}`;

test('three consumers of one group: each record handled by exactly one of them, partitions split 2/2/2', async (t) => {
  const { log, broker } = await setup(t);
  await produce(log, 50);
  const cs = [run(broker, t), run(broker, t), run(broker, t)];
  await until('every partition assigned once', () => {
    const owned = cs.flatMap((c) => c.consumer.partitions).sort();
    return JSON.stringify(owned) === '[0,1,2,3,4,5]' && cs.every((c) => c.consumer.partitions.length === 2);
  });
  await produce(log, 50, 6, 50);
  await until('600 records handled', () => cs.reduce((n, c) => n + c.handled.length, 0) >= 600);
  const all = cs.flatMap((c) => c.handled.map(key));
  t.is(all.length, 600);
  t.is(new Set(all).size, 600);
  for (const c of cs) {
    const mine = new Set(c.consumer.partitions);
    t.true(c.handled.every((r) => mine.has(r.partition)), 'a consumer handled only its own partitions');
    const last = c.assigned.at(-1)!;
    t.deepEqual(last, c.consumer.partitions);
  }
  // Values are what was produced, in offset order per partition.
  for (const c of cs) {
    for (const p of c.consumer.partitions) {
      const values = c.handled.filter((r) => r.partition === p).map((r) => String(r.value));
      t.deepEqual(values, Array.from({ length: 100 }, (_, i) => `p${p}-${i}`));
    }
  }
});

test('a member that closes commits what it handled; the others take its partitions and resume right after', async (t) => {
  const { log, broker } = await setup(t);
  await produce(log, 20);
  const cs = [run(broker, t), run(broker, t), run(broker, t)];
  await until('120 handled', () => cs.reduce((n, c) => n + c.handled.length, 0) >= 120);
  const [leaver, ...stay] = cs;
  const had = leaver!.consumer.partitions;
  t.is(had.length, 2);
  await leaver!.consumer.close();
  await leaver!.loop;
  t.deepEqual(leaver!.revoked.at(-1), had);
  // Its partitions' positions were committed on revoke: 20 each.
  for (const p of had) t.is(broker.offsets.fetch('billing', 'orders', [p])[0]?.offset, 20);
  await until('two members own six', () => stay.every((c) => c.consumer.partitions.length === 3));
  await produce(log, 10, 6, 20);
  await until('180 handled', () => cs.reduce((n, c) => n + c.handled.length, 0) >= 180);
  const all = cs.flatMap((c) => c.handled.map(key));
  t.is(all.length, 180, 'nothing handled twice');
  t.is(new Set(all).size, 180);
});

test('a consumer with partitions and a group only commits (no membership), as before; group options without membership are refused', async (t) => {
  const { broker } = await setup(t, 2);
  const c = new Consumer({ broker: `127.0.0.1:${broker.port}`, topic: 'orders', group: 'billing', partitions: [0, 1], logger: quiet });
  t.teardown(() => c.close());
  await c.connect();
  t.deepEqual(c.partitions, [0, 1]);
  t.is(broker.coordinator.describeGroup('billing'), null);
  for (const bad of [
    { partitions: [0], sessionTimeoutMs: 1000 },
    { group: undefined, onAssigned: () => undefined },
    { heartbeatIntervalMs: 5000, sessionTimeoutMs: 1000 },
    { groupInstanceId: '' },
  ] as Partial<ConsumerOptions>[]) {
    const err = t.throws(() => new Consumer({ broker: `127.0.0.1:${broker.port}`, topic: 'orders', group: 'billing', ...bad }));
    t.is((err as { code?: string }).code, 'ERR_INVALID_ARGUMENT');
  }
});
