import test from 'ava';
import { assignorsOption, rangeAssignor, roundRobinAssignor, type GroupAssignment } from '../../../src/net/groups/assignors.js';
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription } from '../../../src/net/groups/consumer-protocol.js';

function plain(a: GroupAssignment): Record<string, Record<string, number[]>> {
  const out: Record<string, Record<string, number[]>> = {};
  for (const [member, topics] of a) out[member] = Object.fromEntries(topics);
  return out;
}

test('range: contiguous runs per topic, the first members one more when it does not divide', (t) => {
  const members = [{ memberId: 'c', topics: ['t'] }, { memberId: 'a', topics: ['t', 'u'] }, { memberId: 'b', topics: ['t', 'u'] }];
  const a = rangeAssignor.assign(members, new Map([['t', 7], ['u', 2]]));
  t.deepEqual(plain(a), {
    a: { t: [0, 1, 2], u: [0] },
    b: { t: [3, 4], u: [1] },
    c: { t: [5, 6] },
  });
});

test('range: more members than partitions leaves the last ones empty', (t) => {
  const members = ['m1', 'm2', 'm3'].map((memberId) => ({ memberId, topics: ['t'] }));
  t.deepEqual(plain(rangeAssignor.assign(members, new Map([['t', 2]]))), { m1: { t: [0] }, m2: { t: [1] }, m3: {} });
});

test('roundrobin: partitions of all topics dealt in turn, skipping members not subscribed', (t) => {
  const members = [{ memberId: 'b', topics: ['x'] }, { memberId: 'a', topics: ['x', 'y'] }, { memberId: 'c', topics: ['x', 'y'] }];
  const a = roundRobinAssignor.assign(members, new Map([['x', 4], ['y', 3]]));
  // x0 a, x1 b, x2 c, x3 a, y0 c (b skipped), y1 a, y2 c (b skipped)
  t.deepEqual(plain(a), { a: { x: [0, 3], y: [1] }, b: { x: [1] }, c: { x: [2], y: [0, 2] } });
});

test('both assignors: every partition of a 6-partition topic exactly once across three members', (t) => {
  for (const assignor of [rangeAssignor, roundRobinAssignor]) {
    const members = ['x', 'y', 'z'].map((memberId) => ({ memberId, topics: ['orders'] }));
    const a = assignor.assign(members, new Map([['orders', 6]]));
    const all = [...a.values()].flatMap((topics) => topics.get('orders') ?? []).sort((p, q) => p - q);
    t.deepEqual(all, [0, 1, 2, 3, 4, 5], assignor.name);
    for (const topics of a.values()) t.is(topics.get('orders')?.length, 2, assignor.name);
  }
});

test('a topic with no partitions known is skipped', (t) => {
  t.deepEqual(plain(rangeAssignor.assign([{ memberId: 'a', topics: ['gone'] }], new Map())), { a: {} });
});

test('assignorsOption: default, custom, and typed errors', (t) => {
  t.deepEqual(assignorsOption(undefined).map((a) => a.name), ['range', 'roundrobin']);
  const custom = { name: 'mine', assign: () => new Map() };
  t.is(assignorsOption([custom])[0], custom);
  for (const bad of [[], [{ name: '' , assign: () => new Map() }], [{ name: 'x' }], [custom, custom], 'range']) {
    t.is((t.throws(() => assignorsOption(bad)) as { code?: string } | undefined)?.code, 'ERR_INVALID_ARGUMENT');
  }
});

test('subscription and assignment bytes round-trip, and match the layout Kafka clients write', (t) => {
  const sub = encodeSubscription({ version: 0, topics: ['a', 'bc'], userData: Buffer.from([9]) });
  t.is(sub.toString('hex'), '0000' + '00000002' + '000161' + '00026263' + '00000001' + '09');
  t.deepEqual(decodeSubscription(sub), { version: 0, topics: ['a', 'bc'], userData: Buffer.from([9]), ownedPartitions: [], generationId: -1, rackId: null });
  const v3 = encodeSubscription({ version: 3, topics: ['t'], ownedPartitions: [{ topic: 't', partitions: [1, 2] }], generationId: 4, rackId: 'r1' });
  t.deepEqual(decodeSubscription(v3), { version: 3, topics: ['t'], userData: null, ownedPartitions: [{ topic: 't', partitions: [1, 2] }], generationId: 4, rackId: 'r1' });
  const asg = encodeAssignment({ version: 0, partitions: [{ topic: 't', partitions: [0, 5] }] });
  t.is(asg.toString('hex'), '0000' + '00000001' + '000174' + '00000002' + '00000000' + '00000005' + 'ffffffff');
  t.deepEqual(decodeAssignment(asg), { version: 0, partitions: [{ topic: 't', partitions: [0, 5] }], userData: null });
  t.deepEqual(decodeAssignment(Buffer.alloc(0)), { version: 0, partitions: [], userData: null });
});

test('a newer version decodes as the last known one, trailing bytes ignored; malformed bytes are ERR_KAFKA_BAD_REQUEST', (t) => {
  const v9 = Buffer.concat([encodeSubscription({ version: 3, topics: ['t'] }), Buffer.from([1, 2, 3])]);
  v9.writeInt16BE(9, 0);
  t.deepEqual(decodeSubscription(v9).topics, ['t']);
  const cut = encodeSubscription({ version: 0, topics: ['topic'] }).subarray(0, 8);
  t.is((t.throws(() => decodeSubscription(cut)) as { code?: string } | undefined)?.code, 'ERR_KAFKA_BAD_REQUEST');
  const trailing = Buffer.concat([encodeAssignment({ version: 1, partitions: [] }), Buffer.from([0])]);
  t.is((t.throws(() => decodeAssignment(trailing)) as { code?: string } | undefined)?.code, 'ERR_KAFKA_BAD_REQUEST');
  const huge = Buffer.from('0000' + '7fffffff', 'hex');
  t.is((t.throws(() => decodeSubscription(huge)) as { code?: string } | undefined)?.code, 'ERR_KAFKA_BAD_REQUEST');
});

test('kafkajs reads our subscription and assignment bytes, and we read its', async (t) => {
  const { AssignerProtocol } = (await import('kafkajs')).default;
  const ours = encodeSubscription({ version: 0, topics: ['orders', 'audit'], userData: Buffer.from('ud') });
  t.deepEqual(AssignerProtocol.MemberMetadata.decode(ours), { version: 0, topics: ['orders', 'audit'], userData: Buffer.from('ud') });
  const theirs = AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: { orders: [2, 0], audit: [1] }, userData: Buffer.alloc(0) });
  const decoded = decodeAssignment(theirs);
  t.deepEqual(decoded.partitions.sort((a, b) => a.topic.localeCompare(b.topic)), [{ topic: 'audit', partitions: [1] }, { topic: 'orders', partitions: [2, 0] }]);
  t.deepEqual(decoded.userData, Buffer.alloc(0));
  const back = AssignerProtocol.MemberAssignment.decode(encodeAssignment({ version: 0, partitions: [{ topic: 'orders', partitions: [3] }] }));
  t.deepEqual(back?.assignment, { orders: [3] });
});
