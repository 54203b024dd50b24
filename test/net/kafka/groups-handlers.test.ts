/**
 * The group handlers through the codec: each request is encoded and decoded as it
 * would arrive, handled by a real GroupCoordinator, and its response encoded and
 * decoded again, for every version of every window.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OffsetsStore } from '../../../src/index/offsets-store.js';
import { GroupCoordinator } from '../../../src/net/broker/coordinator.js';
import {
  handleDescribeGroups, handleHeartbeat, handleJoinGroup, handleLeaveGroup, handleListGroups, handleSyncGroup,
  offsetCommitError, type GroupHandlerContext,
} from '../../../src/net/kafka/handlers/groups.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, flattenFrame, type Message } from '../../../src/net/kafka/index.js';

type Handler = (ctx: GroupHandlerContext, version: number, body: Message) => Message | Promise<Message>;

async function call(ctx: GroupHandlerContext, key: number, version: number, body: Message, handler: Handler): Promise<Message> {
  const frame = encodeRequest({ apiKey: key, apiVersion: version, correlationId: 7, clientId: 'cli' }, body);
  const decoded = decodeRequest(frame.subarray(4));
  if (!decoded.supported) throw new Error('unsupported');
  const reply = await handler(ctx, version, decoded.body);
  const wire = flattenFrame(encodeResponse(key, version, 7, reply));
  const back = decodeResponse(key, version, wire.subarray(4));
  return back.body;
}

function context(t: { teardown(fn: () => void): void }): GroupHandlerContext {
  const coordinator = new GroupCoordinator({ initialRebalanceDelayMs: 0, minSessionTimeoutMs: 1000 });
  t.teardown(() => coordinator.close());
  return { coordinator, clientId: 'cli', clientHost: '/127.0.0.1' };
}

const join = (memberId: string, extra: Message = {}): Message => ({
  groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 20_000, memberId, groupInstanceId: null,
  protocolType: 'consumer', protocols: [{ name: 'roundrobin', metadata: Buffer.from('meta') }], ...extra,
});

for (let v = 0; v <= 7; v++) {
  test(`JoinGroup v${v}, SyncGroup, Heartbeat and LeaveGroup for one member`, async (t) => {
    const ctx = context(t);
    let r = await call(ctx, 11, v, join(''), handleJoinGroup);
    if (v >= 4) {
      t.is(r.errorCode, 79);
      t.is(r.generationId, -1);
      t.is(r.protocolName, v >= 7 ? null : '');
      t.regex(r.memberId as string, /^cli-/);
      r = await call(ctx, 11, v, join(r.memberId as string), handleJoinGroup);
    }
    const memberId = r.memberId as string;
    t.is(r.errorCode, 0);
    t.is(r.generationId, 1);
    t.is(r.protocolName, 'roundrobin');
    t.is(r.protocolType, v >= 7 ? 'consumer' : null);
    t.is(r.leader, memberId);
    t.deepEqual((r.members as Message[]).map((m) => [m.memberId, m.groupInstanceId, Buffer.from(m.metadata as Buffer).toString()]), [[memberId, null, 'meta']]);

    const sv = Math.min(v, 4);
    const s = await call(ctx, 14, sv, { groupId: 'g', generationId: 1, memberId, groupInstanceId: null, assignments: [{ memberId, assignment: Buffer.from('A') }] }, handleSyncGroup);
    t.is(s.errorCode, 0);
    t.is(Buffer.from(s.assignment as Buffer).toString(), 'A');
    t.is((await call(ctx, 12, sv, { groupId: 'g', generationId: 1, memberId, groupInstanceId: null }, handleHeartbeat)).errorCode, 0);
    t.is((await call(ctx, 12, sv, { groupId: 'g', generationId: 9, memberId, groupInstanceId: null }, handleHeartbeat)).errorCode, 22);

    const leaveBody = sv >= 3 ? { groupId: 'g', members: [{ memberId, groupInstanceId: null }, { memberId: 'ghost', groupInstanceId: null }] } : { groupId: 'g', memberId };
    const l = await call(ctx, 13, sv, leaveBody, handleLeaveGroup);
    t.is(l.errorCode, 0);
    if (sv >= 3) t.deepEqual(l.members, [{ memberId, groupInstanceId: null, errorCode: 0 }, { memberId: 'ghost', groupInstanceId: null, errorCode: 25 }]);
    t.is((await call(ctx, 12, sv, { groupId: 'g', generationId: 1, memberId, groupInstanceId: null }, handleHeartbeat)).errorCode, 25);
    if (sv < 3) t.is((await call(ctx, 13, sv, { groupId: 'g', memberId: 'ghost' }, handleLeaveGroup)).errorCode, 25, 'v0-2: the member error is the answer');
  });
}

test('JoinGroup v5+ with a group.instance.id joins at once and rejoins without a rebalance; the old id is fenced (82)', async (t) => {
  const ctx = context(t);
  const first = await call(ctx, 11, 5, join('', { groupInstanceId: 'host-1' }), handleJoinGroup);
  t.is(first.errorCode, 0);
  t.regex(first.memberId as string, /^host-1-/);
  t.deepEqual((first.members as Message[]).map((m) => m.groupInstanceId), ['host-1']);
  await call(ctx, 14, 3, { groupId: 'g', generationId: 1, memberId: first.memberId, groupInstanceId: 'host-1', assignments: [{ memberId: first.memberId, assignment: Buffer.from('x') }] }, handleSyncGroup);
  const again = await call(ctx, 11, 5, join('', { groupInstanceId: 'host-1' }), handleJoinGroup);
  t.is(again.generationId, 1);
  t.not(again.memberId, first.memberId);
  t.is((await call(ctx, 12, 3, { groupId: 'g', generationId: 1, memberId: first.memberId, groupInstanceId: 'host-1' }, handleHeartbeat)).errorCode, 82);
  const s = await call(ctx, 14, 3, { groupId: 'g', generationId: 1, memberId: again.memberId, groupInstanceId: 'host-1', assignments: [] }, handleSyncGroup);
  t.is(Buffer.from(s.assignment as Buffer).toString(), 'x');
});

test('JoinGroup errors: session timeout 26, protocol 23, unknown member 25, empty group id 24', async (t) => {
  const ctx = context(t);
  t.is((await call(ctx, 11, 3, join('', { sessionTimeoutMs: 10 }), handleJoinGroup)).errorCode, 26);
  t.is((await call(ctx, 11, 3, join('', { protocols: [] }), handleJoinGroup)).errorCode, 23);
  t.is((await call(ctx, 11, 3, join('who'), handleJoinGroup)).errorCode, 25);
  t.is((await call(ctx, 11, 3, join('', { groupId: '' }), handleJoinGroup)).errorCode, 24);
});

test('DescribeGroups shows a Stable group with metadata and assignments, a rebalancing one without, unknown groups Dead or (with offsets) Empty', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'groups-handlers-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const offsets = new OffsetsStore(dir);
  t.teardown(() => offsets.close());
  await offsets.commit('committed-only', [{ topic: 't', partition: 0, offset: 5 }]);
  const ctx = { ...context(t), offsets };
  const j = await call(ctx, 11, 3, join(''), handleJoinGroup);
  await call(ctx, 14, 2, { groupId: 'g', generationId: 1, memberId: j.memberId, assignments: [{ memberId: j.memberId, assignment: Buffer.from('asg') }] }, handleSyncGroup);
  await call(ctx, 11, 3, join('', { groupId: 'h' }), handleJoinGroup);

  for (const v of [0, 3, 4, 5]) {
    const d = await call(ctx, 15, v, { groups: ['g', 'h', 'committed-only', 'none'], includeAuthorizedOperations: false }, handleDescribeGroups);
    const groups = d.groups as Message[];
    t.deepEqual(groups.map((g) => [g.groupId, g.errorCode, g.groupState, g.protocolType, g.protocolData]), [
      ['g', 0, 'Stable', 'consumer', 'roundrobin'],
      ['h', 0, 'CompletingRebalance', 'consumer', ''],
      ['committed-only', 0, 'Empty', '', ''],
      ['none', 0, 'Dead', '', ''],
    ]);
    const m = (groups[0]!.members as Message[])[0]!;
    t.deepEqual([m.memberId, m.clientId, m.clientHost, Buffer.from(m.memberMetadata as Buffer).toString(), Buffer.from(m.memberAssignment as Buffer).toString()], [j.memberId, 'cli', '/127.0.0.1', 'meta', 'asg']);
    const hm = (groups[1]!.members as Message[])[0]!;
    t.is((hm.memberMetadata as Buffer).length, 0);
  }

  const all = await call(ctx, 16, 3, {}, handleListGroups);
  t.is(all.errorCode, 0);
  t.deepEqual((all.groups as Message[]).map((g) => [g.groupId, g.protocolType]), [['g', 'consumer'], ['h', 'consumer'], ['committed-only', '']]);
  const stable = await call(ctx, 16, 4, { statesFilter: ['Stable', 'Empty'] }, handleListGroups);
  t.deepEqual((stable.groups as Message[]).map((g) => [g.groupId, g.groupState]), [['g', 'Stable'], ['committed-only', 'Empty']]);
});

test('the OffsetCommit check answers 22, 25 and 27 as Kafka does, 0 for simple and current-generation commits', async (t) => {
  const ctx = context(t);
  const body = (memberId: string, generationIdOrMemberEpoch: number, groupId = 'g'): Message => ({ groupId, memberId, generationIdOrMemberEpoch, groupInstanceId: null });
  t.is(offsetCommitError(ctx.coordinator, 2, body('', -1, 'simple')), 0);
  t.is(offsetCommitError(ctx.coordinator, 2, body('m', 4, 'simple')), 22);
  t.is(offsetCommitError(undefined, 2, body('m', 4)), 0);
  const j = await call(ctx, 11, 3, join(''), handleJoinGroup);
  const member = j.memberId as string;
  t.is(offsetCommitError(ctx.coordinator, 8, body(member, 1)), 27);
  await call(ctx, 14, 2, { groupId: 'g', generationId: 1, memberId: member, assignments: [] }, handleSyncGroup);
  t.is(offsetCommitError(ctx.coordinator, 8, body(member, 1)), 0);
  t.is(offsetCommitError(ctx.coordinator, 8, body(member, 2)), 22);
  t.is(offsetCommitError(ctx.coordinator, 8, body('other', 1)), 25);
});
