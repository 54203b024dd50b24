/**
 * Question: what does accepting a compressed batch cost on the produce path, where it
 * is synchronous (appendBatch checks a batch before its first await), and what does
 * reading one cost? For each codec, the same records (1000 x 100 B and 10 x 1 KiB of
 * JSON-like text, compressible as real payloads are) in one batch:
 *   check    verifyBatch + validateRecords: what appendBatch runs before storing
 *            (for a compressed batch: the CRC, decompression, record validation)
 *   decode   decodeBatches: every record built (what read() and the Consumer do)
 * Ratios are against the uncompressed batch ('none') of the same records, same run.
 * The event loop is blocked for the whole of a check: the 'us/batch' column is that
 * time per produced batch.
 *
 * Run: npx tsx bench/compression.ts [--json] [--seconds=N]
 */
import { decodeBatches, encodeBatch, verifyBatch } from '../src/log/batch.js';
import { ATTRIBUTES_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, CRC_POS, LOG_OVERHEAD } from '../src/log/batch.js';
import { validateRecords } from '../src/log/batch-validate.js';
import { compress } from '../src/log/compression.js';
import { crc32c } from '../src/native.js';
import { formatNumber, formatRatio, interleave, machineInfo, renderTable, round, timeSync, type Budget, type Contender, type Timing } from './lib.js';

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
const WORKLOADS = [{ valueBytes: 100, batchRecords: 1000 }, { valueBytes: 1024, batchRecords: 10 }];
const ROUNDS = 4;
const WARMUP_SECONDS = 0.2;
const POOL = 16;
const TS = 1_700_000_000_000;

const json = process.argv.includes('--json');
const secondsArg = process.argv.find((a) => a.startsWith('--seconds='));
const MEASURE_SECONDS = secondsArg === undefined ? 1 : Number(secondsArg.slice('--seconds='.length));
if (!(MEASURE_SECONDS > 0)) throw new Error(`--seconds must be a positive number, got ${secondsArg}`);

let sink = 0;

/** A value of about `bytes` bytes of JSON-like text that varies with i. */
function value(i: number, bytes: number): string {
  let s = `{"id":${i},"user":"user-${i % 997}","event":"${['click', 'view', 'buy', 'scroll'][i % 4]}","tags":[`;
  for (let k = 0; s.length < bytes - 2; k++) s += `"t${(i * 7 + k) % 50}",`;
  return `${s.slice(0, bytes - 2)}]}`;
}

function batchFor(codec: number, valueBytes: number, batchRecords: number, seed: number): Buffer {
  const plain = encodeBatch(Array.from({ length: batchRecords }, (_, i) => ({ key: `key-${(seed * batchRecords + i) % 10000}`, value: value(seed * batchRecords + i, valueBytes), timestamp: TS + i })), { timestamp: TS });
  if (codec === 0) return plain;
  const out = Buffer.concat([plain.subarray(0, BATCH_HEADER_BYTES), compress(codec, plain.subarray(BATCH_HEADER_BYTES))]);
  out.writeInt32BE(out.length - LOG_OVERHEAD, BATCH_LENGTH_POS);
  out.writeInt16BE(codec, ATTRIBUTES_POS);
  out.writeUInt32BE(crc32c(out, ATTRIBUTES_POS, out.length), CRC_POS);
  return out;
}

interface Row {
  workload: string;
  codec: string;
  op: 'check' | 'decode';
  batchBytes: number;
  recordsPerSec: number;
  usPerBatch: number;
  xNone: number;
}

async function measure(valueBytes: number, batchRecords: number): Promise<Row[]> {
  const pools = CODECS.map((_, c) => Array.from({ length: POOL }, (_, k) => batchFor(c, valueBytes, batchRecords, k)));
  const budget: Budget = { seconds: MEASURE_SECONDS, maxSteps: Number.MAX_SAFE_INTEGER, checkMask: 0 };
  const ops = ['check', 'decode'] as const;
  const contenders: Contender[] = [];
  for (const op of ops) {
    for (const pool of pools) {
      let offset = 0;
      const step = op === 'check'
        ? (i: number) => { const b = pool[i % POOL]; sink += validateRecords(b, 0, verifyBatch(b, 0, b.length)); }
        : (i: number) => { const b = pool[i % POOL]; sink += decodeBatches(b, 0, b.length).length; };
      contenders.push({ budget, run: (b: Budget): Timing => { const start = offset; const t = timeSync((i) => step(start + i), b); offset += t.steps; return t; } });
    }
  }
  const totals = await interleave(contenders, ROUNDS, WARMUP_SECONDS);
  const rows: Row[] = [];
  ops.forEach((op, o) => {
    const none = totals[o * CODECS.length].steps / totals[o * CODECS.length].seconds;
    CODECS.forEach((codec, c) => {
      const t = totals[o * CODECS.length + c];
      const batchesPerSec = t.steps / t.seconds;
      rows.push({
        workload: `v${valueBytes}.b${batchRecords}`, codec, op, batchBytes: pools[c][0].length,
        recordsPerSec: batchesPerSec * batchRecords, usPerBatch: 1e6 / batchesPerSec, xNone: batchesPerSec / none,
      });
    });
  });
  return rows;
}

const rows: Row[] = [];
for (const w of WORKLOADS) rows.push(...(await measure(w.valueBytes, w.batchRecords)));
if (sink === 0.5) console.log(sink);
if (json) {
  console.log(JSON.stringify({ bench: 'compression', machine: machineInfo(), seconds: MEASURE_SECONDS, rows: rows.map((r) => ({ ...r, recordsPerSec: round(r.recordsPerSec), usPerBatch: round(r.usPerBatch), xNone: round(r.xNone) })) }, null, 1));
} else {
  console.log(renderTable(['workload', 'op', 'codec', 'batch bytes', 'records/s', 'us/batch', 'x none'],
    rows.map((r) => [r.workload, r.op, r.codec, String(r.batchBytes), formatNumber(r.recordsPerSec), formatNumber(r.usPerBatch), formatRatio(r.xNone)])));
}
