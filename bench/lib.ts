/**
 * Helpers shared by the benchmarks in bench/: a temp directory that is always removed,
 * timed loops with a time budget and a step cap, payload pools, number formatting, a
 * plain-text table and a description of the machine. No benchmark logic lives here.
 *
 * Timing: performance.now() around the loop; the clock is read every `checkMask + 1`
 * steps so that reading it costs nothing next to a step of ~50 ns (memcpy of a small
 * batch). A loop stops at whichever comes first, `seconds` or `maxSteps`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Budget {
  /** Stop once this much time has passed (checked every checkMask + 1 steps). */
  seconds: number;
  /** Stop after this many steps. */
  maxSteps: number;
  /** A power of two minus one: the clock is read when (step & checkMask) === 0. */
  checkMask: number;
}

export interface Timing {
  steps: number;
  seconds: number;
}

/** Runs a synchronous step until the budget is spent. */
export function timeSync(step: (i: number) => void, budget: Budget): Timing {
  const started = performance.now();
  const deadline = started + budget.seconds * 1000;
  const { maxSteps, checkMask } = budget;
  let i = 0;
  while (i < maxSteps) {
    step(i);
    i++;
    if ((i & checkMask) === 0 && performance.now() >= deadline) break;
  }
  return { steps: i, seconds: (performance.now() - started) / 1000 };
}

/** Runs an asynchronous step, awaiting each one before the next (one appender). */
export async function timeAsync(step: (i: number) => Promise<unknown>, budget: Budget): Promise<Timing> {
  const started = performance.now();
  const deadline = started + budget.seconds * 1000;
  const { maxSteps, checkMask } = budget;
  let i = 0;
  while (i < maxSteps) {
    await step(i);
    i++;
    if ((i & checkMask) === 0 && performance.now() >= deadline) break;
  }
  return { steps: i, seconds: (performance.now() - started) / 1000 };
}

/**
 * `workers` loops run at once, each awaiting its own step before its next; the
 * budget is shared (steps counted across workers). Ends when every worker has
 * stopped, so the time includes draining the last in-flight steps.
 */
export async function timeConcurrent(workers: number, step: (i: number) => Promise<unknown>, budget: Budget): Promise<Timing> {
  const started = performance.now();
  const deadline = started + budget.seconds * 1000;
  let issued = 0;
  let done = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && issued < budget.maxSteps) {
      await step(issued++);
      done++;
      if (performance.now() >= deadline) stop = true;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return { steps: done, seconds: (performance.now() - started) / 1000 };
}

/** One contender of a side-by-side comparison. */
export interface Contender<T extends Timing = Timing> {
  /** Its full budget; interleave() splits it into equal slices. */
  budget: Budget;
  /** Runs one slice; called again for the next slice (state carries over). */
  run(budget: Budget): T | Promise<T>;
  /** Before each slice and the warm-up, untimed (e.g. let another contender's background I/O settle). */
  before?(): Promise<void>;
  /** Adds slice results up (steps and seconds are summed by default). */
  add?(total: T, slice: T): T;
}

/**
 * Warms each contender up once (warmup seconds, a tenth of its steps), then runs them
 * round-robin in `rounds` slices of their budget each, so a machine whose speed drifts
 * (page cache, a neighbour's load) moves every contender alike. Returns their totals.
 */
export async function interleave<T extends Timing>(contenders: Contender<T>[], rounds: number, warmupSeconds: number): Promise<T[]> {
  for (const c of contenders) {
    await c.before?.();
    await c.run({ ...c.budget, seconds: warmupSeconds, maxSteps: Math.max(1, Math.ceil(c.budget.maxSteps / 10)) });
  }
  const totals: (T | null)[] = contenders.map(() => null);
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of contenders.entries()) {
      await c.before?.();
      const slice = await c.run({ ...c.budget, seconds: c.budget.seconds / rounds, maxSteps: Math.max(1, Math.ceil(c.budget.maxSteps / rounds)) });
      const total = totals[i];
      totals[i] = total === null ? slice : c.add !== undefined ? c.add(total, slice) : { ...total, steps: total.steps + slice.steps, seconds: total.seconds + slice.seconds };
    }
  }
  return totals as T[];
}

/** A temp directory under os.tmpdir(), removed by cleanup() and on exit or Ctrl-C. */
export function tempRoot(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let removed = false;
  const cleanup = () => {
    if (removed) return;
    removed = true;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
  return { dir, cleanup };
}

/** `count` distinct values of `bytes` random bytes each, as views of one buffer. */
export function randomValues(count: number, bytes: number): Buffer[] {
  const all = crypto.randomBytes(count * bytes);
  const out: Buffer[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = all.subarray(i * bytes, (i + 1) * bytes);
  return out;
}

/** 1234567.8 -> "1,234,568"; small numbers keep up to `digits` significant digits. */
export function formatNumber(n: number | null, digits = 3): string {
  if (n === null || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return Number(n.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

export function formatRatio(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '-';
  return `${n >= 10 ? n.toFixed(1) : n >= 0.1 ? n.toFixed(2) : Number(n.toPrecision(2))}x`;
}

/** Rounds for JSON output: enough digits for any comparison, no float noise. */
export function round(n: number, significant = 4): number {
  if (!Number.isFinite(n) || n === 0) return n;
  return Number(n.toPrecision(significant));
}

/** A plain-text table; numeric-looking cells are right-aligned. A row of null is a separator. */
export function renderTable(headers: string[], rows: (string[] | null)[]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r === null ? 0 : r[c].length))));
  const numeric = /^[-\d.,]+x?$/;
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c > 0 && numeric.test(cell) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map((r) => (r === null ? '' : line(r)))].join('\n');
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  platform: string;
  kernel: string;
  node: string;
  tmpdir: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 3),
    platform: `${os.platform()}-${os.arch()}`,
    kernel: os.release(),
    node: process.version,
    tmpdir: os.tmpdir(),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
