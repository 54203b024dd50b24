import test from 'ava';
import { ErrorCode } from '../../../src/errors.js';
import { KAFKA_ERROR_FOR } from '../../../src/net/kafka/error-codes.js';
import { harness, joinReq, meta, settle, track, type Harness } from './coordinator-helpers.js';

/** Three dynamic members a (leader), b, c in a Stable generation 2 (a alone had generation 1). */
async function stableThree(h: Harness) {
  const a = await h.co.join(joinReq({ clientId: 'a' }));
  const b = track(h.co.join(joinReq({ clientId: 'b' })));
  const c = track(h.co.join(joinReq({ clientId: 'c' })));
  await h.co.join(joinReq({ memberId: a.memberId }));
  await settle();
  const ids = [a.memberId, b.value!.memberId, c.value!.memberId] as const;
  const followers = ids.slice(1).map((m) => h.co.sync({ groupId: 'g', memberId: m, generationId: 2, assignments: [] }));
  await h.co.sync({ groupId: 'g', memberId: ids[0], generationId: 2, assignments: ids.map((m, i) => ({ memberId: m, assignment: meta(`p${i}`) })) });
  await Promise.all(followers);
  return ids;
}

/** Static members s1 (leader, instance i-1) and s2 (instance i-2) in a Stable generation 2. */
async function stableStatic(h: Harness) {
  const s1 = await h.co.join(joinReq({ clientId: 'x', groupInstanceId: 'i-1', requireKnownMemberId: true, protocols: [{ name: 'range', metadata: meta('S1') }] }));
  const s2p = track(h.co.join(joinReq({ clientId: 'y', groupInstanceId: 'i-2', requireKnownMemberId: true, protocols: [{ name: 'range', metadata: meta('S2') }] })));
  await h.co.join(joinReq({ memberId: s1.memberId, groupInstanceId: 'i-1', protocols: [{ name: 'range', metadata: meta('S1') }] }));
  await settle();
  const s2 = s2p.value!;
  const f = h.co.sync({ groupId: 'g', memberId: s2.memberId, generationId: 2, groupInstanceId: 'i-2', assignments: [] });
  await h.co.sync({ groupId: 'g', memberId: s1.memberId, generationId: 2, groupInstanceId: 'i-1', assignments: [{ memberId: s1.memberId, assignment: meta('A1') }, { memberId: s2.memberId, assignment: meta('A2') }] });
  await f;
  return { s1: s1.memberId, s2: s2.memberId };
}

test('LeaveGroup of several members (v3+) answers per member and the rest rebalance; the leader role moves on', async (t) => {
  const h = harness();
  const [a, b, c] = await stableThree(h);
  const r = h.co.leave('g', [{ memberId: a }, { memberId: 'ghost' }, { memberId: b }]);
  t.deepEqual(r, {
    error: null,
    members: [
      { memberId: a, groupInstanceId: null, error: null },
      { memberId: 'ghost', groupInstanceId: null, error: ErrorCode.UNKNOWN_MEMBER },
      { memberId: b, groupInstanceId: null, error: null },
    ],
  });
  const d = h.co.describeGroup('g')!;
  t.is(d.state, 'PreparingRebalance');
  t.deepEqual(d.members.map((m) => m.memberId), [c]);
  t.is(d.leaderId, c);
  t.is(h.co.heartbeat({ groupId: 'g', memberId: a, generationId: 2 }).error, ErrorCode.UNKNOWN_MEMBER);
  const cj = await h.co.join(joinReq({ memberId: c }));
  t.is(cj.generationId, 3);
  t.is(cj.leaderId, c);
  t.deepEqual(cj.members.map((m) => m.memberId), [c]);

  t.deepEqual(h.co.leave('g', [{ memberId: c }]).members[0]!.error, null);
  const after = h.co.describeGroup('g')!;
  t.is(after.state, 'Empty');
  t.is(after.generationId, 4);
  t.is(after.leaderId, '');
  t.deepEqual(h.co.leave('nogroup', [{ memberId: c }]), { error: null, members: [{ memberId: c, groupInstanceId: null, error: ErrorCode.UNKNOWN_MEMBER }] });
});

test('a member leaving while its JoinGroup is parked gets UNKNOWN_MEMBER; the others complete without it', async (t) => {
  const h = harness();
  const [a, b, c] = await stableThree(h);
  const bj = track(h.co.join(joinReq({ memberId: b, protocols: [{ name: 'range', metadata: meta('new') }] })));
  const aj = track(h.co.join(joinReq({ memberId: a })));
  await settle();
  t.false(bj.done);
  h.co.leave('g', [{ memberId: b }]);
  await settle();
  t.is(bj.value!.error, ErrorCode.UNKNOWN_MEMBER);
  t.false(aj.done, 'c has not rejoined yet');
  await h.co.join(joinReq({ memberId: c }));
  await settle();
  t.is(aj.value!.generationId, 3);
  t.deepEqual(aj.value!.members.map((m) => m.memberId), [a, c]);
});

test('a static member rejoining with an empty id and the same metadata replaces its old id without a rebalance', async (t) => {
  const h = harness();
  const { s1, s2 } = await stableStatic(h);
  const before = h.co.stats().rebalances;
  const re = await h.co.join(joinReq({ clientId: 'y', groupInstanceId: 'i-2', requireKnownMemberId: true, protocols: [{ name: 'range', metadata: meta('S2') }] }));
  t.is(re.error, null);
  t.regex(re.memberId, /^i-2-[0-9a-f-]{36}$/);
  t.not(re.memberId, s2);
  t.deepEqual({ ...re, memberId: 'new' }, { error: null, memberId: 'new', generationId: 2, protocolType: 'consumer', protocolName: 'range', leaderId: s1, members: [] });
  t.is(h.co.stats().rebalances, before);
  const d = h.co.describeGroup('g')!;
  t.is(d.state, 'Stable');
  t.deepEqual(d.members.map((m) => [m.memberId, m.groupInstanceId, m.assignment.toString()]), [[s1, 'i-1', 'A1'], [re.memberId, 'i-2', 'A2']]);
  const synced = await h.co.sync({ groupId: 'g', memberId: re.memberId, generationId: 2, groupInstanceId: 'i-2', assignments: [] });
  t.deepEqual(synced.assignment, meta('A2'));

  // The old id is fenced everywhere it carries the instance id.
  const hb = h.co.heartbeat({ groupId: 'g', memberId: s2, generationId: 2, groupInstanceId: 'i-2' });
  t.is(hb.error, ErrorCode.FENCED_INSTANCE_ID);
  t.is(KAFKA_ERROR_FOR[hb.error!], 82);
  t.is((await h.co.sync({ groupId: 'g', memberId: s2, generationId: 2, groupInstanceId: 'i-2', assignments: [] })).error, ErrorCode.FENCED_INSTANCE_ID);
  t.is((await h.co.join(joinReq({ memberId: s2, groupInstanceId: 'i-2' }))).error, ErrorCode.FENCED_INSTANCE_ID);
  t.is(h.co.validateCommit('g', s2, 2, 'i-2'), ErrorCode.FENCED_INSTANCE_ID);
  t.is(h.co.heartbeat({ groupId: 'g', memberId: s2, generationId: 2 }).error, ErrorCode.UNKNOWN_MEMBER);
  t.is(h.co.heartbeat({ groupId: 'g', memberId: re.memberId, generationId: 2, groupInstanceId: 'i-2' }).error, null);
});

test('a static leader rejoining unchanged is answered the old leader id, so it does not recompute; its new id leads from then on', async (t) => {
  const h = harness();
  const { s1, s2 } = await stableStatic(h);
  const re = await h.co.join(joinReq({ clientId: 'x', groupInstanceId: 'i-1', protocols: [{ name: 'range', metadata: meta('S1') }] }));
  t.is(re.leaderId, s1);
  t.is(re.generationId, 2);
  t.is(h.co.describeGroup('g')!.leaderId, re.memberId);
  // Next rebalance: the new id is the leader and gets both members.
  const j2 = track(h.co.join(joinReq({ memberId: s2, groupInstanceId: 'i-2', protocols: [{ name: 'range', metadata: meta('S2b') }] })));
  const j1 = await h.co.join(joinReq({ memberId: re.memberId, groupInstanceId: 'i-1', protocols: [{ name: 'range', metadata: meta('S1') }] }));
  await settle();
  t.is(j1.generationId, 3);
  t.is(j1.leaderId, re.memberId);
  t.deepEqual(j1.members.map((m) => [m.memberId, m.groupInstanceId, m.metadata.toString()]), [[re.memberId, 'i-1', 'S1'], [s2, 'i-2', 'S2b']]);
  t.is(j2.value!.leaderId, re.memberId);
});

test('a static member rejoining with changed metadata rebalances; its parked JoinGroup under the old id is fenced', async (t) => {
  const h = harness();
  const { s1, s2 } = await stableStatic(h);
  const parkedOld = track(h.co.join(joinReq({ memberId: s2, groupInstanceId: 'i-2', protocols: [{ name: 'range', metadata: meta('S2x') }] })));
  await settle();
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
  const re = track(h.co.join(joinReq({ groupInstanceId: 'i-2', protocols: [{ name: 'range', metadata: meta('S2y') }] })));
  await settle();
  t.is(parkedOld.value!.error, ErrorCode.FENCED_INSTANCE_ID);
  t.is(parkedOld.value!.memberId, s2);
  t.false(re.done);
  const j1 = await h.co.join(joinReq({ memberId: s1, groupInstanceId: 'i-1', protocols: [{ name: 'range', metadata: meta('S1') }] }));
  await settle();
  t.is(j1.generationId, 3);
  t.deepEqual(j1.members.map((m) => m.metadata.toString()), ['S1', 'S2y']);
  t.is(re.value!.generationId, 3);
});

test('a static member not rejoining in time stays in the group; it leaves by instance id; a stale id cannot make it leave', async (t) => {
  const h = harness();
  const { s1, s2 } = await stableStatic(h);
  const j1 = track(h.co.join(joinReq({ memberId: s1, groupInstanceId: 'i-1', protocols: [{ name: 'range', metadata: meta('S1') }] })));
  h.co.heartbeat({ groupId: 'g', memberId: s2, generationId: 2, groupInstanceId: 'i-2' });
  h.timers.advance(5000);
  await settle();
  t.is(j1.value!.generationId, 3);
  t.deepEqual(j1.value!.members.map((m) => m.memberId), [s1, s2], 'static members keep their place');
  t.deepEqual(h.co.leave('g', [{ memberId: 'stale', groupInstanceId: 'i-2' }]).members[0], { memberId: 'stale', groupInstanceId: 'i-2', error: ErrorCode.FENCED_INSTANCE_ID });
  t.deepEqual(h.co.leave('g', [{ memberId: '', groupInstanceId: 'i-9' }]).members[0]!.error, ErrorCode.UNKNOWN_MEMBER);
  t.deepEqual(h.co.leave('g', [{ memberId: '', groupInstanceId: 'i-2' }]).members[0], { memberId: '', groupInstanceId: 'i-2', error: null });
  t.deepEqual(h.co.describeGroup('g')!.members.map((m) => m.memberId), [s1]);
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
});

test('validateCommit follows Kafka: simple consumers into memberless groups, members on the current generation outside CompletingRebalance', async (t) => {
  const h = harness();
  t.is(h.co.validateCommit('nogroup', '', -1), null);
  t.is(h.co.validateCommit('nogroup', 'm', 3), ErrorCode.ILLEGAL_GENERATION);
  const a = await h.co.join(joinReq({ clientId: 'a' }));
  // CompletingRebalance: the member knows its generation but has no assignment yet.
  const r1 = h.co.validateCommit('g', a.memberId, 1);
  t.is(r1, ErrorCode.REBALANCE_IN_PROGRESS);
  t.is(KAFKA_ERROR_FOR[r1!], 27);
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [] });
  t.is(h.co.validateCommit('g', a.memberId, 1), null);
  t.is(h.co.validateCommit('g', a.memberId, 0), ErrorCode.ILLEGAL_GENERATION);
  t.is(h.co.validateCommit('g', 'stranger', 1), ErrorCode.UNKNOWN_MEMBER);
  t.is(h.co.validateCommit('g', '', -1), ErrorCode.UNKNOWN_MEMBER, 'a simple consumer may not commit into a group with members');
  // PreparingRebalance: members commit before they rejoin.
  void h.co.join(joinReq({ clientId: 'b' }));
  t.is(h.co.describeGroup('g')!.state, 'PreparingRebalance');
  t.is(h.co.validateCommit('g', a.memberId, 1), null);
  h.co.leave('g', [{ memberId: a.memberId }]);
  h.timers.advance(5000);
  // Empty again (b never sent SyncGroup and was removed): simple commits are allowed once more.
  const d = h.co.describeGroup('g')!;
  h.co.leave('g', d.members.map((m) => ({ memberId: m.memberId })));
  t.is(h.co.describeGroup('g')!.state, 'Empty');
  t.is(h.co.validateCommit('g', '', -1), null);
  t.is(h.co.validateCommit('g', a.memberId, 1), ErrorCode.UNKNOWN_MEMBER);
});

test('a commit keeps the member\'s session alive', async (t) => {
  const h = harness();
  const a = await h.co.join(joinReq({ sessionTimeoutMs: 10_000 }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [] });
  h.timers.advance(9_000);
  t.is(h.co.validateCommit('g', a.memberId, 1), null);
  h.timers.advance(9_000);
  t.is(h.co.describeGroup('g')!.members.length, 1);
  h.timers.advance(1_000);
  t.is(h.co.describeGroup('g')!.members.length, 0);
});

test('close() answers every parked JoinGroup and SyncGroup COORDINATOR_CLOSED, stops every timer and refuses later calls', async (t) => {
  const h = harness();
  const [a, b] = await stableThree(h);
  const newcomer = track(h.co.join(joinReq({ clientId: 'd' })));
  const aj = track(h.co.join(joinReq({ memberId: a })));
  await settle();
  t.false(newcomer.done || aj.done);
  const other = await h.co.join(joinReq({ groupId: 'o', clientId: 'o' }));
  const os = track(h.co.sync({ groupId: 'o', memberId: other.memberId, generationId: 1, assignments: [] }));
  const second = track(h.co.join(joinReq({ groupId: 'o', clientId: 'o2' })));
  void os;
  await settle();
  const o2 = await h.co.join(joinReq({ groupId: 'p', clientId: 'p1' }));
  const p2 = track(h.co.join(joinReq({ groupId: 'p', clientId: 'p2' })));
  await h.co.join(joinReq({ groupId: 'p', memberId: o2.memberId }));
  await settle();
  const pSync = track(h.co.sync({ groupId: 'p', memberId: p2.value!.memberId, generationId: 2, assignments: [] }));
  await settle();
  t.false(pSync.done);

  h.co.close();
  await settle();
  t.is(newcomer.value!.error, ErrorCode.COORDINATOR_CLOSED);
  t.is(KAFKA_ERROR_FOR[ErrorCode.COORDINATOR_CLOSED], 16);
  t.is(aj.value!.error, ErrorCode.COORDINATOR_CLOSED);
  t.is(second.value!.error, ErrorCode.COORDINATOR_CLOSED);
  t.deepEqual(pSync.value, { error: ErrorCode.COORDINATOR_CLOSED, assignment: Buffer.alloc(0), protocolType: null, protocolName: null });
  t.is(h.timers.pending, 0);
  t.is((await h.co.join(joinReq())).error, ErrorCode.COORDINATOR_CLOSED);
  t.is((await h.co.sync({ groupId: 'g', memberId: b, generationId: 2, assignments: [] })).error, ErrorCode.COORDINATOR_CLOSED);
  t.is(h.co.heartbeat({ groupId: 'g', memberId: b, generationId: 2 }).error, ErrorCode.COORDINATOR_CLOSED);
  t.is(h.co.leave('g', [{ memberId: b }]).error, ErrorCode.COORDINATOR_CLOSED);
  t.is(h.co.validateCommit('g', b, 2), ErrorCode.COORDINATOR_CLOSED);
  t.deepEqual(h.co.listGroups(), []);
});

test('stored metadata and assignments are copies, not views of the request buffers', async (t) => {
  const h = harness();
  const frame = Buffer.from('XXmetaXXassign');
  const a = await h.co.join(joinReq({ protocols: [{ name: 'range', metadata: frame.subarray(2, 6) }] }));
  await h.co.sync({ groupId: 'g', memberId: a.memberId, generationId: 1, assignments: [{ memberId: a.memberId, assignment: frame.subarray(8) }] });
  frame.fill(0);
  const m = h.co.describeGroup('g')!.members[0]!;
  t.is(m.metadata.toString(), 'meta');
  t.is(m.assignment.toString(), 'assign');
});
