/**
 * `commitlog consume --group G` in several shells shares the partitions (issue 11), and
 * `commitlog groups list|describe` show it, against a broker process.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { Admin } from '../../src/net/client/admin.js';
import { tmpDir } from '../helpers/tmp.js';
import { bin, cleanEnv, root, runCli, startBroker } from './helpers.js';
import { until } from '../helpers/until.js';


test('two `consume --group` processes split the partitions, each record printed by one of them; describe shows both', async (t) => {
  t.timeout(120_000);
  const broker = await startBroker(t, tmpDir(t), ['--group-initial-rebalance-delay-ms', '0', '--group-min-session-timeout-ms', '500']);
  t.is((await runCli(['topics', 'create', 'orders', '--partitions', '4', '--broker', broker.address])).code, 0);
  const shells = [0, 1].map(() => {
    const child = spawn(process.execPath, [bin, 'consume', 'orders', '--group', 'g', '--print-offsets', '--broker', broker.address], { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const shell = { child, out: '', err: '', exited: new Promise<number | null>((r) => child.once('exit', (code) => r(code))) };
    child.stdout.setEncoding('utf8').on('data', (d: string) => (shell.out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (shell.err += d));
    t.teardown(() => void child.kill('SIGKILL'));
    return shell;
  });
  const admin = new Admin({ broker: broker.address });
  t.teardown(() => admin.close());
  await until('two members with two partitions each', async () => {
    const d = await admin.describeGroup('g', 'orders');
    return d.state === 'Stable' && d.members.length === 2 && d.members.every((m) => m.assignment.flatMap((tp) => tp.partitions).length === 2);
  });

  const input = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n') + '\n';
  const produced = await runCli(['produce', 'orders', '--print-offsets', '--broker', broker.address], { input });
  t.is(produced.code, 0, produced.stderr);
  const placed = produced.stdout.toString().trim().split('\n').map((l, i) => `${l}\tline ${i}`);
  const printed = (): string[] => shells.flatMap((s) => s.out.split('\n').filter((l) => l !== ''));
  await until('40 records printed', () => printed().length >= 40);
  t.deepEqual([...printed()].sort(), [...placed].sort(), 'every record printed once, with its partition and offset');
  const partitionsOf = (out: string): Set<string> => new Set(out.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]!));
  const [a, b] = shells.map((s) => partitionsOf(s.out));
  t.is([...a!].filter((p) => b!.has(p)).length, 0, 'no partition printed by both');

  const d = await admin.describeGroup('g', 'orders');
  const owners = new Set(d.partitions.map((p) => p.memberId));
  t.is(owners.size, 2);
  t.true(d.partitions.every((p) => p.memberId !== null));
  const listed = await runCli(['groups', 'list', '--broker', broker.address]);
  t.regex(listed.stdout.toString(), /^g\s+Stable\s+consumer$/m);

  for (const s of shells) s.child.kill('SIGTERM');
  t.deepEqual(await Promise.all(shells.map((s) => s.exited)), [0, 0]);
  // Both committed everything they printed on their way out: no lag is left.
  const after = await admin.describeGroup('g', 'orders');
  t.is(after.lag, 0);
  t.is(after.members.length, 0);
});
