/**
 * Consumer groups of real Kafka clients on the Kafka listener: three member processes
 * of one client (kcat -G, confluent-kafka, kafkajs, kafka-python, @platformatic/kafka) split a 6-partition topic; when one leaves
 * (SIGTERM: a clean LeaveGroup) and when one is SIGKILLed (its session expires) the
 * survivors take its partitions; after a broker restart a new member resumes at the
 * committed offsets. Members commit each record synchronously after printing it (kcat:
 * automatically every 200 ms, on revoke and on close, so after a kill any record the
 * killed member handled may come again), so:
 * while membership is stable every record is handled exactly once; after a clean
 * leave nothing is handled twice; after a kill only the killed member's last printed
 * record of a partition may come again (its commit may not have been made).
 */
import test, { type ExecutionContext } from 'ava';
import { Producer } from '../../src/net/client/producer.js';
import { assertAvailable, createTopic, groupMember, lastAssignment, skipFor, startBroker, type BrokerProcess, type KafkaClient, type Proc, type SeenRecord } from './harness.js';

const PARTITIONS = 6;
const PER_PARTITION = 5;
const ALL = [0, 1, 2, 3, 4, 5];
const WAIT_MS = 60_000;

function records(p: Proc): SeenRecord[] {
  return p.lines.filter((l) => 'record' in l).map((l) => l.record as SeenRecord);
}

/** Waits until the live members' current assignments are disjoint, cover ALL and have the given sizes. */
async function waitForSplit(members: Proc[], sizes: number[], what: string): Promise<number[][]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const sets = members.map(lastAssignment);
    if (sets.every((s) => s !== undefined)) {
      const flat = sets.flatMap((s) => s!).sort((a, b) => a - b);
      const got = sets.map((s) => s!.length).sort();
      if (JSON.stringify(flat) === JSON.stringify(ALL) && JSON.stringify(got) === JSON.stringify([...sizes].sort())) return sets as number[][];
    }
    for (const m of members) if (m.child.exitCode !== null || m.child.signalCode !== null) throw new Error(`a member exited while waiting for ${what}: ${m.stderr().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`no split ${JSON.stringify(sizes)} for ${what}: ${JSON.stringify(sets)}; stderr: ${members.map((m) => m.stderr().slice(-1000)).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function produceRound(b: BrokerProcess, topic: string, round: number): Promise<string[]> {
  const producer = new Producer({ broker: b.native, lingerMs: 0 });
  const values: string[] = [];
  try {
    const sends = [];
    for (let p = 0; p < PARTITIONS; p++) {
      for (let i = 0; i < PER_PARTITION; i++) {
        const value = `r${round}-p${p}-${i}`;
        values.push(value);
        sends.push(producer.send(topic, { key: `k${p}`, value }, { partition: p }));
      }
    }
    await Promise.all(sends);
  } finally {
    await producer.close();
  }
  return values;
}

async function waitAllSeen(members: Proc[], values: string[], what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const seen = new Set(members.flatMap((m) => records(m).map((r) => r.value)));
    const missing = values.filter((v) => !seen.has(v));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${missing.length} records never consumed, e.g. ${missing.slice(0, 5).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function counts(members: Proc[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const m of members) for (const r of records(m)) c.set(r.value!, (c.get(r.value!) ?? 0) + 1);
  return c;
}

async function groupScenario(t: ExecutionContext, client: KafkaClient): Promise<void> {
  // kcat commits every 200 ms (and on revoke and close) rather than after each record.
  const autoCommit = client === 'kcat';
  t.timeout(170_000);
  assertAvailable([client]);
  const b = await startBroker(t);
  const topic = `group-${client}`;
  const group = `g-${client}`;
  await createTopic(b, topic, PARTITIONS);
  const spec = { bootstrap: b.kafka, topic, group, session_timeout_ms: 6000 };
  const members = [1, 2, 3].map((i) => groupMember(t, client, spec, `${client} member ${i}`));

  // 1. Three members split the six partitions; each record of round 1 is handled once, by its partition's owner.
  const split = await waitForSplit(members, [2, 2, 2], 'three members');
  const round1 = await produceRound(b, topic, 1);
  await waitAllSeen(members, round1, 'round 1');
  const c1 = counts(members);
  t.deepEqual(round1.filter((v) => c1.get(v) !== 1), [], 'round 1: every record handled exactly once');
  members.forEach((m, i) => {
    for (const r of records(m)) t.true(split[i]!.includes(r.partition), `member ${i + 1} handled partition ${r.partition} it does not own`);
  });

  // 2. Member 3 leaves cleanly: the two others share all six; round 2 handled once, round 1 not again.
  await members[2]!.kill('SIGTERM');
  if (autoCommit) t.is(await members[2]!.exited, 0, 'member 3 closed cleanly');
  else t.true(members[2]!.lines.some((l) => 'closed' in l), 'member 3 closed cleanly');
  await waitForSplit(members.slice(0, 2), [3, 3], 'after a leave');
  const round2 = await produceRound(b, topic, 2);
  await waitAllSeen(members, round2, 'round 2');
  const c2 = counts(members);
  t.deepEqual([...round1, ...round2].filter((v) => c2.get(v) !== 1), [], 'after a clean leave: nothing handled twice');

  // 3. Member 2 is SIGKILLed: member 1 gets everything after the session timeout.
  const beforeKill = records(members[1]!);
  await members[1]!.kill('SIGKILL');
  await waitForSplit(members.slice(0, 1), [6], 'after a kill');
  const round3 = await produceRound(b, topic, 3);
  await waitAllSeen([members[0]!], round3, 'round 3');
  const c3 = counts(members);
  const lastOfKilled = new Set<string>();
  for (let p = 0; p < PARTITIONS; p++) {
    const last = beforeKill.filter((r) => r.partition === p).pop();
    if (last !== undefined) lastOfKilled.add(last.value!);
  }
  const twice = [...round1, ...round2, ...round3].filter((v) => c3.get(v) !== 1);
  if (autoCommit) {
    const killedSaw = new Set(beforeKill.map((r) => r.value));
    t.deepEqual(twice.filter((v) => !killedSaw.has(v) || c3.get(v)! > 2), [], 'after a kill: only records the killed member handled since its last commit may come again');
  } else {
    t.deepEqual(twice.filter((v) => !lastOfKilled.has(v) || c3.get(v)! > 2), [], 'after a kill: only the killed member\'s last uncommitted record per partition may come again');
  }

  // 4. Broker restart: a new member resumes at the committed offsets (round 4 only).
  await members[0]!.kill('SIGTERM');
  await b.restart('SIGTERM');
  const round4 = await produceRound(b, topic, 4);
  const fresh = groupMember(t, client, spec, `${client} member 4`);
  await waitForSplit([fresh], [6], 'the new member');
  await waitAllSeen([fresh], round4, 'round 4');
  t.deepEqual(records(fresh).map((r) => r.value).filter((v) => !round4.includes(v!)), [], 'after the restart: nothing committed is read again');
  t.is(records(fresh).length, round4.length);
  await fresh.kill('SIGTERM');
}

// The @platformatic/kafka driver drops records of partitions no longer assigned to it
// (drivers/platformatic.ts says why): its stream hands out answers to a Fetch sent
// before a rebalance.
for (const client of ['kcat', 'confluent', 'kafkajs', 'kafka-python', 'platformatic'] as const) {
  (skipFor([client]) ? test.skip : test)(`a group of three ${client} processes splits, rebalances on leave and kill, resumes after a broker restart`, (t) => groupScenario(t, client));
}
