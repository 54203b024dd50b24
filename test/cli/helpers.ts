/**
 * Helpers of the CLI tests: run the real `bin/commitlog.js` as a child process (stdin
 * fed, stdout kept as bytes), and start a broker on an ephemeral port whose address is
 * read from its `listening on` line. Every child is killed in the test's teardown.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = path.join(root, 'bin', 'commitlog.js');

/** The environment of a child: ours without COMMITLOG_* (a developer's settings must not leak in). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMMITLOG_')) env[k] = v;
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `commitlog ...args` to completion (killed after timeoutMs) with `input` on stdin. */
export function runCli(args: string[], options: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => undefined); // the command may exit before reading all of it
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

export interface RunningBroker {
  child: ChildProcess;
  /** HOST:PORT for --broker. */
  address: string;
  port: number;
  /** Set with --metrics-port. */
  metricsAddress: string | undefined;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `commitlog broker --dir dir --port 0 --http-port off --kafka-port off ...extra` and waits for
 * its listening line (the console's default port 7080 would collide between parallel
 * tests, as would the Kafka listener's 9092; pass `--http-port 0` or `--kafka-port 0` in extra to have one).
 */
export async function startBroker(t: ExecutionContext, dir: string, extra: string[] = [], env: Record<string, string> = {}): Promise<RunningBroker> {
  const broker = spawnBroker(t, dir, extra, env);
  const deadline = Date.now() + 30_000;
  while (!/listening on /.test(broker.stdout())) {
    if (broker.child.exitCode !== null || broker.child.signalCode !== null) throw new Error(`broker exited: ${broker.stderr()}`);
    if (Date.now() > deadline) throw new Error(`broker did not start: ${broker.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const m = /listening on (\S+):(\d+)/.exec(broker.stdout())!;
  broker.port = Number(m[2]);
  broker.address = `${m[1]}:${m[2]}`;
  const metrics = /metrics on (\S+)/.exec(broker.stdout());
  broker.metricsAddress = metrics?.[1];
  return broker;
}

/** Spawns a broker without waiting for it (for brokers expected to fail). */
export function spawnBroker(t: ExecutionContext, dir: string, extra: string[] = [], env: Record<string, string> = {}): RunningBroker {
  const child = spawn(process.execPath, [bin, 'broker', '--dir', dir, '--port', '0', '--http-port', 'off', '--kafka-port', 'off', ...extra], { cwd: root, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    address: '',
    port: 0,
    metricsAddress: undefined,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** Lines of a Buffer of text (without the final empty one). */
export function lines(b: Buffer | string): string[] {
  const text = b.toString();
  if (text === '') return [];
  return text.replace(/\n$/, '').split('\n');
}
