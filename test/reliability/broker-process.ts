/**
 * The real broker (`bin/commitlog.js broker`) as a child process, for the tests that
 * kill it, fill its disk or attack it over the network: started on an ephemeral port
 * of 127.0.0.1 and found from its `listening on` line, its JSON log (stderr) kept for
 * the recovery reports, its memory read from /proc/<pid>/status. Every child is
 * SIGKILLed in the test's teardown if it is still running.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const bin = path.join(repoRoot, 'bin', 'commitlog.js');

export interface BrokerOptions {
  dir: string;
  flush?: 'sync' | 'async' | 'os';
  segmentBytes?: number;
  flushIntervalMs?: number;
  extraArgs?: string[];
  /** Run the broker through this command (e.g. strace ...); the broker command line follows it. */
  wrapper?: string[];
}

export interface BrokerProcess {
  child: ChildProcess;
  /** pid of the broker itself (with a wrapper: of the wrapper until the broker is found). */
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Settles once the child exited: its exit code, or the signal that killed it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
}

/** The environment of a child: ours without COMMITLOG_* (a developer's settings must not leak in). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMMITLOG_')) env[k] = v;
  return { ...env, ...extra };
}

/** Spawns a broker without waiting for it. */
export function spawnBroker(t: ExecutionContext, o: BrokerOptions): BrokerProcess {
  const args = [bin, 'broker', '--dir', o.dir, '--port', '0', '--host', '127.0.0.1', '--flush', o.flush ?? 'sync', '--log-level', 'info', '--http-port', 'off', '--kafka-port', 'off'];
  if (o.segmentBytes !== undefined) args.push('--segment-bytes', String(o.segmentBytes));
  if (o.flushIntervalMs !== undefined) args.push('--flush-interval-ms', String(o.flushIntervalMs));
  args.push(...(o.extraArgs ?? []));
  const [command, ...prefix] = o.wrapper ?? [process.execPath];
  const child = spawn(command!, o.wrapper === undefined ? args : [...prefix, process.execPath, ...args], {
    cwd: repoRoot,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    // Keep the tail only: a long torture must not grow the parent's memory.
    if (err.length > 4 * 1024 * 1024) err = err.slice(-2 * 1024 * 1024);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const proc: BrokerProcess = {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
  };
  return proc;
}

export interface RunningBroker extends BrokerProcess {
  port: number;
  /** Milliseconds from spawn to the listening line. */
  startMs: number;
}

/** Spawns a broker and waits (at most `timeoutMs`) for its listening line. */
export async function startBroker(t: ExecutionContext, o: BrokerOptions, timeoutMs = 60_000): Promise<RunningBroker> {
  const started = performance.now();
  const b = spawnBroker(t, o);
  const deadline = Date.now() + timeoutMs;
  while (!/listening on /.test(b.stdout())) {
    if (!b.alive) throw new Error(`broker exited before listening (${b.child.exitCode ?? b.child.signalCode}): ${b.stderr().slice(-3000)}`);
    if (Date.now() > deadline) {
      b.child.kill('SIGKILL');
      throw new Error(`broker did not listen within ${timeoutMs} ms: ${b.stderr().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const m = /listening on (\S+):(\d+)/.exec(b.stdout())!;
  return Object.assign(b, { port: Number(m[2]), startMs: performance.now() - started }) as RunningBroker;
}

/** SIGTERM (a clean shutdown) and wait, SIGKILL after `timeoutMs`. */
export async function stopBroker(b: BrokerProcess, timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (b.alive) b.child.kill('SIGTERM');
  const timer = setTimeout(() => b.child.kill('SIGKILL'), timeoutMs);
  try {
    return await b.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILL and wait for the exit. */
export async function killBroker(b: BrokerProcess): Promise<void> {
  if (b.alive) b.child.kill('SIGKILL');
  await b.exited;
}

/** The JSON lines of the broker's log (stderr) whose msg matches. */
export function logEvents(b: BrokerProcess, msg: RegExp): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of b.stderr().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const event = JSON.parse(line) as Record<string, unknown>;
      if (typeof event.msg === 'string' && msg.test(event.msg)) out.push(event);
    } catch {
      // a line cut by the kill
    }
  }
  return out;
}

export interface Memory {
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set since the process started (VmHWM), bytes. */
  peak: number;
}

/** Memory of a live process from /proc/<pid>/status; null once it is gone. */
export function memoryOf(pid: number): Memory | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Samples a process's RSS every `everyMs` until stopped; `peak` is the largest sample. */
export function sampleMemory(pid: number, everyMs = 20): { stop(): void; peak: number; samples: number } {
  const state = { peak: 0, samples: 0, stop: () => clearInterval(timer) };
  const timer = setInterval(() => {
    const m = memoryOf(pid);
    if (m === null) return;
    state.samples++;
    if (m.rss > state.peak) state.peak = m.rss;
  }, everyMs);
  timer.unref();
  return state;
}
