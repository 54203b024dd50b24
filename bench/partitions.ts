/**
 * Question: what do many partitions cost? For 1,000 and 10,000 partitions of one topic
 * (flush 'sync', default 1 GiB segments): create the topic, append one record to each,
 * close and reopen clean, then let a child process reopen and append one more record
 * each and SIGKILL it, and reopen after the kill (recovery). Reports each step's time,
 * disk used (st_blocks, what du counts), RSS and open descriptors after opening, and
 * every record checked. Baseline, same run: one plain file per partition written by
 * hand (mkdir, write one record, fdatasync, close), as a ratio of its time.
 *
 * Run: npm run bench:partitions [-- --json] [-- --partitions=1000,10000]. Never gates CI.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../src/index.js';
import { machineInfo, round, tempRoot } from './lib.js';

const quiet = { info: () => undefined, warn: () => undefined };
/** libuv's pool size this process runs with (set it in the environment: bin/commitlog.js does for the broker). */
const threadPool = process.env.UV_THREADPOOL_SIZE ?? '4 (libuv default)';
const json = process.argv.includes('--json');
const counts = (process.argv.find((a) => a.startsWith('--partitions='))?.slice(13) ?? '1000,10000').split(',').map(Number);

function du(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? du(p) : fs.statSync(p).blocks * 512;
  }
  return total;
}

const fds = (): number => fs.readdirSync('/proc/self/fd').length;
const maps = (): number => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1;

async function open(dir: string): Promise<CommitLog> {
  return CommitLog.open({ dir, flush: 'sync', logger: quiet, retentionCheckIntervalMs: 0 });
}

async function appendEach(log: CommitLog, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, p) => log.append('big', p, [{ value: Buffer.from(`p${p}-n${log.logEndOffset('big', p)}`) }])));
}

function check(log: CommitLog, n: number, perPartition: number): number {
  let bad = 0;
  for (let p = 0; p < n; p++) {
    if (log.latestOffset('big', p) !== perPartition) bad++;
    else if (log.read('big', p, perPartition - 1)[0]?.value?.toString() !== `p${p}-n${perPartition - 1}`) bad++;
  }
  return bad;
}

async function child(dir: string, n: number): Promise<void> {
  const log = await open(dir);
  await appendEach(log, n);
  process.stdout.write('ACKED\n');
  setInterval(() => undefined, 60_000);
}

function baseline(dir: string, n: number): number {
  const started = performance.now();
  for (let p = 0; p < n; p++) {
    const d = path.join(dir, String(p));
    fs.mkdirSync(d, { recursive: true });
    const fd = fs.openSync(path.join(d, 'data'), 'w');
    fs.writeSync(fd, Buffer.from(`p${p}-n0`));
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  }
  return performance.now() - started;
}

async function killedChild(dir: string, n: number): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const c = spawn(process.execPath, ['--import', 'tsx', self, '--child', dir, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    c.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ACKED')) resolve();
    });
    c.on('exit', (code) => reject(new Error(`child exited with ${code} before acknowledging`)));
  });
  c.kill('SIGKILL');
  await new Promise((resolve) => c.on('exit', resolve));
}

async function run(root: string, n: number): Promise<Record<string, number | string>> {
  const dir = path.join(root, `p${n}`);
  const baseMs = baseline(path.join(root, `baseline${n}`), n);
  const row: Record<string, number | string> = { partitions: n, baselineMs: round(baseMs) };
  try {
    let t = performance.now();
    let log = await open(dir);
    await log.createTopic('big', { partitions: n });
    row.createMs = round(performance.now() - t);
    t = performance.now();
    await appendEach(log, n);
    row.appendOneEachMs = round(performance.now() - t);
    await log.close();
    row.diskBytes = du(dir);
    t = performance.now();
    log = await open(dir);
    row.cleanReopenMs = round(performance.now() - t);
    row.rssBytes = process.memoryUsage().rss;
    row.fds = fds();
    row.maps = maps();
    row.badRecordsClean = check(log, n, 1);
    await log.close();
    t = performance.now();
    await killedChild(dir, n);
    row.childAppendAndKillMs = round(performance.now() - t);
    t = performance.now();
    log = await open(dir);
    row.reopenAfterKillMs = round(performance.now() - t);
    row.badRecordsAfterKill = check(log, n, 2);
    await log.close();
    row.diskBytesAfterKill = du(dir);
    row.xBaselineCreate = round((Number(row.createMs) + Number(row.appendOneEachMs)) / baseMs);
  } catch (err) {
    row.error = String(err);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return row;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!, Number(process.argv[4]));
  const machine = machineInfo();
  const { dir, cleanup } = tempRoot('commitlog-bench-partitions-');
  const rows: Record<string, number | string>[] = [];
  try {
    for (const n of counts) {
      const row = await run(dir, n);
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    cleanup();
  }
  console.log(`commitlog partitions: ${machine.cpus} x ${machine.cpuModel}, ${machine.platform} ${machine.kernel}, node ${machine.node}, ulimit -n ${fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)?.[1]}, vm.max_map_count ${fs.readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim()}, UV_THREADPOOL_SIZE ${threadPool}, load ${os.loadavg()[0].toFixed(2)}`);
  if (json) console.log(JSON.stringify({ bench: 'partitions', schema: 1, date: new Date().toISOString(), machine, threadPool, rows }));
}

await main();
