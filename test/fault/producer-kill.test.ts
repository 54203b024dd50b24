/**
 * Idempotent producers across SIGKILL: a child (producer-appender.ts) appends
 * sequenced batches with 5 in flight and is killed; the reopened log recognises every
 * resent batch among the producer's last 5 as a duplicate and answers its original
 * offsets (those the child printed, for acknowledged ones), stores nothing twice, takes
 * the next sequence, and hands out a producer id above the killed life's.
 */
import { spawn } from 'node:child_process';
import test from 'ava';
import { CommitLog } from '../../src/log/commit-log.js';
import type { FlushPolicy } from '../../src/log/partition-log.js';
import { ErrorCode } from '../../src/errors.js';
import { RECORDS_PER_BATCH, producerBatch } from './producer-appender.js';
import { tempDir } from './helpers.js';

interface Run {
  producerId: number;
  acks: Map<number, { baseOffset: number; lastOffset: number }>;
}

/** Runs the child until `acks` batches were acknowledged, then SIGKILLs it. */
function runAndKill(dir: string, flush: FlushPolicy, acks: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', 'test/fault/producer-appender.ts', dir, flush], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { producerId: -1, acks: new Map() };
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const f = line.split(' ');
        if (f[0] === 'ID') run.producerId = Number(f[1]);
        else if (f[0] === 'ACK') run.acks.set(Number(f[1]), { baseOffset: Number(f[2]), lastOffset: Number(f[3]) });
      }
      if (!killed && run.acks.size >= acks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(run);
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

for (const flush of ['sync', 'async'] as const) {
  test(`${flush}: after SIGKILL a resent batch is a duplicate answered with its original offsets`, async (t) => {
    t.timeout(120_000);
    const dir = tempDir(t);
    const run = await runAndKill(dir, flush, 200);
    t.true(run.producerId >= 0);
    const log = await CommitLog.open({ dir, flush });
    t.teardown(() => log.close());
    t.false(log.recovery.clean);
    const end = log.latestOffset('t', 0);
    t.is(end % RECORDS_PER_BATCH, 0);
    // What survived: batches 0 .. stored-1 (the page cache outlives the process, so every
    // acknowledged batch is there under both policies; in-flight ones may be too).
    const stored = end / RECORDS_PER_BATCH;
    const maxAcked = Math.max(...run.acks.keys());
    t.true(stored > maxAcked, `stored ${stored} batches, the child acknowledged batch ${maxAcked}`);
    // The producer resends its last 5 batches, as after a lost connection.
    for (let n = stored - 5; n < stored; n++) {
      const r = await log.appendBatch('t', 0, producerBatch(run.producerId, n));
      t.deepEqual(r, { baseOffset: n * RECORDS_PER_BATCH, lastOffset: n * RECORDS_PER_BATCH + 2, duplicate: true }, `batch ${n}`);
      const acked = run.acks.get(n);
      if (acked !== undefined) t.deepEqual({ baseOffset: r.baseOffset, lastOffset: r.lastOffset }, acked, `batch ${n}: the offsets the child was told`);
    }
    t.is(log.latestOffset('t', 0), end, 'nothing stored twice');
    // Older than the last 5: not recognised, refused rather than stored again.
    await t.throwsAsync(log.appendBatch('t', 0, producerBatch(run.producerId, stored - 6)), { code: ErrorCode.OUT_OF_ORDER_SEQUENCE });
    t.deepEqual(await log.appendBatch('t', 0, producerBatch(run.producerId, stored)), { baseOffset: end, lastOffset: end + 2 });
    // Every record once, in order.
    const values = log.read('t', 0, 0, { maxBytes: 64 << 20 }).map((r) => String(r.value));
    t.deepEqual(values.slice(0, 6), [0, 1, 2, 3, 4, 5].map((i) => `p${run.producerId}-n${Math.floor(i / 3)}-r${i % 3}`));
    t.is(new Set(values).size, values.length);
    // Ids are never handed out twice: the killed life reserved a block.
    const { producerId } = await log.initProducerId();
    t.true(producerId > run.producerId, `new id ${producerId} after ${run.producerId}`);
  });
}
