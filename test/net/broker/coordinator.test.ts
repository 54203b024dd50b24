import test from 'ava';
import { ErrorCode } from '../../../src/errors.js';
import { GroupCoordinator } from '../../../src/net/broker/coordinator.js';
import { KAFKA_ERROR_FOR } from '../../../src/net/kafka/error-codes.js';
import { harness, joinReq, meta, settle, track, type Harness } from './coordinator-helpers.js';

/** Two members A (leader) and B in a Stable generation 2, each holding its assignment. */
async function stableTwo(h: Harness) {
  const a = await h.co.join(joinReq({ clientId: 'a', protocols: [{ name: 'range', metadata: meta('A') }] }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [{ memberId: a.memberId, assignment: meta('all') }] });
  const bJoin = track(h.co.join(joinReq({ clientId: 'b', protocols: [{ name: 'range', metadata: meta('B') }] })));
  const aJoin = await h.co.join(joinReq({ memberId: a.memberId, clientId: 'a', protocols: [{ name: 'range', metadata: meta('A') }] }));
  await settle();
  const b = bJoin.value!;
  const bSync = h.co.sync({ groupId: 'g', memberId: b.memberId, generationId: 2, assignments: [] });
  await h.co.sync({
    groupId: 'g', memberId: a.memberId, generationId: 2,
    assignments: [{ memberId: a.memberId, assignment: meta('p0,p1') }, { memberId: b.memberId, assignment: meta('p2,p3') }],
  });
  await bSync;
  return { a: a.memberId, b: b.memberId, aJoin };
}

test('a new v4 member gets its id with MEMBER_ID_REQUIRED, then joins as leader of generation 1 and syncs to Stable', async (t) => {
  const h = harness();
  const first = await h.co.join(joinReq({ clientId: 'kafkajs', requireKnownMemberId: true }));
  t.is(first.error, ErrorCode.MEMBER_ID_REQUIRED);
  t.is(KAFKA_ERROR_FOR[first.error!], 79);
  t.regex(first.memberId, /^kafkajs-[0-9a-f-]{36}$/);
  t.is(first.generationId, -1);
  t.is(h.co.describeGroup('g')!.state, 'Empty');

  const joined = await h.co.join(joinReq({ memberId: first.memberId, requireKnownMemberId: true }));
  t.deepEqual(joined, {
    error: null, memberId: first.memberId, generationId: 1, protocolType: 'consumer', protocolName: 'range',
    leaderId: first.memberId, members: [{ memberId: first.memberId, groupInstanceId: null, metadata: meta('sub') }],
  });
  t.is(h.co.describeGroup('g')!.state, 'CompletingRebalance');

  const synced = await h.co.sync({ groupId: 'g', memberId: first.memberId, generationId: 1, assignments: [{ memberId: first.memberId, assignment: meta('t:0,1,2,3') }] });
  t.deepEqual(synced, { error: null, assignment: meta('t:0,1,2,3'), protocolType: 'consumer', protocolName: 'range' });
  const d = h.co.describeGroup('g')!;
  t.is(d.state, 'Stable');
  t.is(d.generationId, 1);
  t.deepEqual(d.members.map((m) => [m.memberId, m.clientId, m.clientHost, m.assignment.toString()]), [[first.memberId, 'client', '/127.0.0.1', 't:0,1,2,3']]);
});

test('a join before v4 gets a member id at once; a join with an unknown member id is ERR_UNKNOWN_MEMBER', async (t) => {
  const h = harness();
  const r = await h.co.join(joinReq({ clientId: 'old' }));
  t.is(r.error, null);
  t.regex(r.memberId, /^old-/);
  t.is(r.generationId, 1);
  const unknown = await h.co.join(joinReq({ memberId: 'nobody' }));
  t.is(unknown.error, ErrorCode.UNKNOWN_MEMBER);
  t.is(unknown.memberId, 'nobody');
  const noGroup = await h.co.join(joinReq({ groupId: 'other', memberId: 'nobody' }));
  t.is(noGroup.error, ErrorCode.UNKNOWN_MEMBER);
  t.is(h.co.describeGroup('other'), null);
});

test('a second member parks until the first rejoins; the leader gets both members, the follower none; assignments go to each', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq({ clientId: 'a', protocols: [{ name: 'range', metadata: meta('A') }] }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [{ memberId: a.memberId, assignment: meta('all') }] });

  const bJoin = track(h.co.join(joinReq({ clientId: 'b', protocols: [{ name: 'range', metadata: meta('B') }] })));
  await settle();
  t.false(bJoin.done);
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
  t.deepEqual(h.co.heartbeat({ groupId: 'g', memberId: a.memberId, generationId: 1 }), { error: ErrorCode.REBALANCE_IN_PROGRESS });

  const aJoin = await h.co.join(joinReq({ memberId: a.memberId, clientId: 'a', protocols: [{ name: 'range', metadata: meta('A') }] }));
  await settle();
  const b = bJoin.value!;
  t.is(aJoin.generationId, 2);
  t.is(aJoin.leaderId, a.memberId);
  t.deepEqual(aJoin.members, [
    { memberId: a.memberId, groupInstanceId: null, metadata: meta('A') },
    { memberId: b.memberId, groupInstanceId: null, metadata: meta('B') },
  ]);
  t.deepEqual({ ...b, memberId: 'x' }, { error: null, memberId: 'x', generationId: 2, protocolType: 'consumer', protocolName: 'range', leaderId: a.memberId, members: [] });

  const bSync = track(h.co.sync({ groupId: 'g', memberId: b.memberId, generationId: 2, assignments: [] }));
  await settle();
  t.false(bSync.done, 'the follower waits for the leader');
  const aSync = await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 2, assignments: [{ memberId: a.memberId, assignment: meta('p0,p1') }, { memberId: b.memberId, assignment: meta('p2,p3') }] });
  await settle();
  t.deepEqual(aSync.assignment, meta('p0,p1'));
  t.deepEqual(bSync.value!.assignment, meta('p2,p3'));
  t.is(bSync.value!.error, null);
  t.is(h.co.describeGroup('g')!.state, 'Stable');
  t.deepEqual(h.co.heartbeat({ groupId: 'g', memberId: b.memberId, generationId: 2 }), { error: null });
});

test('a member the leader left out gets empty bytes', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  const c = track(h.co.join(joinReq({ clientId: 'c' })));
  const aj = track(h.co.join(joinReq({ memberId: a })));
  const bj = track(h.co.join(joinReq({ memberId: b })));
  await settle();
  t.true(c.done && aj.done && bj.done);
  t.is(aj.value!.generationId, 3);
  const cs = track(h.co.sync({ groupId: 'g', memberId: c.value!.memberId, generationId: 3, assignments: [] }));
  const bs = track(h.co.sync({ groupId: 'g', memberId: b, generationId: 3, assignments: [] }));
  await h.co.sync({ groupId: 'g', memberId: a, generationId: 3, assignments: [{ memberId: b, assignment: meta('p0') }, { memberId: 'stranger', assignment: meta('x') }] });
  await settle();
  t.deepEqual(bs.value!.assignment, meta('p0'));
  t.is(cs.value!.error, null);
  t.is(cs.value!.assignment.length, 0);
});

test('members that do not rejoin within the rebalance timeout are removed; the joined one leads the next generation', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq({ clientId: 'a' }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [] });
  const b = track(h.co.join(joinReq({ clientId: 'b', rebalanceTimeoutMs: 4000 })));
  h.timers.advance(4999);
  await settle();
  t.false(b.done);
  h.timers.advance(1);
  await settle();
  t.is(b.value!.generationId, 2);
  t.is(b.value!.leaderId, b.value!.memberId);
  t.deepEqual(b.value!.members.map((m) => m.memberId), [b.value!.memberId]);
  t.deepEqual(h.co.heartbeat({ groupId: 'g', memberId: a.memberId, generationId: 1 }), { error: ErrorCode.UNKNOWN_MEMBER });
  t.deepEqual(h.events.filter((e) => e.type === 'member-removed'), [{ type: 'member-removed', groupId: 'g', memberId: a.memberId, reason: 'rebalance-timeout' }]);
});

test('a new group waits initialRebalanceDelayMs, again while members keep arriving, up to the rebalance timeout', async (t) => {
  const h = harness({ initialRebalanceDelayMs: 3000 });
  const a = track(h.co.join(joinReq({ clientId: 'a', rebalanceTimeoutMs: 10_000 })));
  h.timers.advance(1000);
  const b = track(h.co.join(joinReq({ clientId: 'b', rebalanceTimeoutMs: 10_000 })));
  h.timers.advance(2000); // t = 3000: a member arrived during the first step, so one more step
  await settle();
  t.false(a.done);
  h.timers.advance(2999);
  await settle();
  t.false(a.done || b.done);
  h.timers.advance(1); // t = 6000: nobody new in the second step
  await settle();
  t.is(a.value!.generationId, 1);
  t.is(b.value!.generationId, 1);
  t.is(a.value!.leaderId, a.value!.memberId);
  t.is(a.value!.members.length, 2);

  // Members arriving in every step: the delay stops at the rebalance timeout (3000 + 3000 + 1000).
  const h2 = harness({ initialRebalanceDelayMs: 3000 });
  const first = track(h2.co.join(joinReq({ groupId: 'h', clientId: 'x', rebalanceTimeoutMs: 7000 })));
  for (let i = 0; i < 6; i++) {
    h2.timers.advance(1000);
    void h2.co.join(joinReq({ groupId: 'h', clientId: `y${i}`, rebalanceTimeoutMs: 7000 }));
  }
  await settle();
  t.false(first.done);
  h2.timers.advance(999);
  await settle();
  t.false(first.done);
  h2.timers.advance(1);
  await settle();
  t.is(first.value!.generationId, 1);
  t.is(first.value!.members.length, 7);
});

test('the protocol every member supports with the most first-choice votes wins; none in common is INCONSISTENT_GROUP_PROTOCOL', async (t) => {
  const h = harness();
  const rr = (s: string) => ({ name: 'roundrobin', metadata: meta(`rr-${s}`) });
  const range = (s: string) => ({ name: 'range', metadata: meta(`range-${s}`) });
  const a = track(h.co.join(joinReq({ clientId: 'a', protocols: [range('a'), rr('a')] })));
  await settle();
  const b = track(h.co.join(joinReq({ clientId: 'b', protocols: [rr('b'), range('b')] })));
  const c = track(h.co.join(joinReq({ clientId: 'c', protocols: [rr('c'), range('c')] })));
  const aj = await h.co.join(joinReq({ memberId: a.value!.memberId, protocols: [range('a'), rr('a')] }));
  await settle();
  t.is(aj.protocolName, 'roundrobin');
  t.deepEqual(aj.members.map((m) => m.metadata.toString()), ['rr-a', 'rr-b', 'rr-c']);
  t.is(b.value!.protocolName, 'roundrobin');
  t.is(c.value!.protocolName, 'roundrobin');

  const sticky = await h.co.join(joinReq({ clientId: 'd', protocols: [{ name: 'sticky', metadata: meta('') }] }));
  t.is(sticky.error, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is(KAFKA_ERROR_FOR[sticky.error!], 23);
  const otherType = await h.co.join(joinReq({ clientId: 'e', protocolType: 'connect', protocols: [rr('e')] }));
  t.is(otherType.error, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  const none = await h.co.join(joinReq({ groupId: 'fresh', protocols: [] }));
  t.is(none.error, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is(h.co.describeGroup('fresh'), null);
  const noType = await h.co.join(joinReq({ groupId: 'fresh', protocolType: '' }));
  t.is(noType.error, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is(h.co.describeGroup('g')!.members.length, 3);
});

test('SyncGroup: unknown member, wrong generation, during PreparingRebalance, and a rebalance starting while followers wait', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  t.is((await h.co.sync({ groupId: 'g', memberId: 'nobody', generationId: 2, assignments: [] })).error, ErrorCode.UNKNOWN_MEMBER);
  t.is((await h.co.sync({ groupId: 'nogroup', memberId: a, generationId: 2, assignments: [] })).error, ErrorCode.UNKNOWN_MEMBER);
  const wrongGen = await h.co.sync({ groupId: 'g', memberId: a, generationId: 1, assignments: [] });
  t.is(wrongGen.error, ErrorCode.ILLEGAL_GENERATION);
  t.is(wrongGen.assignment.length, 0);
  // Stable: a repeated SyncGroup answers the member's assignment at once.
  t.deepEqual((await h.co.sync({ groupId: 'g', memberId: b, generationId: 2, assignments: [] })).assignment, meta('p2,p3'));

  const c = track(h.co.join(joinReq({ clientId: 'c' })));
  t.is((await h.co.sync({ groupId: 'g', memberId: b, generationId: 2, assignments: [] })).error, ErrorCode.REBALANCE_IN_PROGRESS);
  void h.co.join(joinReq({ memberId: a }));
  void h.co.join(joinReq({ memberId: b }));
  await settle();
  t.is(c.value!.generationId, 3);
  const bs = track(h.co.sync({ groupId: 'g', memberId: b, generationId: 3, assignments: [] }));
  await settle();
  t.false(bs.done);
  // A fourth member arrives before the leader syncs: the waiting follower is told to rejoin.
  const d = track(h.co.join(joinReq({ clientId: 'd' })));
  await settle();
  t.deepEqual(bs.value, { error: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0), protocolType: null, protocolName: null });
  t.is(KAFKA_ERROR_FOR[bs.value!.error!], 27);
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
  t.false(d.done);
});

test('Heartbeat: unknown member 25, wrong generation 22, rebalance 27, and it keeps the session alive', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq({ clientId: 'a', sessionTimeoutMs: 10_000 }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [] });
  const unknown = h.co.heartbeat({ groupId: 'g', memberId: 'x', generationId: 1 });
  t.is(KAFKA_ERROR_FOR[unknown.error!], 25);
  t.is(h.co.heartbeat({ groupId: 'none', memberId: a.memberId, generationId: 1 }).error, ErrorCode.UNKNOWN_MEMBER);
  const wrong = h.co.heartbeat({ groupId: 'g', memberId: a.memberId, generationId: 7 });
  t.is(wrong.error, ErrorCode.ILLEGAL_GENERATION);
  t.is(KAFKA_ERROR_FOR[wrong.error!], 22);
  for (let i = 0; i < 5; i++) {
    h.timers.advance(9_999);
    t.is(h.co.heartbeat({ groupId: 'g', memberId: a.memberId, generationId: 1 }).error, null);
  }
  h.timers.advance(9_999);
  t.is(h.co.describeGroup('g')!.members.length, 1);
  h.timers.advance(1);
  const d = h.co.describeGroup('g')!;
  t.is(d.members.length, 0);
  t.is(d.state, 'Empty');
  t.is(d.generationId, 2);
  t.is(h.co.stats().sessionExpirations, 1);
  t.is(h.co.heartbeat({ groupId: 'g', memberId: a.memberId, generationId: 1 }).error, ErrorCode.UNKNOWN_MEMBER);
});

test('an expired follower triggers a rebalance; the leader rejoins alone into the next generation', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  h.timers.advance(9_000);
  h.co.heartbeat({ groupId: 'g', memberId: a, generationId: 2 });
  h.timers.advance(1_000); // b's session (10 s from its SyncGroup) ends
  t.deepEqual(h.co.describeGroup('g')!.members.map((m) => m.memberId), [a]);
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
  t.is(h.co.heartbeat({ groupId: 'g', memberId: a, generationId: 2 }).error, ErrorCode.REBALANCE_IN_PROGRESS);
  const r = await h.co.join(joinReq({ memberId: a, protocols: [{ name: 'range', metadata: meta('A') }] }));
  t.is(r.generationId, 3);
  t.deepEqual(r.members.map((m) => m.memberId), [a]);
  t.is((await h.co.sync({ groupId: 'g', memberId: b, generationId: 2, assignments: [] })).error, ErrorCode.UNKNOWN_MEMBER);
  t.deepEqual(h.events.filter((e) => e.type === 'member-removed').map((e) => e.type === 'member-removed' && e.reason), ['session-timeout']);
});

test('session timeouts outside [min, max] are INVALID_SESSION_TIMEOUT; an empty group id is INVALID_GROUP', async (t) => {
  const h = harness({ minSessionTimeoutMs: 6000, maxSessionTimeoutMs: 30_000 });
  for (const ms of [5999, 30_001, -1, 1.5]) {
    const r = await h.co.join(joinReq({ sessionTimeoutMs: ms }));
    t.is(r.error, ErrorCode.INVALID_SESSION_TIMEOUT, String(ms));
    t.is(KAFKA_ERROR_FOR[r.error!], 26);
  }
  t.is((await h.co.join(joinReq({ sessionTimeoutMs: 6000 }))).error, null);
  t.is((await h.co.join(joinReq({ groupId: 'x', sessionTimeoutMs: 30_000 }))).error, null);
  const bad = await h.co.join(joinReq({ groupId: '' }));
  t.is(bad.error, ErrorCode.INVALID_GROUP);
  t.is(KAFKA_ERROR_FOR[bad.error!], 24);
  t.is((await h.co.join(joinReq({ groupId: 'x'.repeat(256) }))).error, ErrorCode.INVALID_GROUP);
  t.throws(() => new GroupCoordinator({ minSessionTimeoutMs: 10, maxSessionTimeoutMs: 5 }), { code: ErrorCode.INVALID_ARGUMENT });
  t.throws(() => new GroupCoordinator({ initialRebalanceDelayMs: -1 }), { code: ErrorCode.INVALID_ARGUMENT });
});

test('a JoinGroup without a rebalance timeout (v0) waits the session timeout', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq({ clientId: 'a', sessionTimeoutMs: 8000, rebalanceTimeoutMs: undefined }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [] });
  const b = track(h.co.join(joinReq({ clientId: 'b', sessionTimeoutMs: 8000, rebalanceTimeoutMs: -1 })));
  h.timers.advance(7999);
  h.co.heartbeat({ groupId: 'g', memberId: a.memberId, generationId: 1 });
  await settle();
  t.false(b.done);
  h.timers.advance(1);
  await settle();
  t.is(b.value!.generationId, 2);
  t.is(h.co.describeGroup('g')!.members[0]!.rebalanceTimeoutMs, 8000);
});

test('a member id handed out with MEMBER_ID_REQUIRED holds the rebalance until used or a session passed', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq({ clientId: 'a', requireKnownMemberId: false, rebalanceTimeoutMs: 20_000 }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [] });
  const pending = await h.co.join(joinReq({ clientId: 'p', requireKnownMemberId: true, sessionTimeoutMs: 6000 }));
  t.is(pending.error, ErrorCode.MEMBER_ID_REQUIRED);
  // a rejoins (as the leader it starts a rebalance) but the handed-out id is still expected.
  const aj = track(h.co.join(joinReq({ memberId: a.memberId, rebalanceTimeoutMs: 20_000 })));
  await settle();
  t.false(aj.done);
  h.timers.advance(5999);
  await settle();
  t.false(aj.done);
  h.timers.advance(1);
  await settle();
  t.is(aj.value!.generationId, 2);
  t.deepEqual(aj.value!.members.map((m) => m.memberId), [a.memberId]);
  t.is((await h.co.join(joinReq({ memberId: pending.memberId }))).error, ErrorCode.UNKNOWN_MEMBER);
});

test('a follower that never sends SyncGroup is removed after the rebalance timeout and the group rebalances', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  void b;
  const c = track(h.co.join(joinReq({ clientId: 'c' })));
  void h.co.join(joinReq({ memberId: a }));
  void h.co.join(joinReq({ memberId: b }));
  await settle();
  t.is(c.value!.generationId, 3);
  const bs = track(h.co.sync({ groupId: 'g', memberId: b, generationId: 3, assignments: [] }));
  await h.co.sync({ groupId: 'g', memberId: a, generationId: 3, assignments: [] });
  await settle();
  t.true(bs.done);
  h.co.heartbeat({ groupId: 'g', memberId: c.value!.memberId, generationId: 3 });
  h.timers.advance(5000);
  t.deepEqual(h.events.filter((e) => e.type === 'member-removed').map((e) => e.type === 'member-removed' && [e.memberId, e.reason]), [[c.value!.memberId, 'sync-timeout']]);
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
});

test('a duplicate JoinGroup supersedes the parked one, which answers REBALANCE_IN_PROGRESS', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  const first = track(h.co.join(joinReq({ memberId: b, protocols: [{ name: 'range', metadata: meta('B2') }] })));
  const second = track(h.co.join(joinReq({ memberId: b, protocols: [{ name: 'range', metadata: meta('B3') }] })));
  await settle();
  t.is(first.value!.error, ErrorCode.REBALANCE_IN_PROGRESS);
  t.false(second.done);
  const aj = await h.co.join(joinReq({ memberId: a, protocols: [{ name: 'range', metadata: meta('A') }] }));
  t.deepEqual(aj.members.map((m) => m.metadata.toString()), ['A', 'B3']);
});

test('a follower rejoining a Stable group unchanged gets the current generation without a rebalance; a leader rejoin rebalances', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  const before = h.co.stats().rebalances;
  const again = await h.co.join(joinReq({ memberId: b, protocols: [{ name: 'range', metadata: meta('B') }] }));
  t.deepEqual(again, { error: null, memberId: b, generationId: 2, protocolType: 'consumer', protocolName: 'range', leaderId: a, members: [] });
  t.is(h.co.stats().rebalances, before);
  t.is(h.co.describeGroup('g')!.state, 'Stable');
  const changed = track(h.co.join(joinReq({ memberId: b, protocols: [{ name: 'range', metadata: meta('B-new') }] })));
  await settle();
  t.false(changed.done);
  t.is(h.co.stats().rebalances, before + 1);
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
});

test('describeGroup and listGroups report state, protocol, leader and members; rebalances are counted and observed', async (t) => {
  const h = harness();
  const { a, b } = await stableTwo(h);
  await h.co.join(joinReq({ groupId: 'solo', clientId: 's' }));
  const d = h.co.describeGroup('g')!;
  t.deepEqual({ ...d, members: d.members.map((m) => ({ ...m, metadata: m.metadata.toString(), assignment: m.assignment.toString() })) }, {
    groupId: 'g', state: 'Stable', generationId: 2, protocolType: 'consumer', protocolName: 'range', leaderId: a,
    members: [
      { memberId: a, groupInstanceId: null, clientId: 'a', clientHost: '/127.0.0.1', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 5_000, metadata: 'A', assignment: 'p0,p1' },
      { memberId: b, groupInstanceId: null, clientId: 'b', clientHost: '/127.0.0.1', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 5_000, metadata: 'B', assignment: 'p2,p3' },
    ],
  });
  t.deepEqual(h.co.listGroups(), [
    { groupId: 'g', protocolType: 'consumer', state: 'Stable' },
    { groupId: 'solo', protocolType: 'consumer', state: 'CompletingRebalance' },
  ]);
  t.deepEqual(h.co.listGroups(['CompletingRebalance']), [{ groupId: 'solo', protocolType: 'consumer', state: 'CompletingRebalance' }]);
  t.deepEqual(h.co.stats(), { groups: 2, members: 3, rebalances: 3, sessionExpirations: 0 });
  t.deepEqual(h.events.filter((e) => e.type === 'rebalance-end' && e.groupId === 'g'), [
    { type: 'rebalance-end', groupId: 'g', generationId: 1, members: 1, state: 'CompletingRebalance' },
    { type: 'rebalance-end', groupId: 'g', generationId: 2, members: 2, state: 'CompletingRebalance' },
  ]);
  t.deepEqual(h.events.filter((e) => e.type === 'rebalance-start' && e.groupId === 'g').map((e) => e.type === 'rebalance-start' && [e.generationId, e.reason]), [
    [0, 'new member joined'], [1, 'new member joined'],
  ]);
});

test('the coordinator limits members per group and forgets the oldest Empty group at its group limit', async (t) => {
  const h = harness({ maxGroupMembers: 2, maxGroups: 2 });
  await h.co.join(joinReq({ clientId: 'a' }));
  await h.co.join(joinReq({ clientId: 'p', requireKnownMemberId: true }));
  const third = await h.co.join(joinReq({ clientId: 'c' }));
  t.is(third.error, ErrorCode.GROUP_LIMIT);
  t.is(KAFKA_ERROR_FOR[third.error!], 81);

  const e = await h.co.join(joinReq({ groupId: 'e' }));
  h.co.leave('e', [{ memberId: e.memberId }]);
  t.is(h.co.describeGroup('e')!.state, 'Empty');
  t.is((await h.co.join(joinReq({ groupId: 'f' }))).error, null);
  t.is(h.co.describeGroup('e'), null, 'the Empty group made room');
  t.is((await h.co.join(joinReq({ groupId: 'h' }))).error, ErrorCode.GROUP_LIMIT);
});

test('deleteGroup forgets an Empty group (Dead), refuses one with members and an unknown one', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq());
  t.is(h.co.deleteGroup('g'), ErrorCode.GROUP_NOT_EMPTY);
  t.is(KAFKA_ERROR_FOR[ErrorCode.GROUP_NOT_EMPTY], 68);
  t.is(h.co.deleteGroup('nope'), ErrorCode.UNKNOWN_GROUP);
  t.deepEqual(h.co.leave('g', [{ memberId: a.memberId }]), { error: null, members: [{ memberId: a.memberId, groupInstanceId: null, error: null }] });
  t.is(h.co.deleteGroup('g'), null);
  t.is(h.co.describeGroup('g'), null);
  t.deepEqual(h.events.at(-1), { type: 'group-deleted', groupId: 'g' });
  t.is(h.timers.pending, 0);
});
