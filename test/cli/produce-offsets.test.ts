/**
 * `commitlog produce --print-offsets` when records fail: exactly one output line per
 * input line, in input order (`PARTITION<TAB>OFFSET` or `FAILED<TAB>CODE`), so output
 * line N always speaks for input line N, also when the broker dies mid-run.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { bin, cleanEnv, lines, root, runCli, startBroker } from './helpers.js';

const ACKED = /^(\d+)\t(\d+)$/;
const FAILED = /^FAILED\t(ERR_[A-Z0-9_]+)$/;
const SEGMENT_BYTES = String(8 * 1024 * 1024);

function inputLine(i: number): string {
  return `line ${i} ${'x'.repeat(i % 50)}`;
}

test('a record the broker refuses prints FAILED with its code; the lines after it are not sent and print FAILED ERR_NOT_SENT', async (t) => {
  const broker = await startBroker(t, tmpDir(t), ['--segment-bytes', SEGMENT_BYTES]);
  t.is((await runCli(['topics', 'create', 'one', '--broker', broker.address])).code, 0);
  const n = 500;
  const input = Array.from({ length: n }, (_, i) => `${inputLine(i)}\n`).join('');
  const r = await runCli(['produce', 'one', '--partition', '3', '--print-offsets', '--broker', broker.address], { input });
  t.is(r.code, 1);
  const out = lines(r.stdout);
  t.is(out.length, n);
  t.is(out[0], 'FAILED\tERR_UNKNOWN_PARTITION');
  // Sent before the first failure came back: refused; read after it: not sent. Never mixed.
  const firstNotSent = out.indexOf('FAILED\tERR_NOT_SENT');
  out.forEach((l, i) => t.is(l, i < firstNotSent || firstNotSent < 0 ? 'FAILED\tERR_UNKNOWN_PARTITION' : 'FAILED\tERR_NOT_SENT', `line ${i}`));
  t.regex(r.stderr, new RegExp(`${n} of ${n} records failed: .*\\(ERR_UNKNOWN_PARTITION\\)`));

  // Lines read once a failure is known are never sent: feed the rest after the first verdict.
  const child = spawn(process.execPath, [bin, 'produce', 'one', '--partition', '3', '--print-offsets', '--broker', broker.address], { cwd: root, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out2 = '';
  child.stdout.on('data', (d: Buffer) => (out2 += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.stdin.write('first\n');
  await new Promise<void>((resolve) => {
    const check = (): void => void (out2.length > 0 && resolve());
    child.stdout.on('data', check);
    child.once('exit', () => resolve());
  });
  child.stdin.end('second\nthird\nlast without newline');
  t.is(await exited, 1);
  t.deepEqual(lines(out2), ['FAILED\tERR_UNKNOWN_PARTITION', 'FAILED\tERR_NOT_SENT', 'FAILED\tERR_NOT_SENT', 'FAILED\tERR_NOT_SENT']);

  const unknown = await runCli(['produce', 'nope', '--print-offsets', '--broker', broker.address], { input: 'a\nb\nc' });
  t.is(unknown.code, 1);
  t.is(lines(unknown.stdout).length, 3);
  t.is(lines(unknown.stdout)[0], 'FAILED\tERR_UNKNOWN_TOPIC');
});

test('without --print-offsets reading stops at the first failure and the exit code is 1', async (t) => {
  const broker = await startBroker(t, tmpDir(t), ['--segment-bytes', SEGMENT_BYTES]);
  const r = await runCli(['produce', 'nope', '--broker', broker.address], { input: 'a\nb\n' });
  t.is(r.code, 1);
  t.is(r.stdout.length, 0);
  t.regex(r.stderr, /records failed: unknown topic nope \(ERR_UNKNOWN_TOPIC\)/);
});

test('broker SIGKILLed mid-run: one line per input line, and every printed offset holds the line that printed it', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir, ['--segment-bytes', SEGMENT_BYTES]);
  t.is((await runCli(['topics', 'create', 'kill', '--partitions', '3', '--broker', broker.address])).code, 0);

  const child = spawn(process.execPath, [bin, 'produce', 'kill', '--print-offsets', '--broker', broker.address], { cwd: root, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => undefined); // a command that stops reading must fail the assertions, not the test
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (code, signal) => resolve([code, signal])));

  // Phase 1 streams while the broker lives; the broker dies once some of it is
  // acknowledged (so records are in flight); phase 2 is written after its death, so
  // none of it can be acknowledged. No timing: each step waits for an event.
  const before = 100_000;
  const after = 2_000;
  const minAcked = 1_000;
  const input: string[] = [];
  for (let i = 0; i < before + after; i++) input.push(inputLine(i));
  const phase1 = input.slice(0, before).map((l) => `${l}\n`).join('');
  child.stdin.write(phase1);
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (lines(out).length >= minAcked) resolve();
      else if (child.exitCode !== null) reject(new Error(`produce exited early: ${err}`));
    };
    child.stdout.on('data', check);
    child.once('exit', check);
    check();
  });
  broker.child.kill('SIGKILL');
  await broker.exited;
  child.stdin.end(input.slice(before).map((l) => `${l}\n`).join(''));
  const [code, signal] = await exited;

  t.is(signal, null);
  t.is(code, 1, err);
  t.regex(err, /records failed: .*\(ERR_[A-Z_]+\)/);
  const printed = lines(out);
  t.is(printed.length, input.length, 'one output line per input line');
  const acked = new Map<string, number>();
  printed.forEach((l, i) => {
    const ok = ACKED.exec(l);
    if (ok !== null) acked.set(`${ok[1]}/${ok[2]}`, i);
    else t.regex(l, FAILED, `line ${i}`);
  });
  t.true(acked.size >= minAcked, `${acked.size} acknowledged`);
  const codes = new Map<string, number>();
  for (const l of printed) if (FAILED.test(l)) codes.set(l, (codes.get(l) ?? 0) + 1);
  t.log(`${acked.size} acknowledged; ${[...codes].map(([l, n]) => `${n} ${l.replace('\t', ' ')}`).join(', ')}`);
  for (let i = before; i < input.length; i++) t.regex(printed[i]!, FAILED, `line ${i} was read after the broker died`);

  // Restarted on the same directory, the log holds each printed offset's own line.
  const again = await startBroker(t, dir, ['--segment-bytes', SEGMENT_BYTES]);
  const described = lines((await runCli(['topics', 'describe', 'kill', '--broker', again.address])).stdout);
  const total = described.slice(2).reduce((n, row) => n + Number(row.trim().split(/\s+/)[3]), 0);
  t.true(total >= acked.size);
  const consumed = await runCli(['consume', 'kill', '--print-offsets', '--max', String(total), '--broker', again.address], { timeoutMs: 60_000 });
  t.is(consumed.code, 0, consumed.stderr);
  const stored = new Map<string, string>();
  for (const l of lines(consumed.stdout)) {
    const [p, o, ...value] = l.split('\t');
    stored.set(`${p}/${o}`, value.join('\t'));
  }
  let mismatches = 0;
  for (const [where, i] of acked) {
    if (stored.get(where) !== input[i]) mismatches++;
  }
  t.is(mismatches, 0, 'every acknowledged offset holds the input line that printed it');
  await again.stop();
});
