/**
 * Thousands of partitions (issue 9.2): a topic of 1,000 partitions with one record each
 * is created, closed and reopened, and SIGKILLed in a child and recovered, with every
 * record back and the disk it takes bounded (st_blocks, what du counts); and a
 * directory that needs more descriptors or mappings than the process may have fails
 * at open with ERR_LIMIT naming the limit, before anything is opened.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLogError } from '../../src/errors.js';
import { CommitLog } from '../../src/log/commit-log.js';
import { LIMIT_CODE, ensureLimitsFor } from '../../src/log/limits.js';
import { tmpDir } from '../helpers/tmp.js';
import { diskUsage } from '../helpers/disk.js';

const PARTITIONS = 1000;
const GiB = 1024 ** 3;
const quiet = { info: () => undefined, warn: () => undefined };
const here = path.dirname(fileURLToPath(import.meta.url));

function expectRecords(t: import('ava').ExecutionContext, log: CommitLog, perPartition: number): void {
  const wrong: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    if (log.latestOffset('big', p) !== perPartition) wrong.push(`${p}: ${log.latestOffset('big', p)} records`);
    for (let n = 0; n < perPartition && wrong.length < 10; n++) {
      const value = log.read('big', p, n)[0]?.value?.toString();
      if (value !== `p${p}-n${n}`) wrong.push(`${p}/${n}: ${value}`);
    }
  }
  t.deepEqual(wrong.slice(0, 10), [], 'every record back, in its partition');
}

/** Runs partitions-child.ts until it acknowledged its appends, then SIGKILLs it. */
async function appendInChildAndKill(dir: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'partitions-child.ts'), dir, String(PARTITIONS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ACKED')) resolve();
    });
    void exited.then((e) => reject(new Error(`child exited before acknowledging: ${JSON.stringify(e)} ${err.slice(-2000)}`)));
  });
  child.kill('SIGKILL');
  await exited;
}

test.serial(`${PARTITIONS} partitions: created, one record each, clean reopen and reopen after SIGKILL with every record back, bounded disk`, async (t) => {
  const dir = tmpDir(t);
  let started = performance.now();
  const log = await CommitLog.open({ dir, flush: 'sync', logger: quiet, retentionCheckIntervalMs: 0 });
  await log.createTopic('big', { partitions: PARTITIONS });
  const createMs = performance.now() - started;
  await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => log.append('big', p, [{ value: Buffer.from(`p${p}-n0`) }])));
  await log.close();
  const afterCreate = diskUsage(dir);
  t.log(`create ${createMs.toFixed(0)} ms; disk ${(afterCreate / 2 ** 20).toFixed(1)} MiB after one record each`);
  t.true(afterCreate < 2 * GiB, `${afterCreate} bytes on disk`);

  started = performance.now();
  const clean = await CommitLog.open({ dir, flush: 'sync', logger: quiet, retentionCheckIntervalMs: 0 });
  t.log(`clean reopen ${(performance.now() - started).toFixed(0)} ms`);
  t.true(clean.recovery.clean);
  expectRecords(t, clean, 1);
  await clean.close();

  await appendInChildAndKill(dir);
  started = performance.now();
  const recovered = await CommitLog.open({ dir, flush: 'sync', logger: quiet, retentionCheckIntervalMs: 0 });
  t.log(`reopen after SIGKILL ${(performance.now() - started).toFixed(0)} ms`);
  t.false(recovered.recovery.clean);
  t.is(recovered.recovery.droppedBatches, 0);
  expectRecords(t, recovered, 2);
  await recovered.close();
  const afterKill = diskUsage(dir);
  t.log(`disk ${(afterKill / 2 ** 20).toFixed(1)} MiB after two records each`);
  t.true(afterKill < 2 * GiB, `${afterKill} bytes on disk`);

  // The same directory under a descriptor limit it cannot fit: a clear error at open.
  const low = spawnSync('sh', ['-c', `ulimit -n 600 && exec "${process.execPath}" --import tsx "${path.join(here, 'fixtures', 'open-child.ts')}" "${dir}"`], { encoding: 'utf8', timeout: 60_000 });
  t.is(low.status, 0, low.stderr);
  t.regex(low.stdout, /^FAILED ERR_LIMIT opening .*: 1000 partitions need about \d+ file descriptors .*the limit is 600: raise it/);
});

test('a directory past the descriptor or mapping limit fails at open with ERR_LIMIT naming the limit', (t) => {
  const fds = t.throws(() => ensureLimitsFor(10_000, 256, 'opening /data', { maxFds: 1024, openFds: 20, maxMaps: 65530, maps: 300 }), { instanceOf: CommitLogError });
  t.is(fds?.code, LIMIT_CODE);
  t.regex(fds!.message, /10000 partitions need about 10532 file descriptors .*the limit is 1024: raise it \(ulimit -n/);
  const maps = t.throws(() => ensureLimitsFor(30_000, 256, 'opening /data', { maxFds: 1_000_000, openFds: 20, maxMaps: 65530, maps: 300 }), { instanceOf: CommitLogError });
  t.is(maps?.code, LIMIT_CODE);
  t.regex(maps!.message, /need about 92092 memory mappings .*vm.max_map_count is 65530: raise it \(sysctl -w vm.max_map_count=/);
  t.notThrows(() => ensureLimitsFor(10_000, 256, 'opening /data', { maxFds: 20_000, openFds: 20, maxMaps: 65530, maps: 300 }));
});

