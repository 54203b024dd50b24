/**
 * Group membership over the broker protocol: GroupMembers with NativeGroupTransport
 * against a real broker on an ephemeral port, describe/list over the wire, and the
 * coordinator's generation check on OffsetCommit.
 */
import test, { type ExecutionContext } from 'ava';
import { CommitLog } from '../../../src/log/commit-log.js';
import { startBroker, type Broker } from '../../../src/net/broker/server.js';
import { Admin } from '../../../src/net/client/admin.js';
import { Connection } from '../../../src/net/client/connection.js';
import { runCli } from '../../cli/helpers.js';
import { GroupMember } from '../../../src/net/client/group-member.js';
import { NativeGroupTransport } from '../../../src/net/client/group-transport.js';
import { rangeAssignor } from '../../../src/net/groups/assignors.js';
import { decodeAssignment, decodeSubscription } from '../../../src/net/groups/consumer-protocol.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined };

async function setup(t: ExecutionContext): Promise<{ log: CommitLog; broker: Broker }> {
  const dir = tmpDir(t, 'native-groups-');
  const log = await CommitLog.open({ dir, flush: 'async', logger: quiet });
  await log.createTopic('orders', { partitions: 6 });
  const broker = await startBroker({ log, logger: quiet, groups: { initialRebalanceDelayMs: 0, minSessionTimeoutMs: 100 } });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  return { log, broker };
}

function member(broker: Broker, log: CommitLog, owned: Map<GroupMember, number[]>): { m: GroupMember; transport: NativeGroupTransport } {
  const transport = new NativeGroupTransport({ host: '127.0.0.1', port: broker.port, clientId: 'native-groups-test' }, async (topics) =>
    new Map(topics.filter((x) => log.listTopics().includes(x)).map((x) => [x, log.describeTopic(x).partitions.length])));
  const m: GroupMember = new GroupMember(
    { groupId: 'billing', topics: ['orders'], assignors: [rangeAssignor], sessionTimeoutMs: 1000, rebalanceTimeoutMs: 3000, heartbeatIntervalMs: 50, groupInstanceId: null, retryBackoffMs: 20 },
    transport,
    {
      onAssigned: (tps) => void owned.set(m, tps.flatMap((tp) => tp.partitions).sort((a, b) => a - b)),
      onRevoked: () => void owned.set(m, []),
      onError: (err) => {
        throw err;
      },
    },
  );
  return { m, transport };
}


test('three members over the wire split six partitions; describe and list over the wire agree with them', async (t) => {
  const { log, broker } = await setup(t);
  const owned = new Map<GroupMember, number[]>();
  const ms = [member(broker, log, owned), member(broker, log, owned), member(broker, log, owned)];
  for (const { m } of ms) m.start();
  t.teardown(async () => {
    for (const { m, transport } of ms) {
      await m.close();
      await transport.close();
    }
  });
  const all = (): number[] => [...owned.values()].flat().sort((a, b) => a - b);
  await until('six partitions owned once', () => JSON.stringify(all()) === '[0,1,2,3,4,5]' && [...owned.values()].every((p) => p.length === 2));

  const conn = await Connection.connect({ host: '127.0.0.1', port: broker.port });
  t.teardown(() => conn.close());
  const described = await conn.request({ case: 'describeGroup', value: { group: 'billing' } });
  const d = described.header.body?.case === 'describeGroup' ? described.header.body.value : undefined;
  t.is(d?.state, 'Stable');
  t.is(d?.protocolType, 'consumer');
  t.is(d?.protocolName, 'range');
  t.is(d?.members.length, 3);
  for (const dm of d!.members) {
    t.deepEqual(decodeSubscription(dm.metadata).topics, ['orders']);
    const mine = ms.find(({ m }) => m.commitIdentity.memberId === dm.memberId)!.m;
    t.deepEqual(decodeAssignment(dm.assignment).partitions.flatMap((tp) => tp.partitions), owned.get(mine));
    t.is(dm.clientId, 'native-groups-test');
    t.is(dm.clientHost, '127.0.0.1');
  }
  const listed = await conn.request({ case: 'listGroups', value: {} });
  t.deepEqual(listed.header.body?.case === 'listGroups' ? listed.header.body.value.groups : undefined, [{ group: 'billing', state: 'Stable', protocolType: 'consumer' }]);

  // A member's commit with its generation is stored; a stale generation and an outsider are refused.
  await log.append('orders', 0, [{ value: 'a' }, { value: 'b' }]);
  await log.flush();
  const { memberId, generationId } = ms[0]!.m.commitIdentity;
  await conn.request({ case: 'offsetCommit', value: { group: 'billing', offsets: [{ topic: 'orders', partition: 0, offset: 1, metadata: '' }], memberId, generationId } });
  t.is(broker.offsets.fetch('billing', 'orders', [0])[0]?.offset, 1);
  const stale = await t.throwsAsync(conn.request({ case: 'offsetCommit', value: { group: 'billing', offsets: [{ topic: 'orders', partition: 0, offset: 2, metadata: '' }], memberId, generationId: generationId - 1 } }));
  t.is((stale as { code?: string }).code, 'ERR_ILLEGAL_GENERATION');
  const outsider = await t.throwsAsync(conn.request({ case: 'offsetCommit', value: { group: 'billing', offsets: [{ topic: 'orders', partition: 0, offset: 2, metadata: '' }] } }));
  t.is((outsider as { code?: string }).code, 'ERR_UNKNOWN_MEMBER');
  t.is(broker.offsets.fetch('billing', 'orders', [0])[0]?.offset, 1);

  // One leaves: the two others take all six, and describe says so.
  await ms[0]!.m.close();
  await ms[0]!.transport.close();
  await until('two members own six', () => owned.get(ms[1]!.m)!.length === 3 && owned.get(ms[2]!.m)!.length === 3);
  const after = await conn.request({ case: 'describeGroup', value: { group: 'billing' } });
  t.is(after.header.body?.case === 'describeGroup' ? after.header.body.value.members.length : -1, 2);
  for (const { m, transport } of ms.slice(1)) {
    await m.close();
    await transport.close();
  }
  const empty = await conn.request({ case: 'describeGroup', value: { group: 'billing' } });
  t.like(empty.header.body?.case === 'describeGroup' ? empty.header.body.value : {}, { state: 'Empty', members: [] });
});

test('describe of a group known only by its committed offsets is Empty; of an unknown group Dead; both listed correctly', async (t) => {
  const { broker } = await setup(t);
  const conn = await Connection.connect({ host: '127.0.0.1', port: broker.port });
  t.teardown(() => conn.close());
  await conn.request({ case: 'offsetCommit', value: { group: 'audit', offsets: [{ topic: 'orders', partition: 1, offset: 0, metadata: 'm' }] } });
  const audit = await conn.request({ case: 'describeGroup', value: { group: 'audit' } });
  t.like(audit.header.body?.case === 'describeGroup' ? audit.header.body.value : {}, { group: 'audit', state: 'Empty', generationId: -1, members: [] });
  const none = await conn.request({ case: 'describeGroup', value: { group: 'nobody' } });
  t.like(none.header.body?.case === 'describeGroup' ? none.header.body.value : {}, { group: 'nobody', state: 'Dead' });
  const listed = await conn.request({ case: 'listGroups', value: {} });
  t.deepEqual(listed.header.body?.case === 'listGroups' ? listed.header.body.value.groups : undefined, [{ group: 'audit', state: 'Empty', protocolType: '' }]);
});

test('a join with a session timeout below the broker minimum is refused with ERR_INVALID_SESSION_TIMEOUT', async (t) => {
  const { broker } = await setup(t);
  const conn = await Connection.connect({ host: '127.0.0.1', port: broker.port });
  t.teardown(() => conn.close());
  const err = await t.throwsAsync(conn.request({
    case: 'joinGroup',
    value: { group: 'g', memberId: '', sessionTimeoutMs: 10, rebalanceTimeoutMs: 0, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from([0, 0]) }] },
  }));
  t.is((err as { code?: string }).code, 'ERR_INVALID_SESSION_TIMEOUT');
});

test('Admin.describeGroup and `commitlog groups` show the members, each partition owner, committed offsets and lag', async (t) => {
  const { log, broker } = await setup(t);
  const owned = new Map<GroupMember, number[]>();
  const ms = [member(broker, log, owned), member(broker, log, owned)];
  for (const { m } of ms) m.start();
  t.teardown(async () => {
    for (const { m, transport } of ms) {
      await m.close();
      await transport.close();
    }
  });
  await until('three partitions each', () => ms.every(({ m }) => owned.get(m)?.length === 3));
  await log.append('orders', 4, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
  await log.flush();
  const owner4 = ms.find(({ m }) => owned.get(m)!.includes(4))!.m.commitIdentity;
  const conn = await Connection.connect({ host: '127.0.0.1', port: broker.port });
  t.teardown(() => conn.close());
  await conn.request({ case: 'offsetCommit', value: { group: 'billing', offsets: [{ topic: 'orders', partition: 4, offset: 1, metadata: '' }], memberId: owner4.memberId, generationId: owner4.generationId } });

  const admin = new Admin({ broker: `127.0.0.1:${broker.port}` });
  t.teardown(() => admin.close());
  const d = await admin.describeGroup('billing');
  t.is(d.state, 'Stable');
  t.is(d.protocolName, 'range');
  t.deepEqual(d.members.map((m) => m.topics), [['orders'], ['orders']]);
  t.deepEqual(d.topics.map((x) => x.topic), ['orders']);
  const p4 = d.partitions.find((p) => p.partition === 4)!;
  t.like(p4, { committedOffset: 1, nextOffset: 3, lag: 2, memberId: owner4.memberId });
  for (const p of d.partitions) {
    const holder = ms.find(({ m }) => owned.get(m)!.includes(p.partition))!.m.commitIdentity.memberId;
    t.is(p.memberId, holder);
  }
  t.deepEqual(await admin.listGroups(), [{ group: 'billing', state: 'Stable', protocolType: 'consumer' }]);

  const listed = await runCli(['groups', 'list', '--broker', `127.0.0.1:${broker.port}`]);
  t.is(listed.code, 0, listed.stderr);
  t.deepEqual(listed.stdout.toString().trim().split('\n').map((l) => l.split(/\s+/)), [['GROUP', 'STATE', 'PROTOCOL'], ['billing', 'Stable', 'consumer']]);
  const described = await runCli(['groups', 'describe', 'billing', '--broker', `127.0.0.1:${broker.port}`]);
  t.is(described.code, 0, described.stderr);
  const text = described.stdout.toString();
  t.regex(text, /^group: billing state: Stable generation: \d+ assignor: range members: 2\n/);
  const row4 = text.split('\n').find((l) => l.startsWith('orders ') && l.split(/\s+/)[1] === '4')!.split(/\s+/);
  t.deepEqual(row4, ['orders', '4', '1', '3', '2', owner4.memberId]);
  const row0 = text.split('\n').find((l) => l.startsWith('orders ') && l.split(/\s+/)[1] === '0')!.split(/\s+/);
  t.is(row0[2], '-');
  const bad = await runCli(['groups', 'frobnicate', '--broker', `127.0.0.1:${broker.port}`]);
  t.is(bad.code, 2);
});
