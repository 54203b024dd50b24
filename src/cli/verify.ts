/**
 * `commitlog verify DIR [--repair]`: offline check of every batch checksum and every
 * index against its log (src/ops/verify.ts has what is checked). Prints one line per
 * problem, `FILE:POSITION: problem`, then a summary; exits 0 when clean, 1 when not.
 * With --repair it lets the engine truncate and rebuild (see repairDataDir), verifies
 * again and exits 0 only when nothing is left. A progress bar shows on a terminal.
 */
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../errors.js';
import { createProgress, formatBytes } from '../ops/progress.js';
import { lockForReading, repairDataDir, verifyLocated, type VerifyReport } from '../ops/verify.js';
import { locate } from '../ops/data-dir.js';
import { Output, UsageError, guard, intFlag, parse } from './args.js';

const USAGE = `usage: commitlog verify DIR [--topic T] [--partition N] [--repair]

Checks a data directory offline: every batch's length, magic, CRC32C and offsets, the
bytes after the last batch, every consume queue and time index against its log, the
recovery points and the topic metadata. Prints 'FILE:POSITION: problem' per problem and
exits 0 when there is none, 1 otherwise. DIR may also be one partition's directory or
one .log file.

  --topic T        only this topic
  --partition N    only this partition (of every topic, or of --topic)
  --repair         fix what recovery fixes, in the whole data directory: truncate a
                   torn tail at the first bad batch (past the recovery point), rebuild
                   inconsistent indexes; then verify again. The broker must be stopped.
                   Damage before a recovery point is reported, not repaired.
`;

const OPTIONS = {
  topic: { type: 'string' },
  partition: { type: 'string' },
  repair: { type: 'boolean' },
} as const;

export function run(args: string[]): Promise<number> {
  return guard('verify', USAGE, async () => {
    const parsed = parse(args, OPTIONS, USAGE, { min: 1, max: 1, names: 'DIR' });
    if (parsed === null) return 0;
    const target = parsed.positionals[0]!;
    const filter = { topic: parsed.values.topic as string | undefined, partition: intFlag(parsed.values, 'partition', 0) };
    const repair = parsed.values.repair === true;
    if (repair && (filter.topic !== undefined || filter.partition !== undefined)) throw new UsageError('--repair works on the whole data directory: not with --topic or --partition');
    const out = new Output();
    const located = locate(target, filter);
    if (repair && located.dataDir === null) throw new UsageError(`--repair needs a data directory, not a partition directory or a segment file: ${target}`);
    const release = located.dataDir === null ? () => undefined : lockForReading(located.dataDir);
    if (release === null && repair) {
      throw new CommitLogError(ErrorCode.LOCKED, `data directory ${target} is in use (lock file ${path.join(target, '.lock')}); stop the broker first`, { path: target });
    }
    if (release === null) {
      process.stderr.write(`commitlog verify: warning: ${target} is in use by a running broker; its active segments change during the check, so their last batches may show as problems\n`);
    }
    let before: VerifyReport;
    try {
      before = check(located, 'verify');
    } finally {
      release?.();
    }
    print(out, before, release === null);
    if (!repair) {
      await out.end();
      return before.problems.length === 0 ? 0 : 1;
    }
    if (before.problems.length === 0) {
      out.push('nothing to repair\n');
      await out.end();
      return 0;
    }
    await out.flush(); // the report stays printed if the repair fails
    const bar = createProgress('re-verify', 0);
    let result;
    try {
      result = await repairDataDir(located.dataDir!, before, { onProgress: (done, _total, file) => bar.update(done, path.basename(file)) });
    } finally {
      bar.done();
    }
    for (const file of result.removedIndexes) out.push(`removed inconsistent index ${file}\n`);
    for (const line of result.recovered) out.push(`recovery: ${line}\n`);
    out.push(`opened ${result.sealedChecked} sealed segments to check their indexes\n`);
    out.push('after repair:\n');
    print(out, result.after);
    await out.end();
    return result.after.problems.length === 0 ? 0 : 1;
  });
}

function check(located: ReturnType<typeof locate>, label: string): VerifyReport {
  const total = located.topics.reduce((n, t) => n + t.partitions.reduce((m, p) => m + p.segments.reduce((k, s) => k + s.logBytes, 0), 0), 0);
  const bar = createProgress(label, total);
  try {
    return verifyLocated(located, { onProgress: (done, _total, file) => bar.update(done, path.basename(file)) });
  } finally {
    bar.done();
  }
}

function print(out: Output, r: VerifyReport, inUse = false): void {
  for (const p of r.problems) out.push(`${p.file}:${p.position}: ${p.message}\n`);
  const clean = inUse ? ', in use by a broker' : r.cleanShutdown === null ? '' : r.cleanShutdown ? ', closed cleanly' : ', not closed cleanly (the next open runs recovery)';
  const what = `${r.topics} topics, ${r.partitions} partitions, ${r.segments} segments, ${r.batches} batches, ${r.records} records, ${formatBytes(r.bytes)}${clean}`;
  out.push(r.problems.length === 0 ? `verified ${what}: no problems\n` : `verified ${what}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}\n`);
}
