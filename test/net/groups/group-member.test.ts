/**
 * GroupMember (src/net/client/group-member.ts) against the real GroupCoordinator,
 * in process: the transport calls the coordinator directly, so these tests check the
 * member's state machine and the assignment it computes, not a wire format.
 */
import test from 'ava';
import { ErrorCode, type CommitLogError } from '../../../src/errors.js';
import { GroupCoordinator } from '../../../src/net/broker/coordinator.js';
import { connectionError } from '../../../src/net/client/client-types.js';
import { GroupMember, type GroupTransport } from '../../../src/net/client/group-member.js';
import { rangeAssignor, roundRobinAssignor } from '../../../src/net/groups/assignors.js';
import type { TopicPartitions } from '../../../src/net/groups/consumer-protocol.js';
import { until } from '../../helpers/until.js';

interface Link extends GroupTransport {
  /** While true every call fails as a lost connection would. */
  down: boolean;
}

function link(c: GroupCoordinator, counts: Record<string, number>): Link {
  const refuse = (): never => {
    throw connectionError('connection reset (test)', 'ECONNRESET');
  };
  const l: Link = {
    down: false,
    join: async (req) => (l.down ? refuse() : c.join(req)),
    sync: async (req) => (l.down ? refuse() : c.sync(req)),
    heartbeat: async (req) => (l.down ? refuse() : c.heartbeat(req)),
    leave: async (req) => (l.down ? refuse() : c.leave(req.groupId, [{ memberId: req.memberId, groupInstanceId: req.groupInstanceId }])),
    partitionCounts: async (topics) => new Map(topics.filter((t) => counts[t] !== undefined).map((t) => [t, counts[t]!])),
  };
  return l;
}

interface Probe {
  member: GroupMember;
  link: Link;
  /** The member's partitions after its latest assignment ([] after a revoke). */
  owned: string[];
  revokes: { partitions: string[]; lost: boolean }[];
  generations: number[];
  errors: CommitLogError[];
}

function flat(tps: TopicPartitions[]): string[] {
  return tps.flatMap((tp) => tp.partitions.map((p) => `${tp.topic}/${p}`)).sort();
}

function probe(c: GroupCoordinator, name: string, options: { topics?: string[]; counts?: Record<string, number>; instance?: string; assignors?: typeof rangeAssignor[] } = {}): Probe {
  const l = link(c, options.counts ?? { orders: 6 });
  const p: Probe = { link: l, owned: [], revokes: [], generations: [], errors: [], member: undefined as unknown as GroupMember };
  p.member = new GroupMember(
    {
      groupId: 'billing', topics: options.topics ?? ['orders'], assignors: options.assignors ?? [rangeAssignor, roundRobinAssignor],
      sessionTimeoutMs: 400, rebalanceTimeoutMs: 2000, heartbeatIntervalMs: 40, groupInstanceId: options.instance ?? null,
      clientId: name, retryBackoffMs: 20, retryBackoffMaxMs: 100,
    },
    l,
    {
      onAssigned: (tps, generation) => {
        p.owned = flat(tps);
        p.generations.push(generation);
      },
      onRevoked: (tps, lost) => {
        p.revokes.push({ partitions: flat(tps), lost });
        p.owned = [];
      },
      onError: (err) => p.errors.push(err),
    },
  );
  return p;
}


function coordinator(): GroupCoordinator {
  return new GroupCoordinator({ initialRebalanceDelayMs: 0, minSessionTimeoutMs: 100 });
}

/** Every member settled on one generation, owning between them every partition exactly once. */
function settled(ps: Probe[], all: string[]): boolean {
  const owned = ps.flatMap((p) => p.owned).sort();
  const gens = new Set(ps.map((p) => p.member.commitIdentity.generationId));
  return gens.size === 1 && !gens.has(-1) && JSON.stringify(owned) === JSON.stringify(all) && ps.every((p) => p.member.assignment.length > 0);
}

const SIX = [0, 1, 2, 3, 4, 5].map((p) => `orders/${p}`);

test('three members split six partitions by range, in member-id order; the group is Stable', async (t) => {
  const c = coordinator();
  const ps = [probe(c, 'a'), probe(c, 'b'), probe(c, 'c')];
  for (const p of ps) p.member.start();
  await until('a settled group', () => settled(ps, SIX));
  const byId = [...ps].sort((x, y) => (x.member.commitIdentity.memberId < y.member.commitIdentity.memberId ? -1 : 1));
  t.deepEqual(byId.map((p) => p.owned), [['orders/0', 'orders/1'], ['orders/2', 'orders/3'], ['orders/4', 'orders/5']]);
  const d = c.describeGroup('billing')!;
  t.is(d.state, 'Stable');
  t.is(d.protocolName, 'range');
  t.is(d.members.length, 3);
  await Promise.all(ps.map((p) => p.member.close()));
  t.is(c.describeGroup('billing')?.state, 'Empty');
  t.deepEqual(ps.flatMap((p) => p.errors), []);
  c.close();
});

test('a member that leaves: its partitions are revoked (not lost) and the other two take all six', async (t) => {
  const c = coordinator();
  const ps = [probe(c, 'a'), probe(c, 'b'), probe(c, 'c')];
  for (const p of ps) p.member.start();
  await until('a settled group', () => settled(ps, SIX));
  const [gone, ...stay] = ps;
  const had = gone!.owned;
  await gone!.member.close();
  t.deepEqual(gone!.revokes.at(-1), { partitions: had, lost: false });
  await until('two members own all six', () => settled(stay, SIX));
  t.true(stay.every((p) => p.owned.length === 3));
  // Both gave their partitions up (not lost) before the new generation.
  t.true(stay.every((p) => p.revokes.length >= 1 && p.revokes.every((r) => !r.lost)));
  await Promise.all(stay.map((p) => p.member.close()));
  c.close();
});

test('a member that goes silent is removed after its session timeout; it finds itself lost and rejoins as a new member', async (t) => {
  const c = coordinator();
  const ps = [probe(c, 'a'), probe(c, 'b'), probe(c, 'c')];
  for (const p of ps) p.member.start();
  await until('a settled group', () => settled(ps, SIX));
  const [silent, ...stay] = ps;
  const oldId = silent!.member.commitIdentity.memberId;
  silent!.link.down = true;
  await until('the others own all six', () => settled(stay, SIX));
  await until('the silent member revoked as lost', () => silent!.revokes.some((r) => r.lost));
  t.false(c.describeGroup('billing')!.members.some((m) => m.memberId === oldId));
  silent!.link.down = false;
  await until('three members again', () => settled(ps, SIX));
  t.not(silent!.member.commitIdentity.memberId, oldId);
  await Promise.all(ps.map((p) => p.member.close()));
  c.close();
});

test('members subscribed to different topics; roundrobin chosen when it is the only common assignor', async (t) => {
  const c = coordinator();
  const counts = { x: 2, y: 3 };
  const a = probe(c, 'a', { topics: ['x', 'y'], counts, assignors: [roundRobinAssignor] });
  const b = probe(c, 'b', { topics: ['y'], counts, assignors: [rangeAssignor, roundRobinAssignor] });
  a.member.start();
  b.member.start();
  const all = ['x/0', 'x/1', 'y/0', 'y/1', 'y/2'];
  await until('a settled group', () => settled([a, b], all));
  t.is(c.describeGroup('billing')!.protocolName, 'roundrobin');
  t.true(a.owned.includes('x/0') && a.owned.includes('x/1'));
  await Promise.all([a.member.close(), b.member.close()]);
  c.close();
});

test('a join the coordinator refuses for good stops the member with that error', async (t) => {
  const c = new GroupCoordinator({ initialRebalanceDelayMs: 0, minSessionTimeoutMs: 1000 });
  const p = probe(c, 'a');
  p.member.start();
  await until('an error', () => p.errors.length > 0);
  t.is(p.errors[0]!.code, ErrorCode.INVALID_SESSION_TIMEOUT);
  t.deepEqual(p.generations, []);
  await p.member.close();
  c.close();
});

test('members with no assignor in common: the one that joins second is refused ERR_INCONSISTENT_GROUP_PROTOCOL, the first keeps its partitions', async (t) => {
  const c = coordinator();
  // kafkajs names its default assignor RoundRobinAssigner; commitlog offers range and roundrobin.
  const kafkajsLike = { name: 'RoundRobinAssigner', assign: roundRobinAssignor.assign };
  const first = probe(c, 'kafkajs-like', { assignors: [kafkajsLike] });
  first.member.start();
  await until('the first member assigned', () => first.owned.length === 6);
  const second = probe(c, 'commitlog');
  second.member.start();
  await until('an error', () => second.errors.length > 0);
  t.is(second.errors[0]!.code, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  t.is(first.owned.length, 6);
  t.deepEqual(first.errors, []);
  await Promise.all([first.member.close(), second.member.close()]);
  c.close();
});
