/**
 * Issue 11's proof with real processes: three Consumer processes of one group on a
 * 6-partition topic, against a broker process.
 * - While membership is stable every record is handled by exactly one member.
 * - A member that leaves (SIGTERM) and one that is SIGKILLed lose their partitions to
 *   the others (within the session timeout for the kill), and no record is handled
 *   again once a commit covers it: each handling is checked, as its line arrives,
 *   against the highest commit acknowledged so far for its partition (a record may be
 *   handled twice only past the last commit: at least once).
 * - A broker restart keeps the committed offsets: the survivor resumes after them.
 * The rebalance times are printed (t.log) for the closing note; no test asserts a time.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin } from '../../../src/net/client/admin.js';
import { Producer } from '../../../src/net/client/producer.js';
import { BrokerChild, freePort } from '../client-helpers.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..', '..');

interface Member {
  name: string;
  child: ChildProcess;
  /** `${partition}:${offset}` of every record handled, in order. */
  handled: string[];
  /** Per partition, the highest next-offset whose commit was acknowledged. */
  committed: Map<number, number>;
  /** Latest assignment. */
  owns: number[];
  assignedAt: number;
  exited: Promise<void>;
  stderr: string;
}

/** Per partition, the highest next-offset any member's acknowledged commit reached so far (as the lines arrive). */
const committedSoFar = new Map<number, number>();
/** Records handled while already committed: the invariant is that there are none. */
const handledAfterCommit: string[] = [];

function spawnMember(name: string, broker: string): Member {
  const child = spawn(process.execPath, ['--import=tsx', path.join(here, 'group-child.ts'), broker], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const m: Member = { name, child, handled: [], committed: new Map(), owns: [], assignedAt: 0, stderr: '', exited: new Promise((r) => child.once('exit', () => r())) };
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const [kind, a, b] = line.split(' ');
      if (kind === 'H') {
        m.handled.push(`${a}:${b}`);
        if (Number(b) < (committedSoFar.get(Number(a)) ?? 0)) handledAfterCommit.push(`${a}:${b} by ${name}`);
      } else if (kind === 'C') {
        m.committed.set(Number(a), Math.max(m.committed.get(Number(a)) ?? 0, Number(b)));
        committedSoFar.set(Number(a), Math.max(committedSoFar.get(Number(a)) ?? 0, Number(b)));
      }
      else if (kind === 'A') {
        m.owns = a === '' || a === undefined ? [] : a.split(',').map(Number);
        m.assignedAt = Date.now();
      } else if (kind === 'R') m.owns = [];
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (m.stderr += d));
  return m;
}


function owned(ms: Member[]): string {
  return JSON.stringify(ms.flatMap((m) => m.owns).sort((a, b) => a - b));
}

test('three member processes share six partitions; leave, SIGKILL and a broker restart move them without re-handling a committed record', async (t) => {
  t.timeout(180_000);
  const dir = tmpDir(t, 'group-processes-');
  const broker = new BrokerChild(t, dir, await freePort(), ['--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '500']);
  await broker.start();
  const admin = new Admin({ broker: broker.address });
  t.teardown(() => admin.close());
  await admin.createTopic('orders', { partitions: 6 });
  const producer = new Producer({ broker: broker.address, lingerMs: 0 });
  t.teardown(() => producer.close());
  let produced = 0;
  const wave = async (perPartition: number): Promise<void> => {
    for (let p = 0; p < 6; p++) {
      await producer.send('orders', Array.from({ length: perPartition }, (_, i) => ({ value: `v${produced + i}` })), { partition: p });
    }
    produced += perPartition;
  };

  const members = [spawnMember('a', broker.address), spawnMember('b', broker.address), spawnMember('c', broker.address)];
  t.teardown(() => {
    for (const m of members) m.child.kill('SIGKILL');
  });
  const state = (): string => members.map((m) => `${m.name} owns [${m.owns.join(',')}] handled ${m.handled.length} stderr ${m.stderr.slice(-500)}`).join('; ');
  await until('a stable split', () => owned(members) === '[0,1,2,3,4,5]' && members.every((m) => m.owns.length === 2), 60_000, state);

  const handledCount = (): number => members.reduce((n, m) => n + m.handled.length, 0);
  await wave(20);
  await until('120 handled', () => handledCount() >= 120);
  const stable = members.flatMap((m) => m.handled);
  t.is(stable.length, 120);
  t.is(new Set(stable).size, 120, 'while membership is stable each record is handled once');

  // Leave: SIGTERM closes the consumer, which commits and leaves the group.
  const [a, b, c] = members as [Member, Member, Member];
  const leftAt = Date.now();
  a.child.kill('SIGTERM');
  await a.exited;
  t.is(a.child.exitCode, 0);
  await until('b and c own all six', () => owned([b, c]) === '[0,1,2,3,4,5]' && b.assignedAt > leftAt && c.assignedAt > leftAt);
  t.log(`rebalance after a leave: ${Math.max(b.assignedAt, c.assignedAt) - leftAt} ms`);
  await wave(20);
  await until('240 handled', () => new Set(members.flatMap((m) => m.handled)).size >= 240);

  // Kill: b dies without leaving; c gets everything once b's session (2 s) expires.
  const killedAt = Date.now();
  b.child.kill('SIGKILL');
  await b.exited;
  await until('c owns all six', () => owned([c]) === '[0,1,2,3,4,5]' && c.assignedAt > killedAt);
  t.log(`rebalance after a SIGKILL (session timeout 2000 ms): ${c.assignedAt - killedAt} ms`);
  await wave(20);
  await until('360 handled', () => new Set(members.flatMap((m) => m.handled)).size >= 360);

  // Broker restart: committed offsets survive; c rejoins and resumes after them.
  const committedBefore = await admin.describeGroup('billing', 'orders');
  await broker.stop('SIGTERM');
  await broker.start();
  const committedAfter = await admin.describeGroup('billing', 'orders');
  t.deepEqual(committedAfter.partitions.map((p) => p.committedOffset), committedBefore.partitions.map((p) => p.committedOffset));
  await wave(20);
  await until('480 handled', () => new Set(members.flatMap((m) => m.handled)).size >= 480);
  await until('c owns all six again', () => owned([c]) === '[0,1,2,3,4,5]');
  const d = await admin.describeGroup('billing', 'orders');
  t.is(d.members.length, 1);
  t.deepEqual(d.partitions.map((p) => p.memberId), Array(6).fill(d.members[0]!.memberId));

  // Every record handled; none was handled again once a commit covered it.
  const all = members.flatMap((m) => m.handled);
  t.is(new Set(all).size, 480);
  t.deepEqual(handledAfterCommit, []);
  t.log(`records handled twice (each past the last commit when handled again): ${all.length - 480}`);
  c.child.kill('SIGTERM');
  await c.exited;
});
