/**
 * Question: what does record-level validation (validateRecords, batch-validate.ts) cost
 * on the produce path, next to the CRC check it follows and a full decode?
 *
 * For 100 B and 1 KiB values in batches of 1 and 1000 records (8-byte ASCII keys, no
 * headers, encoded by encodeBatch), one run puts side by side, on the same pool of
 * prebuilt batches:
 *   crc        verifyBatch: frame, CRC32C (native), header (the baseline)
 *   validate   validateRecords alone (header from an earlier verifyBatch)
 *   both       verifyBatch + validateRecords: what appendBatch checks before storing
 *   decode     decodeBatches: every record built as an object (what read() does)
 * Contenders of one workload run interleaved (lib.ts interleave(): a warm-up each, then
 * ROUNDS round-robin slices). MB = 1e6 bytes of encoded batch (what the checks scan).
 * "vs crc" is records/s over crc's; "vs decode" over decode's.
 *
 * Run: npx tsx bench/validate.ts [--json] [--seconds=S] (S per contender, default 1).
 * --json prints one JSON object on the last line. Never gates CI.
 */
import os from 'node:os';
import { decodeBatches, encodeBatch, verifyBatch, type BatchHeader } from '../src/log/batch.js';
import { validateRecords } from '../src/log/batch-validate.js';
import { formatNumber, formatRatio, interleave, machineInfo, randomValues, renderTable, round, timeSync, type Budget, type Contender, type Timing } from './lib.js';

const VALUE_BYTES = [100, 1024];
const BATCH_RECORDS = [1, 1000];
const ROUNDS = 4;
const WARMUP_SECONDS = 0.2;
/** Distinct batches per workload, so no contender re-reads one cached buffer. */
const POOL_BYTES = 8 * 1024 * 1024;
const TS = 1_700_000_000_000;

const json = process.argv.includes('--json');
const secondsArg = process.argv.find((a) => a.startsWith('--seconds='));
const MEASURE_SECONDS = secondsArg === undefined ? 1 : Number(secondsArg.slice('--seconds='.length));
if (!(MEASURE_SECONDS > 0)) throw new Error(`--seconds must be a positive number, got ${secondsArg}`);

interface Row {
  workload: string;
  variant: string;
  valueBytes: number;
  batchRecords: number;
  recordsPerSec: number;
  batchMBps: number;
  xCrc: number;
  xDecode: number;
}

const VARIANTS = ['crc', 'validate', 'both', 'decode'] as const;
type Variant = (typeof VARIANTS)[number];

/** Keeps results alive so no contender's work can be optimized away. */
let sink = 0;

function pool(valueBytes: number, batchRecords: number): Buffer[] {
  const batchBytes = encodeBatch(records(valueBytes, batchRecords, [Buffer.alloc(valueBytes)])).length;
  const count = Math.max(4, Math.min(4096, Math.floor(POOL_BYTES / batchBytes)));
  const values = randomValues(Math.min(count * batchRecords, 4096), valueBytes);
  return Array.from({ length: count }, (_, i) => encodeBatch(records(valueBytes, batchRecords, values, i * batchRecords), { timestamp: TS + i }));
}

function records(valueBytes: number, n: number, values: Buffer[], from = 0): { key: string; value: Buffer; timestamp: number }[] {
  return Array.from({ length: n }, (_, i) => ({ key: `key-${String((from + i) % 10000).padStart(4, '0')}`, value: values[(from + i) % values.length], timestamp: TS + (i % 100) }));
}

function step(variant: Variant, batches: Buffer[], headers: BatchHeader[]): (i: number) => void {
  const n = batches.length;
  switch (variant) {
    case 'crc':
      return (i) => {
        const b = batches[i % n];
        sink += verifyBatch(b, 0, b.length).recordCount;
      };
    case 'validate':
      return (i) => {
        const k = i % n;
        sink += validateRecords(batches[k], 0, headers[k]);
      };
    case 'both':
      return (i) => {
        const b = batches[i % n];
        sink += validateRecords(b, 0, verifyBatch(b, 0, b.length));
      };
    case 'decode':
      return (i) => {
        const b = batches[i % n];
        sink += decodeBatches(b, 0, b.length).length;
      };
  }
}

async function measure(valueBytes: number, batchRecords: number): Promise<Row[]> {
  const batches = pool(valueBytes, batchRecords);
  const headers = batches.map((b) => verifyBatch(b, 0, b.length));
  const batchBytes = batches[0].length;
  // Steps of a 1-record batch take ~100 ns: read the clock every 1024 of them.
  const budget: Budget = { seconds: MEASURE_SECONDS, maxSteps: Number.MAX_SAFE_INTEGER, checkMask: batchRecords >= 100 ? 0 : 1023 };
  let offset = 0;
  const contenders: Contender[] = VARIANTS.map((v) => {
    const run = step(v, batches, headers);
    return {
      budget,
      run: (b: Budget): Timing => {
        const start = offset;
        const t = timeSync((i) => run(start + i), b);
        offset += t.steps;
        return t;
      },
    };
  });
  const totals = await interleave(contenders, ROUNDS, WARMUP_SECONDS);
  const perSec = totals.map((t) => (t.steps * batchRecords) / t.seconds);
  const crc = perSec[VARIANTS.indexOf('crc')];
  const decode = perSec[VARIANTS.indexOf('decode')];
  return VARIANTS.map((variant, k) => ({
    workload: `v${valueBytes}.b${batchRecords}`,
    variant,
    valueBytes,
    batchRecords,
    recordsPerSec: perSec[k],
    batchMBps: (perSec[k] / batchRecords) * batchBytes / 1e6,
    xCrc: perSec[k] / crc,
    xDecode: perSec[k] / decode,
  }));
}

const LABELS: Record<Variant, string> = {
  crc: 'crc       verifyBatch (CRC32C + header)',
  validate: 'validate  validateRecords alone',
  both: 'both      verifyBatch + validateRecords',
  decode: 'decode    decodeBatches (records built)',
};

async function main(): Promise<void> {
  const machine = machineInfo();
  const load = os.loadavg()[0];
  const rows: Row[] = [];
  for (const v of VALUE_BYTES) for (const b of BATCH_RECORDS) rows.push(...(await measure(v, b)));
  console.log(`commitlog validate: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, load ${load.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`);
  console.log(`each row: ${WARMUP_SECONDS} s warm-up, then ${MEASURE_SECONDS} s in ${ROUNDS} slices interleaved with its group; MB = 1e6 bytes of encoded batch\n`);
  const headers = ['variant', 'records/s', 'MB/s', 'vs crc', 'vs decode'];
  const body: (string[] | null)[] = [];
  for (const r of rows) {
    if (r.variant === 'crc') {
      if (body.length > 0) body.push(null);
      body.push([`${r.valueBytes} B values x ${r.batchRecords} record${r.batchRecords === 1 ? '' : 's'} per batch`, '', '', '', '']);
    }
    body.push([`  ${LABELS[r.variant as Variant]}`, formatNumber(r.recordsPerSec), formatNumber(r.batchMBps), formatRatio(r.xCrc), formatRatio(r.xDecode)]);
  }
  console.log(renderTable(headers, body));
  if (sink === 0.5) console.log('unreachable');
  if (json) {
    const out: Record<string, unknown> = {};
    for (const { workload, variant, ...rest } of rows) {
      out[`${variant}.${workload}`] = { ...rest, recordsPerSec: round(rest.recordsPerSec), batchMBps: round(rest.batchMBps), xCrc: round(rest.xCrc), xDecode: round(rest.xDecode) };
    }
    console.log(JSON.stringify({ bench: 'validate', schema: 1, date: new Date().toISOString(), machine, settings: { measureSeconds: MEASURE_SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS, poolBytes: POOL_BYTES }, rows: out }));
  }
}

await main();
