/**
 * The offline readers (scanSegment, verify, dump) on files that shrink under them, as
 * a live broker's active segment does when it is sealed (ftruncate to its data size).
 * A reader that had the file mapped would die of SIGBUS touching the mapping past the
 * new end; each runs in a child process here, so that shows as a signal exit.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { bin, cleanEnv, lines, root } from '../cli/helpers.js';
import { tmpDir } from '../helpers/tmp.js';

const CHILD = path.join(root, 'test', 'ops', 'offline-reader-child.ts');
const SEGMENT_BYTES = 8 * 1024 * 1024;
const BATCHES = 2000;
const RECORDS_PER_BATCH = 3;

interface Fixture {
  dir: string;
  log: string;
  cq: string;
  tix: string;
  /** What a seal truncates each file to. */
  logBytes: number;
  cqBytes: number;
  tixBytes: number;
}

/** A closed data directory: topic t, one partition, its one segment preallocated far past its data. */
async function fixture(dir: string): Promise<Fixture> {
  const log = await CommitLog.open({ dir, flush: 'async', logger: { info: () => undefined, warn: () => undefined } });
  await log.createTopic('t', { partitions: 1, segmentBytes: SEGMENT_BYTES, indexIntervalBytes: 4096 });
  for (let i = 0; i < BATCHES; i++) {
    await log.append('t', 0, Array.from({ length: RECORDS_PER_BATCH }, (_, j) => ({ key: `k${j}`, value: `value ${i}.${j} `.repeat(20) })));
  }
  await log.close();
  const p = path.join(dir, 't', '0');
  const base = path.join(p, '0'.repeat(20));
  const f = { dir, log: `${base}.log`, cq: `${base}.cq`, tix: `${base}.tix` };
  const data = fs.readFileSync(f.log);
  if (data.length !== SEGMENT_BYTES) throw new Error(`the fixture needs a preallocated active segment, got ${data.length} bytes`);
  let logBytes = 0;
  while (logBytes + 12 <= data.length && data.readInt32BE(logBytes + 8) > 0) logBytes += 12 + data.readInt32BE(logBytes + 8);
  const tix = fs.readFileSync(f.tix);
  let tixEntries = 0;
  while ((tixEntries + 1) * 16 <= tix.length && tix.subarray(tixEntries * 16, (tixEntries + 1) * 16).some((b) => b !== 0)) tixEntries++;
  return { ...f, logBytes, cqBytes: BATCHES * 12, tixBytes: tixEntries * 16 };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ReturnType<typeof spawn>): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

function runChild(args: string[]): Promise<Exit> {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, ...args], { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  return collect(child);
}

test('scanSegment over a segment truncated to its data while open stops at the data, without SIGBUS', async (t) => {
  const f = await fixture(tmpDir(t));
  const r = await runChild(['scan', f.dir, String(f.logBytes)]);
  t.is(r.signal, null, 'killed by a signal');
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { dataEnd: f.logBytes, batches: BATCHES, records: BATCHES * RECORDS_PER_BATCH, nextOffset: BATCHES * RECORDS_PER_BATCH, problem: null, extent: f.logBytes, epoch: 0 });
  t.is(fs.statSync(f.log).size, f.logBytes);
});

test('verify of a partition whose active segment is sealed during the check finds it clean, without SIGBUS', async (t) => {
  const f = await fixture(tmpDir(t));
  const r = await runChild(['verify', f.dir, String(f.logBytes), String(f.cqBytes), String(f.tixBytes)]);
  t.is(r.signal, null, 'killed by a signal');
  t.is(r.code, 0, r.stderr);
  const { sealed, report } = JSON.parse(r.stdout) as { sealed: boolean; report: { problems: unknown[]; batches: number; records: number; bytes: number } };
  t.true(sealed);
  t.deepEqual(report.problems, []);
  t.like(report, { batches: BATCHES, records: BATCHES * RECORDS_PER_BATCH, bytes: f.logBytes });
});

test('dump of a segment sealed while dump is inside it prints every batch and exits 0, without SIGBUS', async (t) => {
  const f = await fixture(tmpDir(t));
  // stdout is not read until the seal: dump blocks on the full pipe a few hundred KiB
  // into its ~3 MB of output, inside the segment, with the file open.
  const child = spawn(process.execPath, [bin, 'dump', f.dir, '--records', '--indexes'], { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise((resolve) => child.stdout.once('readable', resolve));
  fs.truncateSync(f.log, f.logBytes);
  fs.truncateSync(f.cq, f.cqBytes);
  fs.truncateSync(f.tix, f.tixBytes);
  const r = await collect(child);
  t.is(r.signal, null, 'killed by a signal');
  t.is(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  t.is(out[0], `Dumping ${f.log}`);
  t.is(out.filter((l) => l.startsWith('baseOffset: ')).length, BATCHES);
  t.is(out.filter((l) => l.startsWith('| offset: ')).length, BATCHES * RECORDS_PER_BATCH);
  t.true(out.includes(`end of data at position ${f.logBytes}: ${BATCHES} batches, ${BATCHES * RECORDS_PER_BATCH} records`), out.filter((l) => l.startsWith('end of data')).join('\n'));
  t.true(out.includes(`the file shrank from ${SEGMENT_BYTES} to ${f.logBytes} bytes while it was read (a broker sealed the segment)`), 'the seal came while the file was open');
  t.is(out.filter((l) => l.startsWith('relativeOffset: ')).length, BATCHES);
});
