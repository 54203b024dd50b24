import test from 'ava';
import { spawn } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { bin, cleanEnv, lines, root, runCli, startBroker, type RunningBroker } from './helpers.js';
import type { ExecutionContext } from 'ava';

async function brokerWithTopic(t: ExecutionContext, topic: string, partitions = 1): Promise<RunningBroker> {
  const broker = await startBroker(t, tmpDir(t));
  const created = await runCli(['topics', 'create', topic, '--partitions', String(partitions), '--broker', broker.address]);
  t.is(created.code, 0, created.stderr);
  return broker;
}

test('produce then consume through pipes gives back the input byte for byte', async (t) => {
  const broker = await brokerWithTopic(t, 'pipe');
  // An empty line, a tab, a carriage return, UTF-8, bytes that are not UTF-8, no final newline.
  const input = Buffer.concat([Buffer.from('first\n\nwith\ttab\ncr at end\r\nünïcødé ✓\n'), Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0a]), Buffer.from('no newline at the end')]);
  const produced = await runCli(['produce', 'pipe', '--broker', broker.address], { input });
  t.is(produced.code, 0, produced.stderr);
  t.is(produced.stdout.length, 0);

  const consumed = await runCli(['consume', 'pipe', '--broker', broker.address, '--max', '7']);
  t.is(consumed.code, 0, consumed.stderr);
  t.true(consumed.stdout.equals(Buffer.concat([input, Buffer.from('\n')])), JSON.stringify(consumed.stdout.toString()));

  const idle = await runCli(['consume', 'pipe', '--broker', broker.address, '--idle-exit-ms', '300', '--print-offsets']);
  t.is(idle.code, 0);
  t.deepEqual(lines(idle.stdout).slice(0, 3), ['0\t0\tfirst', '0\t1\t', '0\t2\twith\ttab']);
  t.is(lines(idle.stdout).length, 7);
});

test('--print-offsets prints PARTITION<TAB>OFFSET per acknowledged record, in input order', async (t) => {
  const broker = await brokerWithTopic(t, 'keyed', 3);
  const n = 2000;
  const input = Array.from({ length: n }, (_, i) => `key${i % 17}:value ${i}\n`).join('');
  const produced = await runCli(['produce', 'keyed', '--key-separator', ':', '--print-offsets', '--broker', broker.address], { input });
  t.is(produced.code, 0, produced.stderr);
  const printed = lines(produced.stdout).map((l) => l.split('\t').map(Number) as [number, number]);
  t.is(printed.length, n);
  // Per partition the offsets of one producer are 0, 1, 2, ... in input order, and a key
  // always lands on the same partition.
  const next = new Map<number, number>();
  const partitionOfKey = new Map<number, number>();
  printed.forEach(([p, o], i) => {
    t.is(o, next.get(p) ?? 0, `line ${i}`);
    next.set(p, o + 1);
    const key = i % 17;
    if (!partitionOfKey.has(key)) partitionOfKey.set(key, p);
    t.is(partitionOfKey.get(key), p);
  });

  // What consume reports for each (partition, offset) is the value produced there.
  const consumed = await runCli(['consume', 'keyed', '--print-offsets', '--max', String(n), '--broker', broker.address]);
  const at = new Map(lines(consumed.stdout).map((l) => {
    const [p, o, value] = l.split('\t');
    return [`${p}/${o}`, value];
  }));
  printed.forEach(([p, o], i) => t.is(at.get(`${p}/${o}`), `value ${i}`));

  const pinned = await runCli(['produce', 'keyed', '--partition', '2', '--key', 'k', '--print-offsets', '--broker', broker.address], { input: 'x\ny\n' });
  t.deepEqual(lines(pinned.stdout), [`2\t${next.get(2) ?? 0}`, `2\t${(next.get(2) ?? 0) + 1}`]);
});

test('consume --format json carries key, value, headers, timestamp, partition and offset', async (t) => {
  const broker = await brokerWithTopic(t, 'json');
  const before = Date.now();
  t.is((await runCli(['produce', 'json', '--key', 'k1', '--broker', broker.address], { input: 'hello\n' })).code, 0);
  const consumed = await runCli(['consume', 'json', '--format', 'json', '--max', '1', '--broker', broker.address]);
  const record = JSON.parse(consumed.stdout.toString()) as Record<string, unknown>;
  t.like(record, { partition: 0, offset: 0, key: 'k1', value: 'hello', headers: [] });
  t.true((record.timestamp as number) >= before - 1000 && (record.timestamp as number) <= Date.now() + 1000);
});

test('consume --group resumes from its committed position; --from picks the start', async (t) => {
  const broker = await brokerWithTopic(t, 'grp');
  const input = Array.from({ length: 10 }, (_, i) => `r${i}\n`).join('');
  t.is((await runCli(['produce', 'grp', '--broker', broker.address], { input })).code, 0);
  const a = broker.address;

  const first = await runCli(['consume', 'grp', '--group', 'g', '--max', '4', '--broker', a]);
  t.deepEqual(lines(first.stdout), ['r0', 'r1', 'r2', 'r3']);
  const rest = await runCli(['consume', 'grp', '--group', 'g', '--idle-exit-ms', '300', '--broker', a]);
  t.deepEqual(lines(rest.stdout), ['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
  const none = await runCli(['consume', 'grp', '--group', 'g', '--idle-exit-ms', '300', '--broker', a]);
  t.is(none.code, 0);
  t.is(none.stdout.length, 0);

  t.deepEqual(lines((await runCli(['consume', 'grp', '--from', '8', '--idle-exit-ms', '300', '--broker', a])).stdout), ['r8', 'r9']);
  t.is((await runCli(['consume', 'grp', '--from', 'latest', '--idle-exit-ms', '300', '--broker', a])).stdout.length, 0);
  t.is(lines((await runCli(['consume', 'grp', '--from', '2000-01-01T00:00:00Z', '--max', '10', '--broker', a])).stdout).length, 10);
  const badFrom = await runCli(['consume', 'grp', '--from', 'yesterday', '--broker', a]);
  t.is(badFrom.code, 2);
  t.regex(badFrom.stderr, /--from must be earliest, latest, an offset or an ISO-8601 time/);
});

test('a tailing consume prints records as they arrive and exits 0 on SIGTERM', async (t) => {
  const broker = await brokerWithTopic(t, 'tail');
  const child = spawn(process.execPath, [bin, 'consume', 'tail', '--broker', broker.address], { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.is((await runCli(['produce', 'tail', '--broker', broker.address], { input: 'live 1\nlive 2\n' })).code, 0);
  const deadline = Date.now() + 15_000;
  while (out !== 'live 1\nlive 2\n' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(out, 'live 1\nlive 2\n');
  child.kill('SIGTERM');
  t.is(await exited, 0);
});

test('failures exit non-zero with the error: unknown topic, no broker, usage mistakes', async (t) => {
  const broker = await brokerWithTopic(t, 'known');
  const unknown = await runCli(['produce', 'nope', '--broker', broker.address], { input: 'x\n' });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /unknown topic nope \(ERR_UNKNOWN_TOPIC\)/);

  const consumeUnknown = await runCli(['consume', 'nope', '--broker', broker.address, '--max', '1']);
  t.is(consumeUnknown.code, 1);
  t.regex(consumeUnknown.stderr, /ERR_UNKNOWN_TOPIC/);

  const noAcks = await runCli(['produce', 'known', '--acks', 'none', '--print-offsets', '--broker', broker.address]);
  t.is(noAcks.code, 2);
  t.regex(noAcks.stderr, /--print-offsets needs acknowledgements/);

  const both = await runCli(['produce', 'known', '--key', 'k', '--key-separator', ':', '--broker', broker.address]);
  t.is(both.code, 2);

  const badBroker = await runCli(['topics', 'list', '--broker', 'nowhere']);
  t.is(badBroker.code, 2);
  t.regex(badBroker.stderr, /--broker must be HOST:PORT/);
});

test('topics create, list, describe (also offline with --dir) and delete', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir);
  const a = broker.address;
  t.is((await runCli(['topics', 'create', 'orders', '--partitions', '2', '--broker', a])).code, 0);
  t.is((await runCli(['topics', 'create', 'audit', '--broker', a])).code, 0);
  const again = await runCli(['topics', 'create', 'audit', '--broker', a]);
  t.is(again.code, 1);
  t.regex(again.stderr, /ERR_TOPIC_EXISTS/);
  t.deepEqual(lines((await runCli(['topics', 'list', '--broker', a])).stdout), ['audit', 'orders']);

  t.is((await runCli(['produce', 'orders', '--partition', '1', '--broker', a], { input: 'a\nb\nc\n' })).code, 0);
  const described = lines((await runCli(['topics', 'describe', 'orders', '--broker', a])).stdout);
  t.is(described[0], 'topic: orders partitions: 2');
  t.regex(described[2]!, /^0\s+0\s+0\s+0\s/);
  t.regex(described[3]!, /^1\s+0\s+3\s+3\s/);

  const offline = lines((await runCli(['topics', 'describe', 'orders', '--dir', dir])).stdout);
  t.regex(offline[3]!, /^1\s+0\s+3\s+3\s+1\s+\d+ B\s+\S+/);
  t.deepEqual(lines((await runCli(['topics', 'list', '--dir', dir])).stdout), ['audit', 'orders']);

  t.is((await runCli(['topics', 'delete', 'audit', '--broker', a])).code, 0);
  t.deepEqual(lines((await runCli(['topics', 'list', '--broker', a])).stdout), ['orders']);
});
