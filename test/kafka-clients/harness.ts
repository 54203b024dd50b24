/**
 * The client matrix's harness: a `commitlog broker` process with its Kafka listener on
 * an ephemeral port, and one way to drive every client with the same JSON shapes.
 *
 * A client produces `SpecRecord`s and consumes `SeenRecord`s: keys, values and header
 * values are UTF-8 strings (or null), headers an ordered list of [key, value] pairs.
 * The Python and Node clients run as driver processes (drivers/*: `MODE SPEC_JSON`
 * in argv, JSON lines on stdout); kcat is run directly; commitlog's own Producer and
 * Consumer run in this process, its CLI as `bin/commitlog.js produce|consume`.
 *
 * Availability: a client whose package is missing makes its tests fail under CI=true
 * (`.ci/run` installs them all) and skip with a message otherwise (`missingClients`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { Admin } from '../../src/net/client/admin.js';
import { Consumer } from '../../src/net/client/consumer.js';
import { Producer } from '../../src/net/client/producer.js';

export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'commitlog.js');
const drivers = path.join(root, 'test', 'kafka-clients', 'drivers');
/** Debian's python3 (the apt packages install there; a pyenv python3 on PATH lacks them). */
export const PYTHON = process.env.KAFKA_MATRIX_PYTHON ?? '/usr/bin/python3';

export type KafkaClient = 'kcat' | 'kafka-python' | 'confluent' | 'kafkajs' | 'platformatic';
export const KAFKA_CLIENTS: KafkaClient[] = ['kcat', 'kafka-python', 'confluent', 'kafkajs', 'platformatic'];

export interface SpecRecord {
  key: string | null;
  value: string | null;
  headers?: [string, string][];
  timestamp?: number;
  partition?: number;
}

export interface SeenRecord {
  topic?: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
}

// ---------------------------------------------------------------- availability

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

const AVAILABLE: Record<KafkaClient, () => boolean> = {
  kcat: () => works('kcat', ['-V']),
  'kafka-python': () => works(PYTHON, ['-c', 'import kafka']),
  confluent: () => works(PYTHON, ['-c', 'import confluent_kafka']),
  kafkajs: () => existsSync(path.join(root, 'node_modules', 'kafkajs', 'package.json')),
  platformatic: () => existsSync(path.join(root, 'node_modules', '@platformatic', 'kafka', 'package.json')),
};

const availability = new Map<KafkaClient, boolean>();
export function available(c: KafkaClient): boolean {
  if (!availability.has(c)) availability.set(c, AVAILABLE[c]());
  return availability.get(c)!;
}

/** The clients among `wanted` that are missing. */
export function missingClients(wanted: KafkaClient[]): KafkaClient[] {
  return wanted.filter((c) => !available(c));
}

/**
 * Whether a test needing `wanted` should be registered as skipped: never under CI=true
 * (there it runs, and fails on the missing client); elsewhere it skips, saying why.
 */
export function skipFor(wanted: KafkaClient[]): boolean {
  const missing = missingClients(wanted);
  if (missing.length === 0) return false;
  if (process.env.CI === 'true') return false;
  process.stderr.write(`kafka client matrix: skipping tests that need ${missing.join(', ')} (not installed; .ci/run installs them)\n`);
  return true;
}

export function assertAvailable(wanted: KafkaClient[]): void {
  const missing = missingClients(wanted);
  if (missing.length > 0) throw new Error(`Kafka client(s) not installed: ${missing.join(', ')} (.ci/run installs them as root)`);
}

// ---------------------------------------------------------------- the broker

/** `commitlog broker --help`, read once, tells which optional flags this build has. */
let brokerHelp: string | undefined;
function brokerFlags(): string[] {
  brokerHelp ??= execFileSync(process.execPath, [bin, 'broker', '--help'], { cwd: root, encoding: 'utf8', env: cleanEnv() });
  const flags: string[] = [];
  if (brokerHelp.includes('--http-port')) flags.push('--http-port', 'off');
  if (brokerHelp.includes('--kafka-initial-rebalance-delay-ms')) flags.push('--kafka-initial-rebalance-delay-ms', '0');
  else if (brokerHelp.includes('--group-initial-rebalance-delay-ms')) flags.push('--group-initial-rebalance-delay-ms', '0');
  else if (brokerHelp.includes('--initial-rebalance-delay-ms')) flags.push('--initial-rebalance-delay-ms', '0');
  if (brokerHelp.includes('--group-min-session-timeout-ms')) flags.push('--group-min-session-timeout-ms', '1000');
  return flags;
}

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMMITLOG_')) env[k] = v;
  return { ...env, ...extra };
}

export interface BrokerProcess {
  dir: string;
  /** HOST:PORT of the Kafka listener. */
  kafka: string;
  /** HOST:PORT of the native protocol. */
  native: string;
  kafkaPort: number;
  nativePort: number;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM (clean) or SIGKILL, and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it (with `signal`) and starts it again on the same ports and directory. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** SIGKILL and remove the directory (done in the test's teardown when started with one). */
  destroy(): Promise<void>;
}

async function spawnBroker(dir: string, kafkaPort: number, nativePort: number, extra: string[]): Promise<{ child: ChildProcess; kafkaPort: number; nativePort: number; stderr: () => string; exited: Promise<void> }> {
  const args = [bin, 'broker', '--dir', dir, '--port', String(nativePort), '--kafka-port', String(kafkaPort), '--flush', 'async', ...brokerFlags(), ...extra];
  const child = spawn(process.execPath, args, { cwd: root, env: cleanEnv({ COMMITLOG_LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/listening on /.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`broker exited (${child.exitCode ?? child.signalCode}): ${err}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`broker did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const k = /kafka listener on (\S+):(\d+)/.exec(out);
  const n = /listening on (\S+):(\d+)/.exec(out);
  if (k === null || n === null) throw new Error(`no kafka listener line in ${JSON.stringify(out)}`);
  return { child, kafkaPort: Number(k[2]), nativePort: Number(n[2]), stderr: () => err, exited };
}

/** Starts a broker in a fresh directory (removed in teardown) with its Kafka listener on a free port. */
export async function startBroker(t: ExecutionContext | undefined, extra: string[] = []): Promise<BrokerProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kafka-matrix-'));
  let cur = await spawnBroker(dir, 0, 0, extra);
  const b: BrokerProcess = {
    dir,
    kafka: `127.0.0.1:${cur.kafkaPort}`,
    native: `127.0.0.1:${cur.nativePort}`,
    kafkaPort: cur.kafkaPort,
    nativePort: cur.nativePort,
    child: cur.child,
    stderr: () => cur.stderr(),
    stop: async (signal = 'SIGTERM') => {
      if (cur.child.exitCode === null && cur.child.signalCode === null) cur.child.kill(signal);
      await cur.exited;
    },
    restart: async (signal = 'SIGTERM') => {
      await b.stop(signal);
      cur = await spawnBroker(dir, b.kafkaPort, b.nativePort, extra);
      b.child = cur.child;
    },
    destroy: async () => {
      await b.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  t?.teardown(() => b.destroy());
  return b;
}

export async function createTopic(b: BrokerProcess, topic: string, partitions: number): Promise<void> {
  const admin = new Admin({ broker: b.native });
  try {
    await admin.createTopic(topic, { partitions });
  } finally {
    await admin.close();
  }
}

// ---------------------------------------------------------------- driver processes

export interface Proc {
  child: ChildProcess;
  /** Every JSON line printed so far. */
  lines: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves once a line satisfies `pred` (rejects if the process exits first or after timeoutMs). */
  waitFor(pred: (lines: Record<string, unknown>[]) => boolean, timeoutMs: number, what: string): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export function spawnProc(t: ExecutionContext | undefined, cmd: string, args: string[], name: string, input?: string, parse?: (line: string) => Record<string, unknown> | undefined): Proc {
  const child = spawn(cmd, args, { cwd: root, env: cleanEnv(), stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (input !== undefined) {
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
  }
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString('utf8');
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      if (line.trim() === '') continue;
      if (parse !== undefined) {
        const parsed = parse(line);
        if (parsed !== undefined) lines.push(parsed);
        continue;
      }
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ text: line });
      }
    }
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (c, s) => {
      code = c ?? (s === null ? null : -1);
      for (const l of listeners) l();
      resolve(c);
    }),
  );
  const proc: Proc = {
    child,
    lines,
    stderr: () => err,
    exited,
    waitFor: (pred, timeoutMs, what) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pred(lines)) {
            done();
            resolve();
          } else if (code !== undefined) {
            done();
            reject(new Error(`${name} exited (${code}) before ${what}; stderr: ${err.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: timed out waiting for ${what} after ${timeoutMs} ms; ${lines.length} lines; stderr: ${err.slice(-3000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  t?.teardown(async () => {
    await proc.kill('SIGKILL');
  });
  return proc;
}

function driverCommand(client: Exclude<KafkaClient, 'kcat'>, mode: string, spec: unknown): [string, string[]] {
  const json = JSON.stringify(spec);
  switch (client) {
    case 'kafka-python':
      return [PYTHON, [path.join(drivers, 'kafka_python.py'), mode, json]];
    case 'confluent':
      return [PYTHON, [path.join(drivers, 'confluent.py'), mode, json]];
    case 'kafkajs':
      return [process.execPath, ['--import=tsx', path.join(drivers, 'kafkajs.ts'), mode, json]];
    case 'platformatic':
      return [process.execPath, ['--import=tsx', path.join(drivers, 'platformatic.ts'), mode, json]];
  }
}

async function finish(p: Proc, name: string): Promise<Record<string, unknown>[]> {
  const code = await p.exited;
  if (code !== 0) throw new Error(`${name} failed (exit ${code}): ${p.stderr().slice(-4000)}`);
  return p.lines;
}

const KCAT_CODECS = new Set(['none', 'gzip', 'snappy', 'lz4', 'zstd']);

export interface ProduceSpec {
  bootstrap: string;
  topic: string;
  records: SpecRecord[];
  compression?: string;
  idempotent?: boolean;
}

/**
 * Produces `records` with `client` and returns what it reports as delivered
 * ({partition, offset} per record; kcat reports nothing, so []).
 * kcat: every record must name the same partition and carry the same headers
 * (kcat's -p and -H hold for a whole run) and no timestamp (kcat cannot set one).
 */
export async function produceWith(t: ExecutionContext | undefined, client: KafkaClient, spec: ProduceSpec): Promise<({ partition: number; offset: number } | null)[]> {
  if (client === 'kcat') {
    const first = spec.records[0];
    const args = ['-P', '-b', spec.bootstrap, '-t', spec.topic, '-K', '\t', '-D', '\n', '-X', 'acks=all', '-X', 'linger.ms=5'];
    if (first?.partition !== undefined) args.push('-p', String(first.partition));
    for (const [k, v] of first?.headers ?? []) args.push('-H', `${k}=${v}`);
    const codec = spec.compression ?? 'none';
    if (!KCAT_CODECS.has(codec)) throw new Error(`kcat: no codec ${codec}`);
    if (codec !== 'none') args.push('-X', `compression.codec=${codec}`);
    let input = '';
    for (const r of spec.records) {
      if (r.timestamp !== undefined || JSON.stringify(r.headers ?? []) !== JSON.stringify(first?.headers ?? []) || r.partition !== first?.partition) throw new Error('kcat: per-record timestamps, headers or partitions cannot be given');
      if (r.value === null || (r.key ?? '').includes('\t') || `${r.key}${r.value}`.includes('\n')) throw new Error('kcat: value must be non-null and lines free of tabs/newlines');
      input += r.key === null ? `${r.value}\n` : `${r.key}\t${r.value}\n`;
    }
    const p = spawnProc(t, 'kcat', args, 'kcat -P', input);
    await finish(p, 'kcat -P');
    return [];
  }
  const p = spawnProc(t, ...driverCommand(client, 'produce', spec), `${client} produce`);
  const lines = await finish(p, `${client} produce`);
  return lines.filter((l) => 'delivered' in l).map((l) => l.delivered as { partition: number; offset: number } | null);
}

export interface Read {
  topic: string;
  partition: number;
  offset: number;
  count: number;
}

export interface ConsumeSpec {
  bootstrap: string;
  reads: Read[];
  timeout_ms?: number;
}

/** Reads `count` records of each read's partition from its offset with `client` (one process; kcat: one per read). */
export async function consumeWith(t: ExecutionContext | undefined, client: KafkaClient, spec: ConsumeSpec): Promise<SeenRecord[]> {
  if (client === 'kcat') {
    const all = await Promise.all(
      spec.reads.map(async (r) => {
        const args = ['-C', '-b', spec.bootstrap, '-t', r.topic, '-p', String(r.partition), '-o', String(r.offset), '-c', String(r.count), '-J', '-q'];
        const p = spawnProc(t, 'kcat', args, 'kcat -C');
        const timer = setTimeout(() => void p.kill('SIGKILL'), spec.timeout_ms ?? 30_000);
        try {
          return (await finish(p, `kcat -C ${r.topic}`)).map(kcatJson);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return all.flat();
  }
  const p = spawnProc(t, ...driverCommand(client, 'consume', spec), `${client} consume`);
  const lines = await finish(p, `${client} consume`);
  return lines.filter((l) => 'record' in l).map((l) => l.record as SeenRecord);
}

/** kcat -J's envelope as a SeenRecord (its headers are a flat [k, v, k, v] list). */
export function kcatJson(l: Record<string, unknown>): SeenRecord {
  const flat = (l.headers as (string | null)[] | undefined) ?? [];
  const headers: [string, string | null][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) headers.push([flat[i]!, flat[i + 1]!]);
  return { topic: l.topic as string, partition: l.partition as number, offset: l.offset as number, timestamp: l.ts as number, key: l.key as string | null, value: l.payload as string | null, headers };
}

export interface GroupSpec {
  bootstrap: string;
  topic: string;
  group: string;
  session_timeout_ms?: number;
}

/**
 * A consumer-group member that prints {assigned}, {revoked} and {record} lines. kcat -G
 * prints its records as -J envelopes on stdout and its rebalances on stderr (`% Group
 * G rebalanced (memberid M): assigned: T [0], T [1]`); both are read from one pipe and
 * turned into the same lines. kcat commits automatically (every 200 ms here, and on
 * revoke and close).
 */
export function groupMember(t: ExecutionContext, client: KafkaClient, spec: GroupSpec, name: string): Proc {
  if (client === 'kcat') {
    const args = ['-b', spec.bootstrap, '-G', spec.group, '-J', '-u', '-X', `session.timeout.ms=${spec.session_timeout_ms ?? 6000}`, '-X', 'heartbeat.interval.ms=500', '-X', 'auto.commit.interval.ms=200', '-X', 'auto.offset.reset=earliest', spec.topic];
    return spawnProc(t, 'sh', ['-c', 'exec kcat "$@" 2>&1', 'sh', ...args], name, undefined, kcatGroupLine);
  }
  return spawnProc(t, ...driverCommand(client, 'group', spec), name);
}

/** A group member's current partitions: its last {assigned} line, [] after a {revoked}, undefined before either. */
export function lastAssignment(p: Proc): number[] | undefined {
  for (let i = p.lines.length - 1; i >= 0; i--) {
    const l = p.lines[i]!;
    if ('assigned' in l) return l.assigned as number[];
    if ('revoked' in l) return [];
  }
  return undefined;
}

function kcatGroupLine(line: string): Record<string, unknown> | undefined {
  if (line.startsWith('{')) return { record: kcatJson(JSON.parse(line) as Record<string, unknown>) };
  const m = /rebalanced \(memberid [^)]*\): (assigned|revoked): (.*)$/.exec(line);
  if (m === null) return line.startsWith('%') ? undefined : { text: line };
  const partitions = [...m[2]!.matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1])).sort((a, b) => a - b);
  return m[1] === 'assigned' ? { assigned: partitions } : { revoked: partitions };
}

// ---------------------------------------------------------------- commitlog's own clients

export async function produceOwn(b: BrokerProcess, topic: string, records: SpecRecord[]): Promise<{ partition: number; offset: number }[]> {
  const producer = new Producer({ broker: b.native, lingerMs: 0 });
  try {
    const metas = [];
    for (const r of records) {
      metas.push(await producer.send(topic, { key: r.key, value: r.value, headers: (r.headers ?? []).map(([key, value]) => ({ key, value: Buffer.from(value) })), ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }) }, { partition: r.partition ?? 0 }));
    }
    return metas.map((m) => ({ partition: m.partition, offset: m.offset }));
  } finally {
    await producer.close();
  }
}

export async function consumeOwn(b: BrokerProcess, topic: string, partition: number, offset: number, count: number): Promise<SeenRecord[]> {
  const consumer = new Consumer({ broker: b.native, topic, partitions: [partition], from: offset, maxWaitMs: 100 });
  const seen: SeenRecord[] = [];
  const timer = setTimeout(() => void consumer.close(), 30_000);
  try {
    for await (const r of consumer) {
      seen.push({ topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key?.toString('utf8') ?? null, value: r.value?.toString('utf8') ?? null, headers: r.headers.map((h) => [h.key, h.value?.toString('utf8') ?? null]) });
      if (seen.length === count) break;
    }
  } finally {
    clearTimeout(timer);
    await consumer.close();
  }
  return seen;
}

/** `commitlog produce TOPIC --partition P --key-separator TAB` with one record per line (keys and values only). */
export async function produceCli(b: BrokerProcess, topic: string, records: SpecRecord[], partition = 0): Promise<{ partition: number; offset: number }[]> {
  let input = '';
  for (const r of records) input += r.key === null ? `${r.value}\n` : `${r.key}\t${r.value}\n`;
  const p = spawnProc(undefined, process.execPath, [bin, 'produce', topic, '--broker', b.native, '--partition', String(partition), '--key-separator', '\t', '--print-offsets'], 'commitlog produce', input);
  const code = await p.exited;
  if (code !== 0) throw new Error(`commitlog produce failed (${code}): ${p.stderr()}`);
  return p.lines.map((l) => {
    const [pp, o] = String(l.text ?? l).split('\t');
    return { partition: Number(pp), offset: Number(o) };
  });
}

export async function consumeCli(b: BrokerProcess, topic: string, partition: number, offset: number, count: number): Promise<SeenRecord[]> {
  const p = spawnProc(undefined, process.execPath, [bin, 'consume', topic, '--broker', b.native, '--partition', String(partition), '--from', String(offset), '--max', String(count), '--format', 'json', '--idle-exit-ms', '20000'], 'commitlog consume');
  const code = await p.exited;
  if (code !== 0) throw new Error(`commitlog consume failed (${code}): ${p.stderr()}`);
  return p.lines.map((l) => ({
    topic,
    partition: l.partition as number,
    offset: l.offset as number,
    timestamp: l.timestamp as number,
    key: l.key as string | null,
    value: l.value as string | null,
    headers: (l.headers as { key: string; value: string | null }[]).map((h) => [h.key, h.value] as [string, string | null]),
  }));
}

// ---------------------------------------------------------------- misc

/** At most `n` of the functions passed to the returned limiter run at once. */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((r) => queue.push(r));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      queue.shift()?.();
    }
  };
}

/** A record as a consumer must see it: everything but the timestamp when the producer could not set one. */
export function comparable(r: SeenRecord): Omit<SeenRecord, 'timestamp'> {
  return { topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.value, headers: r.headers };
}

/** A producer driver process to watch while it runs ({acked: i} lines as records are acknowledged). */
export function producerProc(t: ExecutionContext, client: Exclude<KafkaClient, 'kcat'>, spec: ProduceSpec & { records: (SpecRecord & { pause_ms?: number })[] }): Proc {
  return spawnProc(t, ...driverCommand(client, 'produce', spec), `${client} produce`);
}

/** The partition's log end offset, asked over the native protocol. */
export async function latestOffset(b: BrokerProcess, topic: string, partition: number): Promise<number | null> {
  const admin = new Admin({ broker: b.native });
  try {
    return await admin.listOffsets(topic, partition, 'latest');
  } finally {
    await admin.close();
  }
}
