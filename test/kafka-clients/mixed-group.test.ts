/**
 * One group, two protocols (issue 11): two kcat -G members on the Kafka listener and a
 * commitlog Consumer on the native protocol join the same group (the broker core has
 * one coordinator; librdkafka and commitlog both offer the "range" assignor) and split
 * a 6-partition topic; `commitlog groups describe` shows the same owners the members
 * report. Then the commitlog member leaves and the kcat members take its partitions.
 */
import test from 'ava';
import { Consumer } from '../../src/net/client/consumer.js';
import { runCli } from '../cli/helpers.js';
import { assertAvailable, createTopic, groupMember, lastAssignment, skipFor, startBroker } from './harness.js';
import { until } from '../helpers/until.js';

const key = (ps: number[]): string => JSON.stringify([...ps].sort((a, b) => a - b));

(skipFor(['kcat']) ? test.skip : test)('kcat -G members and a commitlog Consumer share one group; groups describe agrees on who owns what', async (t) => {
  t.timeout(150_000);
  assertAvailable(['kcat']);
  const b = await startBroker(t);
  await createTopic(b, 'mixed', 6);
  const quiet = { info: (): void => undefined, warn: (): void => undefined };
  const own = new Consumer({
    broker: b.native, topic: 'mixed', group: 'shared', clientId: 'commitlog-member', sessionTimeoutMs: 6000, heartbeatIntervalMs: 500,
    logger: quiet,
  });
  t.teardown(() => own.close());
  const k1 = groupMember(t, 'kcat', { bootstrap: b.kafka, topic: 'mixed', group: 'shared', session_timeout_ms: 6000 }, 'kcat-1');
  await until('the first kcat member assigned', () => lastAssignment(k1) !== undefined && lastAssignment(k1)!.length > 0);
  const k2 = groupMember(t, 'kcat', { bootstrap: b.kafka, topic: 'mixed', group: 'shared', session_timeout_ms: 6000 }, 'kcat-2');
  await own.connect();
  const settled = (): boolean => {
    const sets = [lastAssignment(k1), lastAssignment(k2), own.partitions];
    if (sets.some((s) => s === undefined || s.length !== 2)) return false;
    return key(sets.flat() as number[]) === key([0, 1, 2, 3, 4, 5]);
  };
  await until('a 2/2/2 split across both protocols', settled);

  const described = await runCli(['groups', 'describe', 'shared', '--broker', b.native]);
  t.is(described.code, 0, described.stderr);
  const text = described.stdout.toString();
  t.regex(text, /^group: shared state: Stable generation: \d+ assignor: range members: 3\n/);
  // Each member's partitions as describe prints them (MEMBER CLIENT-ID HOST PARTITIONS=mixed:a,b).
  const memberRows = text.split('\n').filter((l) => / mixed:[\d,]+$/.test(l)).map((l) => l.split(/\s+/));
  const fromDescribe = memberRows.map((r) => `${r[1]} ${key(r[3]!.slice('mixed:'.length).split(',').map(Number))}`).sort();
  const fromMembers = [`commitlog-member ${key(own.partitions)}`, `rdkafka ${key(lastAssignment(k1)!)}`, `rdkafka ${key(lastAssignment(k2)!)}`].sort();
  t.deepEqual(fromDescribe, fromMembers);
  // The partition table names the same owner for each partition as the member table.
  const owners = new Map<number, string>();
  for (const r of memberRows) for (const p of r[3]!.slice('mixed:'.length).split(',')) owners.set(Number(p), r[0]!);
  const partitionRows = text.split('\n').filter((l) => l.startsWith('mixed ')).map((l) => l.split(/\s+/));
  t.is(partitionRows.length, 6);
  for (const r of partitionRows) t.is(r[5], owners.get(Number(r[1]!)) ?? '');

  // The commitlog member leaves: the kcat members share all six.
  await own.close();
  await until('kcat members own all six', () => key([...(lastAssignment(k1) ?? []), ...(lastAssignment(k2) ?? [])]) === key([0, 1, 2, 3, 4, 5]));
  t.is(lastAssignment(k1)!.length + lastAssignment(k2)!.length, 6);
});
