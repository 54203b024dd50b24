/**
 * Question: consuming a 16-partition topic, what does one connection with MultiFetch
 * give against the old way, one connection per partition each with its own
 * single-partition Fetch loop?
 *
 * One run, one process (broker and clients share it, so every row pays for the broker
 * too), the same CommitLog with 16 partitions of 100-byte records, already in the
 * page cache after the first pass (a warm-up pass runs before the measured rounds):
 *   per-partition  16 Connections, each looping Fetch for its partition (one in
 *                  flight, maxBytes 1 MiB), every record decoded: what the Consumer
 *                  did before MultiFetch.
 *   multi-fetch    1 Connection looping MultiFetch for all 16 partitions (per
 *                  partition 1 MiB, overall 16 MiB), every record decoded.
 *   Consumer (before)  the Consumer as it was before MultiFetch (bench/legacy/, one
 *                  connection per partition plus one for metadata), a for-await loop.
 *   Consumer       the Consumer now (one connection, MultiFetch), a for-await loop.
 * The rows run interleaved for --rounds rounds after a warm-up round (default 3); the
 * median records/s of each is shown, with its ratio to its baseline measured in the
 * same run: multi-fetch against per-partition, Consumer against Consumer (before).
 *
 * Run: npx tsx bench/multi-fetch.ts [--json] [--records N] [--rounds N]   (--json: one
 * JSON object on the last line). Never gates CI.
 */
import { CommitLog } from '../src/log/commit-log.js';
import { decodeBatches } from '../src/log/batch-decode.js';
import { encodeBatch } from '../src/log/batch.js';
import { Connection } from '../src/net/client/connection.js';
import { Consumer } from '../src/net/client/consumer.js';
import { Consumer as LegacyConsumer } from './legacy/consumer.js';
import { startBroker } from '../src/net/broker/server.js';
import { formatNumber, formatRatio, machineInfo, renderTable, round, tempRoot } from './lib.js';

const TOPIC = 'sixteen';
const PARTITIONS = 16;
const VALUE_BYTES = 100;
const BATCH_RECORDS = 1000;
const MAX_BYTES = 1024 * 1024;
const quiet = { info: (): void => undefined, warn: (): void => undefined };

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
}

const json = process.argv.includes('--json');
const totalRecords = arg('--records', 1_600_000);
const rounds = arg('--rounds', 3);
const perPartition = Math.ceil(totalRecords / PARTITIONS / BATCH_RECORDS) * BATCH_RECORDS;

async function perPartitionConnections(port: number, ends: number[]): Promise<number> {
  const counts = await Promise.all(ends.map(async (end, partition) => {
    const conn = await Connection.connect({ host: '127.0.0.1', port });
    let offset = 0;
    let records = 0;
    while (offset < end) {
      const r = await conn.request({ case: 'fetch', value: { topic: TOPIC, partition, offset, maxBytes: MAX_BYTES, maxWaitMs: 500, minBytes: 1 } });
      const decoded = decodeBatches(r.payload, 0, r.payload.length, offset);
      records += decoded.length;
      offset = decoded.at(-1)!.offset + 1;
    }
    await conn.close();
    return records;
  }));
  return counts.reduce((a, b) => a + b, 0);
}

async function oneConnectionMultiFetch(port: number, ends: number[]): Promise<number> {
  const conn = await Connection.connect({ host: '127.0.0.1', port });
  const offsets = ends.map(() => 0);
  let records = 0;
  while (offsets.some((o, p) => o < ends[p]!)) {
    const partitions = offsets.flatMap((offset, partition) => (offset < ends[partition]! ? [{ topic: TOPIC, partition, offset, maxBytes: MAX_BYTES }] : []));
    const r = await conn.request({ case: 'multiFetch', value: { partitions, maxBytes: 16 * MAX_BYTES, maxWaitMs: 500, minBytes: 1 } });
    const body = r.header.body;
    if (body?.case !== 'multiFetch') throw new Error('not a multiFetch response');
    let at = 0;
    body.value.partitions.forEach((result, i) => {
      const { partition, offset } = partitions[i]!;
      if (result.bytes > 0) {
        const decoded = decodeBatches(r.payload, at, at + result.bytes, offset);
        records += decoded.length;
        offsets[partition] = decoded.at(-1)!.offset + 1;
      }
      at += result.bytes;
    });
  }
  await conn.close();
  return records;
}

async function legacyConsumer(port: number, ends: number[]): Promise<number> {
  return consumeAll(new LegacyConsumer({ broker: `127.0.0.1:${port}`, topic: TOPIC, logger: quiet }), ends);
}

async function consumer(port: number, ends: number[]): Promise<number> {
  return consumeAll(new Consumer({ broker: `127.0.0.1:${port}`, topic: TOPIC, logger: quiet }), ends);
}

async function consumeAll(c: Consumer | LegacyConsumer, ends: number[]): Promise<number> {
  const total = ends.reduce((a, b) => a + b, 0);
  let records = 0;
  for await (const r of c) {
    if (r.value !== null) records++;
    if (records === total) break;
  }
  await c.close();
  return records;
}

async function main(): Promise<void> {
  const { dir, cleanup } = tempRoot('commitlog-bench-multi-fetch-');
  const log = await CommitLog.open({ dir, logger: quiet, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: 512 * 1024 * 1024 } });
  try {
    await log.createTopic(TOPIC, { partitions: PARTITIONS });
    const value = Buffer.alloc(VALUE_BYTES, 120);
    const batch = encodeBatch(Array.from({ length: BATCH_RECORDS }, () => ({ value })), { timestamp: Date.now() });
    for (let p = 0; p < PARTITIONS; p++) {
      for (let n = 0; n < perPartition; n += BATCH_RECORDS) await log.appendBatch(TOPIC, p, Buffer.from(batch));
    }
    const ends = Array.from({ length: PARTITIONS }, (_, p) => log.latestOffset(TOPIC, p));
    const broker = await startBroker({ log, logger: quiet });
    const rows: Record<string, number[]> = { 'per-partition': [], 'multi-fetch': [], 'Consumer (before)': [], Consumer: [] };
    const runs: [string, (port: number, ends: number[]) => Promise<number>][] = [
      ['per-partition', perPartitionConnections], ['multi-fetch', oneConnectionMultiFetch], ['Consumer (before)', legacyConsumer], ['Consumer', consumer],
    ];
    const connections: Record<string, number> = {};
    for (let round_ = 0; round_ <= rounds; round_++) {
      for (const [name, run] of runs) {
        const before = broker.stats().connectionsAccepted;
        const started = performance.now();
        const records = await run(broker.port, ends);
        const seconds = (performance.now() - started) / 1000;
        if (records !== ends.reduce((a, b) => a + b, 0)) throw new Error(`${name} read ${records} records`);
        connections[name] = broker.stats().connectionsAccepted - before;
        if (round_ > 0) rows[name]!.push(records / seconds); // round 0 warms up
      }
    }
    await broker.close();
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Each reader against its own baseline: the raw loops against per-partition, the Consumer against the Consumer before.
    const baseOf = (name: string): number => median(rows[name.startsWith('Consumer') ? 'Consumer (before)' : 'per-partition']!);
    const result = Object.fromEntries(Object.entries(rows).map(([name, xs]) => [name, {
      recordsPerSecond: round(median(xs)), ratioToBaseline: round(median(xs) / baseOf(name)), connections: connections[name],
    }]));
    const machine = machineInfo();
    if (!json) {
      console.log(`multi-fetch bench: ${PARTITIONS} partitions x ${perPartition} records of ${VALUE_BYTES} B, ${rounds} rounds (median), machine ${JSON.stringify(machine)}`);
      console.log(renderTable(['reader', 'connections', 'records/s', 'vs baseline'], Object.entries(result).map(([name, r]) => [
        name, String(r.connections), formatNumber(r.recordsPerSecond), formatRatio(r.ratioToBaseline),
      ])));
    }
    if (json) console.log(JSON.stringify({ bench: 'multi-fetch', partitions: PARTITIONS, recordsPerPartition: perPartition, valueBytes: VALUE_BYTES, rounds, machine, result }));
  } finally {
    await log.close();
    cleanup();
  }
}

await main();
