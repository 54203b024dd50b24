/**
 * Question: what do Kafka clients get from commitlog's Kafka listener, next to
 * commitlog's own clients on its native protocol, against the same broker in one run?
 *
 * One broker process (`commitlog broker --kafka-port 0 --port 0 --flush async`); this
 * process drives the clients, one after the other, each on its own topic with the same
 * partition count, 100-byte values and no keys:
 *   librdkafka  bench/kafka-librdkafka.c, compiled here with `cc -O2 ... -lrdkafka`
 *               (Debian librdkafka-dev): produce (rd_kafka_produce_batch) with acks=1, linger 5 ms, batches up
 *               to 1 MB; consume by assigning every partition from the beginning.
 *   kafkajs     in this process: send() of 1,000-record arrays, 8 in flight, acks 1;
 *               consume with eachBatch from the beginning (a fresh group).
 *   commitlog   its own Producer (send() per record, defaults: linger 5 ms, 1 MiB
 *               batches) and Consumer (for-await per record), native protocol.
 * Rates are records/s: produce from the first send to the last acknowledgement (after
 * connecting), consume from the start (librdkafka: its assign; commitlog: the
 * Consumer's creation, so connecting is included) or, for kafkajs, from its group join
 * (the coordinator's initial rebalance delay is not counted) to the last record. Each row also shows the broker's CPU seconds for the phase
 * (from /proc). Targets: librdkafka produce >= 1,000,000 records/s and consume >=
 * 1,500,000 records/s; they are reported, met or not.
 *
 * Run: npx tsx bench/kafka.ts [--json] [--records N] [--kafkajs-records N]
 *      [--own-records N] [--partitions N]   (--json: one JSON object on the last line)
 * Needs cc and librdkafka-dev for the librdkafka rows (skipped with a line otherwise).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin } from '../src/net/client/admin.js';
import { Consumer } from '../src/net/client/consumer.js';
import { Producer } from '../src/net/client/producer.js';
import { formatNumber, machineInfo, renderTable, round, tempRoot } from './lib.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const VALUE_BYTES = 100;
const TARGETS = { librdkafkaProduce: 1_000_000, librdkafkaConsume: 1_500_000 };

interface Row {
  client: string;
  phase: 'produce' | 'consume';
  records: number;
  seconds: number;
  recordsPerSecond: number;
  mbPerSecond: number;
  brokerCpuSeconds: number;
  /** librdkafka consume: the rate from its first record on (connecting excluded). */
  recordsPerSecondFromFirst?: number;
  target?: number;
  met?: boolean;
}

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    records: { type: 'string', default: '3000000' },
    'kafkajs-records': { type: 'string', default: '300000' },
    'own-records': { type: 'string', default: '1000000' },
    partitions: { type: 'string', default: '4' },
  },
});
const RECORDS = Number(flags.records);
const KAFKAJS_RECORDS = Number(flags['kafkajs-records']);
const OWN_RECORDS = Number(flags['own-records']);
const PARTITIONS = Number(flags.partitions);

function log(line: string): void {
  if (!flags.json) process.stdout.write(`${line}\n`);
  else process.stderr.write(`${line}\n`);
}

// ------------------------------------------------------------------ the broker

interface BrokerChild {
  child: ChildProcess;
  kafka: string;
  native: string;
  cpuSeconds(): number;
  stop(): Promise<void>;
}

async function startBrokerProcess(dir: string): Promise<BrokerChild> {
  const help = execFileSync(process.execPath, [path.join(root, 'bin', 'commitlog.js'), 'broker', '--help'], { encoding: 'utf8' });
  const extra = help.includes('--http-port') ? ['--http-port', 'off'] : [];
  const child = spawn(process.execPath, [path.join(root, 'bin', 'commitlog.js'), 'broker', '--dir', dir, '--port', '0', '--kafka-port', '0', '--flush', 'async', '--log-level', 'warn', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/listening on /.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`broker did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const k = /kafka listener on (\S+):(\d+)/.exec(out);
  const n = /listening on (\S+):(\d+)/.exec(out)!;
  if (k === null) throw new Error(`the broker printed no kafka listener line: ${out}`);
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return {
    child,
    kafka: `${k[1]}:${k[2]}`,
    native: `${n[1]}:${n[2]}`,
    cpuSeconds: () => {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / ticks; // utime, stime
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function phase(broker: BrokerChild, client: string, name: Row['phase'], records: number, run: () => Promise<number | { seconds: number; fromFirst?: number }>, target?: number): Promise<Row> {
  const cpu0 = broker.cpuSeconds();
  const result = await run();
  const seconds = typeof result === 'number' ? result : result.seconds;
  const fromFirst = typeof result === 'number' ? undefined : result.fromFirst;
  const row: Row = {
    client,
    phase: name,
    records,
    seconds: round(seconds),
    recordsPerSecond: Math.round(records / seconds),
    mbPerSecond: round((records * VALUE_BYTES) / seconds / 1e6),
    brokerCpuSeconds: round(broker.cpuSeconds() - cpu0),
  };
  if (fromFirst !== undefined) row.recordsPerSecondFromFirst = Math.round(records / fromFirst);
  if (target !== undefined) {
    row.target = target;
    row.met = row.recordsPerSecond >= target;
  }
  log(`${client} ${name}: ${formatNumber(row.recordsPerSecond)} records/s (${row.seconds} s, broker CPU ${row.brokerCpuSeconds} s)${fromFirst === undefined ? '' : `; ${formatNumber(row.recordsPerSecondFromFirst!)} records/s from the first record`}`);
  return row;
}

// ------------------------------------------------------------------ librdkafka

function compileLibrdkafka(dir: string): string | null {
  const exe = path.join(dir, 'kafka-librdkafka');
  try {
    execFileSync('cc', ['-O2', '-o', exe, path.join(root, 'bench', 'kafka-librdkafka.c'), '-lrdkafka'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return exe;
  } catch (err) {
    log(`librdkafka: cannot compile bench/kafka-librdkafka.c (needs cc and librdkafka-dev): ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
}

function runC(exe: string, args: string[]): Promise<{ seconds: number; fromFirst?: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${path.basename(exe)} ${args[0]} exited ${code}: ${err}`));
      const r = JSON.parse(out.trim().split('\n').pop()!) as { records: number; seconds: number; from_first?: number };
      resolve({ seconds: r.seconds, fromFirst: r.from_first });
    });
  });
}

// ------------------------------------------------------------------ kafkajs

async function kafkajsProduce(bootstrap: string, topic: string, records: number): Promise<number> {
  const { Kafka, logLevel } = await import('kafkajs');
  const producer = new Kafka({ brokers: [bootstrap], clientId: 'bench-kafkajs', logLevel: logLevel.ERROR }).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  const BATCH = 1000;
  const IN_FLIGHT = 8;
  const started = performance.now();
  let sent = 0;
  let p = 0;
  const worker = async (): Promise<void> => {
    while (sent < records) {
      const n = Math.min(BATCH, records - sent);
      sent += n;
      const partition = p++ % PARTITIONS;
      await producer.send({ topic, acks: 1, messages: Array.from({ length: n }, () => ({ value, partition })) });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  await producer.disconnect();
  return seconds;
}

async function kafkajsConsume(bootstrap: string, topic: string, records: number): Promise<number> {
  const { Kafka, logLevel } = await import('kafkajs');
  const consumer = new Kafka({ brokers: [bootstrap], clientId: 'bench-kafkajs', logLevel: logLevel.ERROR }).consumer({ groupId: `bench-kafkajs-${Date.now()}`, maxBytes: 50 * 1024 * 1024, maxBytesPerPartition: 8 * 1024 * 1024, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  // The clock starts when the group is joined (kafkajs decodes a whole fetch response
  // before its first eachBatch, so the first batch would be too late a start).
  let started = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (started === 0) started = performance.now();
  });
  let n = 0;
  let seconds = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) if (m.value !== null) n++;
        if (n >= records && seconds === 0) {
          seconds = (performance.now() - started) / 1000;
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return seconds;
}

// ------------------------------------------------------------------ commitlog's own clients

async function ownProduce(broker: string, topic: string, records: number): Promise<number> {
  const producer = new Producer({ broker });
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  const marks: Promise<unknown>[] = [];
  const started = performance.now();
  for (let i = 0; i < records; i++) {
    const sent = producer.send(topic, { value }, { partition: i % PARTITIONS });
    if (i % 1024 === 0) {
      marks.push(sent);
      if (marks.length > 32) await marks.shift();
    }
  }
  await producer.flush();
  const seconds = (performance.now() - started) / 1000;
  await producer.close();
  return seconds;
}

async function ownConsume(broker: string, topic: string, records: number): Promise<number> {
  const consumer = new Consumer({ broker, topic, from: 'earliest' });
  const started = performance.now();
  let n = 0;
  for await (const r of consumer) {
    if (r.value !== null) n++;
    if (n === records) break;
  }
  const seconds = (performance.now() - started) / 1000;
  await consumer.close();
  return seconds;
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const temp = tempRoot('commitlog-bench-kafka-');
  const broker = await startBrokerProcess(path.join(temp.dir, 'data'));
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    const admin = new Admin({ broker: broker.native });
    for (const t of ['bench-librdkafka', 'bench-kafkajs', 'bench-commitlog']) await admin.createTopic(t, { partitions: PARTITIONS });
    await admin.close();
    log(`broker: kafka ${broker.kafka}, native ${broker.native}; ${PARTITIONS} partitions a topic, ${VALUE_BYTES}-byte values`);

    const exe = compileLibrdkafka(temp.dir);
    if (exe !== null) {
      rows.push(await phase(broker, 'librdkafka', 'produce', RECORDS, () => runC(exe, ['produce', broker.kafka, 'bench-librdkafka', String(PARTITIONS), String(RECORDS), String(VALUE_BYTES)]), TARGETS.librdkafkaProduce));
      rows.push(await phase(broker, 'librdkafka', 'consume', RECORDS, () => runC(exe, ['consume', broker.kafka, 'bench-librdkafka', String(PARTITIONS), String(RECORDS)]), TARGETS.librdkafkaConsume));
    } else {
      notes.push('librdkafka rows skipped: cc or librdkafka-dev missing');
    }
    if (existsSync(path.join(root, 'node_modules', 'kafkajs'))) {
      rows.push(await phase(broker, 'kafkajs', 'produce', KAFKAJS_RECORDS, () => kafkajsProduce(broker.kafka, 'bench-kafkajs', KAFKAJS_RECORDS)));
      rows.push(await phase(broker, 'kafkajs', 'consume', KAFKAJS_RECORDS, () => kafkajsConsume(broker.kafka, 'bench-kafkajs', KAFKAJS_RECORDS)));
    } else {
      notes.push('kafkajs rows skipped: npm install first');
    }
    rows.push(await phase(broker, 'commitlog (native)', 'produce', OWN_RECORDS, () => ownProduce(broker.native, 'bench-commitlog', OWN_RECORDS)));
    rows.push(await phase(broker, 'commitlog (native)', 'consume', OWN_RECORDS, () => ownConsume(broker.native, 'bench-commitlog', OWN_RECORDS)));
  } finally {
    await broker.stop();
    temp.cleanup();
  }

  const own = (p: Row['phase']) => rows.find((r) => r.client === 'commitlog (native)' && r.phase === p)?.recordsPerSecond;
  const table = renderTable(
    ['client', 'phase', 'records', 's', 'records/s', 'MB/s', 'broker CPU s', 'x commitlog', 'target'],
    rows.map((r) => [r.client, r.phase, String(r.records), String(r.seconds), formatNumber(r.recordsPerSecond), String(r.mbPerSecond), String(r.brokerCpuSeconds), own(r.phase) ? `${round(r.recordsPerSecond / own(r.phase)!, 3)}x` : '-', r.target === undefined ? '' : `${formatNumber(r.target)} ${r.met ? 'met' : 'MISSED'}`]),
  );
  log(table);
  for (const n of notes) log(n);
  if (flags.json) process.stdout.write(`${JSON.stringify({ bench: 'kafka', machine: machineInfo(), valueBytes: VALUE_BYTES, partitions: PARTITIONS, rows, targets: TARGETS, notes })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/kafka: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
