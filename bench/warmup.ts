/**
 * One question: does faulting segment pages in ahead of the writer (warmSegments,
 * MADV_POPULATE_WRITE on the thread pool) make appends faster? Appends 1000 x 100-byte
 * record batches with warm-up off and on, alternating in slices so both see the same
 * machine, and reports records/s and the process's CPU (user, system; the thread
 * pool's populate calls count as system time) per variant.
 *
 * Run: npx tsx bench/warmup.ts [--json] [--records N]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLog } from '../src/index.js';

const argRecords = process.argv.find((a) => a.startsWith('--records='));
const RECORDS_PER_SLICE = argRecords ? Number(argRecords.slice(10)) : 1_000_000;
const SLICES = 4;
const records = Array.from({ length: 1000 }, (_, i) => ({ value: Buffer.alloc(100, i & 0xff) }));

interface Result { records: number; seconds: number; userS: number; systemS: number }

async function slice(log: CommitLog): Promise<Result> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let n = 0; n < RECORDS_PER_SLICE; n += records.length) await log.append('t', 0, records);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { records: RECORDS_PER_SLICE, seconds, userS: c.user / 1e6, systemS: c.system / 1e6 };
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-bench-warmup-'));
  const logs: Record<string, CommitLog> = {};
  const totals: Record<string, Result> = {};
  try {
    for (const warm of [false, true]) {
      const name = warm ? 'warm' : 'cold';
      logs[name] = await CommitLog.open({ dir: path.join(root, name), flush: 'os', warmSegments: warm, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: 128 * 1024 * 1024, retentionBytes: 256 * 1024 * 1024 } });
      await logs[name].createTopic('t');
      totals[name] = { records: 0, seconds: 0, userS: 0, systemS: 0 };
    }
    for (let i = 0; i < SLICES; i++) {
      for (const name of i % 2 === 0 ? ['cold', 'warm'] : ['warm', 'cold']) {
        const r = await slice(logs[name]);
        const t = totals[name];
        t.records += r.records; t.seconds += r.seconds; t.userS += r.userS; t.systemS += r.systemS;
        await logs[name].enforceRetention();
      }
    }
  } finally {
    for (const log of Object.values(logs)) await log.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  const rows = Object.entries(totals).map(([name, t]) => ({
    variant: name === 'warm' ? 'warmSegments: true' : 'warmSegments: false',
    recordsPerSec: Math.round(t.records / t.seconds),
    userSPerMillion: +(t.userS / (t.records / 1e6)).toFixed(3),
    systemSPerMillion: +(t.systemS / (t.records / 1e6)).toFixed(3),
  }));
  console.log(`warm-up bench: ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(2)}, ${SLICES} alternating slices of ${RECORDS_PER_SLICE} records (1000 x 100 B per append, flush 'os')`);
  for (const r of rows) console.log(`  ${r.variant.padEnd(20)} ${r.recordsPerSec.toLocaleString().padStart(12)} records/s   CPU per million records: user ${r.userSPerMillion} s, system ${r.systemSPerMillion} s`);
  const ratio = rows[1].recordsPerSec / rows[0].recordsPerSec;
  console.log(`  warm / cold throughput: ${ratio.toFixed(2)}x`);
  if (process.argv.includes('--json')) console.log(JSON.stringify({ rows, warmOverCold: +ratio.toFixed(3) }));
}

await main();
