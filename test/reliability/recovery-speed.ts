/**
 * Recovery time per GiB of unflushed tail: a measurement, not a test (it asserts
 * nothing about time; it fails only if recovery loses data).
 *
 *   npx tsx test/reliability/recovery-speed.ts [--mib 1024] [--batch-bytes 65536,1024] [--cold] [--json FILE]
 *
 * For each batch size: a child process opens a fresh log under flush 'os' (so the only
 * recovery point is the one written when the topic was created: offset 0, position 0),
 * appends --mib MiB into one segment, reports, and is SIGKILLed. Another child then
 * opens the directory and times the recovery, which scans and CRC-checks the whole
 * tail, rebuilds its index entries, and flushes it. Three states of the page cache:
 *   dirty  right after the kill: the tail is still unwritten page cache, so recovery
 *          also pays for writing it to disk (its msync) - what a crashed broker sees;
 *   clean  after sync(1): the tail is on disk and cached - the scan itself;
 *   cold   after sync and dropping the page cache (root, --cold only; it empties the
 *          whole machine's cache) - the tail is read back from disk.
 * Prints a table and, with --json FILE (or $RELIABILITY_FIGURES), appends JSON lines.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../../src/log/commit-log.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const here = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(here), '../..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

const quiet = { info: () => undefined, warn: () => undefined };

/** Child: writes `mib` MiB in batches of about `batchBytes`, prints DONE, waits to be killed. */
async function childWrite(dir: string, mib: number, batchBytes: number): Promise<void> {
  const log = await CommitLog.open({ dir, flush: 'os', logger: quiet, retentionCheckIntervalMs: 0 });
  // One segment holds it all: 2 GiB, allocated ahead only past half, which 1 GiB does not pass.
  await log.createTopic('t', { segmentBytes: 2 * GiB, retentionMs: -1 });
  const recordBytes = Math.min(batchBytes, 1000);
  const perBatch = Math.max(1, Math.floor(batchBytes / (recordBytes + 20)));
  const value = Buffer.alloc(recordBytes, 0x61);
  const records = Array.from({ length: perBatch }, (_, i) => ({ key: null, value, timestamp: 1_700_000_000_000 + i }));
  const target = mib * MiB - 64 * 1024;
  let appended = 0;
  let batches = 0;
  for (let i = 0; i < 100_000_000 && log.describeTopic('t').partitions[0]!.sizeBytes < target; i++) {
    const res = await log.append('t', 0, records);
    appended = res.lastOffset + 1;
    batches++;
  }
  const bytes = log.describeTopic('t').partitions[0]!.sizeBytes;
  process.stdout.write(`DONE ${bytes} ${appended} ${batches}\n`);
  setInterval(() => undefined, 1000);
}

/** Child: opens the directory, prints how recovery went. */
async function childRecover(dir: string): Promise<void> {
  const started = performance.now();
  const log = await CommitLog.open({ dir, logger: quiet, retentionCheckIntervalMs: 0 });
  const openMs = performance.now() - started;
  const report = log.recovery.partitions[0]!;
  const records = log.latestOffset('t', 0);
  await log.close();
  process.stdout.write(`${JSON.stringify({ openMs, records, report, totalMs: log.recovery.durationMs })}\n`);
}

function runChild(args: string[], killOn?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', here, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (killOn !== undefined && killOn.test(out)) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (killOn !== undefined ? signal === 'SIGKILL' && killOn.test(out) : code === 0) resolve(out);
      else reject(new Error(`child ${args[0]} ended with ${code ?? signal}: ${out}`));
    });
  });
}

interface Row {
  batchBytes: number;
  cache: 'dirty' | 'clean' | 'cold';
  tailBytes: number;
  records: number;
  batches: number;
  scanMs: number;
  openMs: number;
  secondsPerGiB: number;
  gibPerSecond: number;
}

async function measure(mib: number, batchBytes: number, cache: Row['cache']): Promise<Row> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-recovery-speed-'));
  try {
    const out = await runChild(['--child-write', dir, String(mib), String(batchBytes)], /DONE \d+ \d+ \d+\n/);
    const [, bytes, records, batches] = /DONE (\d+) (\d+) (\d+)/.exec(out)!.map(Number) as [number, number, number, number];
    if (cache !== 'dirty') spawnSync('sync');
    if (cache === 'cold') fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    const result = JSON.parse(await runChild(['--child-recover', dir])) as { openMs: number; records: number; report: { scannedBytes: number; droppedBytes: number; durationMs: number; clean: boolean } };
    if (result.report.clean || result.records !== records || result.report.droppedBytes !== 0 || result.report.scannedBytes !== bytes) {
      throw new Error(`recovery did not keep the tail exactly: ${JSON.stringify(result)} (wrote ${bytes} bytes, ${records} records)`);
    }
    const seconds = result.openMs / 1000;
    return {
      batchBytes, cache, tailBytes: bytes, records, batches, scanMs: Math.round(result.report.durationMs), openMs: Math.round(result.openMs),
      secondsPerGiB: +(seconds / (bytes / GiB)).toFixed(3), gibPerSecond: +((bytes / GiB) / seconds).toFixed(2),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode === '--child-write') return childWrite(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
  if (mode === '--child-recover') return childRecover(process.argv[3]!);
  const mib = Number(arg('mib', '1024'));
  const sizes = arg('batch-bytes', '65536,1024').split(',').map(Number);
  const caches: Row['cache'][] = ['dirty', 'clean'];
  if (process.argv.includes('--cold')) {
    if (process.getuid?.() !== 0) throw new Error('--cold needs root (it writes /proc/sys/vm/drop_caches)');
    caches.push('cold');
  }
  const json = arg('json', process.env.RELIABILITY_FIGURES ?? '');
  const rows: Row[] = [];
  for (const batchBytes of sizes) {
    for (const cache of caches) {
      const row = await measure(mib, batchBytes, cache);
      rows.push(row);
      process.stdout.write(`${JSON.stringify(row)}\n`);
      if (json !== '') fs.appendFileSync(json, `${JSON.stringify({ test: 'recovery time per GiB of unflushed tail', date: new Date().toISOString(), ...row })}\n`);
    }
  }
  process.stdout.write('\n| batch | page cache | tail | batches | scan + index (ms) | open, incl. flush (ms) | s per GiB | GiB/s |\n|---|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.batchBytes} B | ${r.cache} | ${(r.tailBytes / MiB).toFixed(0)} MiB | ${r.batches} | ${r.scanMs} | ${r.openMs} | ${r.secondsPerGiB} | ${r.gibPerSecond} |\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`recovery-speed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
