/**
 * Random sequences of joins, syncs, heartbeats, leaves, commits and time passing
 * against one group, checking after every step what must always hold: no call throws,
 * the state matches the membership, the leader is a member, the generation never goes
 * back, and every parked JoinGroup and SyncGroup is answered within bounded time.
 */
import test from 'ava';
import fc from 'fast-check';
import type { JoinGroupResult, SyncGroupResult } from '../../../src/net/broker/coordinator.js';
import { harness, joinReq, meta, track, type Tracked } from './coordinator-helpers.js';

type Op =
  | { kind: 'joinNew'; client: number; v4: boolean; instance: number | null; protocols: number }
  | { kind: 'rejoin'; pick: number; protocols: number }
  | { kind: 'sync'; pick: number; staleGen: boolean; assign: boolean }
  | { kind: 'heartbeat'; pick: number; staleGen: boolean }
  | { kind: 'leave'; picks: number[]; byInstance: boolean }
  | { kind: 'commit'; pick: number }
  | { kind: 'advance'; ms: number };

const PROTOCOL_SETS = [
  [{ name: 'range', metadata: meta('r') }],
  [{ name: 'roundrobin', metadata: meta('rr') }, { name: 'range', metadata: meta('r2') }],
  [{ name: 'range', metadata: meta('changed') }],
];

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('joinNew' as const), client: fc.nat(3), v4: fc.boolean(), instance: fc.option(fc.nat(2), { nil: null }), protocols: fc.nat(2) }),
  fc.record({ kind: fc.constant('rejoin' as const), pick: fc.nat(), protocols: fc.nat(2) }),
  fc.record({ kind: fc.constant('sync' as const), pick: fc.nat(), staleGen: fc.boolean(), assign: fc.boolean() }),
  fc.record({ kind: fc.constant('heartbeat' as const), pick: fc.nat(), staleGen: fc.boolean() }),
  fc.record({ kind: fc.constant('leave' as const), picks: fc.array(fc.nat(), { maxLength: 3 }), byInstance: fc.boolean() }),
  fc.record({ kind: fc.constant('commit' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 12_000 }) }),
);

test('random group traffic keeps the coordinator consistent and answers every parked request', (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed}`);
  fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
    const h = harness({ initialRebalanceDelayMs: 1000 });
    const ids: { memberId: string; instance: string | null }[] = [];
    const parked: Tracked<JoinGroupResult | SyncGroupResult>[] = [];
    let lastGeneration = 0;
    const pick = (i: number) => ids[i % Math.max(ids.length, 1)];
    const generation = () => h.co.describeGroup('g')?.generationId ?? 0;
    const remember = (p: Promise<JoinGroupResult>, instance: string | null) => {
      parked.push(track(p));
      void p.then((r) => { if (r.memberId !== '' && !ids.some((x) => x.memberId === r.memberId)) ids.push({ memberId: r.memberId, instance }); });
    };
    for (const o of ops) {
      switch (o.kind) {
        case 'joinNew': {
          const instance = o.instance === null ? null : `i-${o.instance}`;
          remember(h.co.join(joinReq({ clientId: `c${o.client}`, groupInstanceId: instance, requireKnownMemberId: o.v4, protocols: PROTOCOL_SETS[o.protocols]! })), instance);
          break;
        }
        case 'rejoin': {
          const m = pick(o.pick);
          if (m !== undefined) remember(h.co.join(joinReq({ memberId: m.memberId, groupInstanceId: m.instance, protocols: PROTOCOL_SETS[o.protocols]! })), m.instance);
          break;
        }
        case 'sync': {
          const m = pick(o.pick);
          if (m === undefined) break;
          const assignments = o.assign ? ids.map((x, i) => ({ memberId: x.memberId, assignment: meta(`a${i}`) })) : [];
          parked.push(track(h.co.sync({ groupId: 'g', memberId: m.memberId, groupInstanceId: m.instance, generationId: o.staleGen ? generation() - 1 : generation(), assignments })));
          break;
        }
        case 'heartbeat': {
          const m = pick(o.pick);
          if (m !== undefined) h.co.heartbeat({ groupId: 'g', memberId: m.memberId, groupInstanceId: m.instance, generationId: o.staleGen ? generation() + 1 : generation() });
          break;
        }
        case 'leave': {
          const leaving = o.picks.map(pick).filter((m) => m !== undefined).map((m) => ({ memberId: o.byInstance && m!.instance !== null ? '' : m!.memberId, groupInstanceId: o.byInstance ? m!.instance : null }));
          h.co.leave('g', leaving);
          break;
        }
        case 'commit': {
          const m = pick(o.pick);
          h.co.validateCommit('g', m?.memberId ?? '', m === undefined ? -1 : generation());
          break;
        }
        case 'advance':
          h.timers.advance(o.ms);
          break;
      }
      await Promise.resolve();
      const d = h.co.describeGroup('g');
      if (d === null) continue;
      if (d.generationId < lastGeneration) throw new Error(`generation went back from ${lastGeneration} to ${d.generationId}`);
      lastGeneration = d.generationId;
      if (d.state === 'Empty' && d.members.length > 0) throw new Error('Empty group with members');
      if ((d.state === 'Stable' || d.state === 'CompletingRebalance') && !d.members.some((m) => m.memberId === d.leaderId)) {
        throw new Error(`${d.state} group whose leader ${d.leaderId} is not a member`);
      }
      if (d.members.length === 0 && d.state !== 'Empty' && d.state !== 'PreparingRebalance') throw new Error(`${d.state} group without members`);
      if (h.co.stats().members !== d.members.length) throw new Error('stats disagree with describeGroup');
    }
    // Longest chain: a rebalance timeout (5 s), then a sync timeout, then another rebalance.
    for (let i = 0; i < 10; i++) {
      h.timers.advance(10_000);
      await new Promise((r) => setImmediate(r));
    }
    const stuck = parked.filter((p) => !p.done).length;
    if (stuck > 0) throw new Error(`${stuck} parked requests never answered`);
    h.co.close();
    if (h.timers.pending !== 0) throw new Error(`${h.timers.pending} timers left after close`);
  }), { seed, numRuns: 300 });
  t.pass();
});
