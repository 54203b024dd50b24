/**
 * Shared by the reliability suite (test/reliability, docs/reliability.md): how big a
 * run is, seeds, temp directories, the deterministic records the tortures write, and
 * the figures each test publishes.
 *
 * Size: every test file runs a reduced size by default (CI: `npm test`, each file well
 * under a minute on 2 cores) and the full size with TORTURE=1 (`npm run
 * test:torture`). A single knob can be overridden with RELIABILITY_<NAME>=<n>.
 *
 * Figures: each test reports what it measured with t.log and, when RELIABILITY_FIGURES
 * names a file, appends one JSON line { test, size, seed, ...figures } to it; report.ts
 * turns that file into the tables of docs/reliability.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { randInt, type Rng } from '../helpers/tmp.js';
export { rng, randInt, randBytes, testSeed as resolveSeed, type Rng } from '../helpers/tmp.js';

export const FULL = process.env.TORTURE === '1';

/** `reduced` normally, `full` under TORTURE=1; RELIABILITY_<NAME> overrides both. */
export function size(name: string, reduced: number, full: number): number {
  const override = process.env[`RELIABILITY_${name.toUpperCase()}`];
  if (override !== undefined && override !== '') {
    const n = Number(override);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`RELIABILITY_${name.toUpperCase()} must be a non-negative integer, got ${override}`);
    return n;
  }
  return FULL ? full : reduced;
}

export function pick<T>(r: Rng, items: readonly T[]): T {
  return items[randInt(r, 0, items.length - 1)]!;
}

/** A fresh directory removed when the test ends. */
export function tempDir(t: ExecutionContext, prefix = 'commitlog-rel-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `p`, or rejects after `ms` naming `what` (every wait in the suite is bounded). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` every few ms until true; rejects after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Logs the figures and appends them to $RELIABILITY_FIGURES (one JSON line) when set. */
export function publish(t: ExecutionContext, figures: Record<string, unknown>): void {
  const line = { test: t.title, size: FULL ? 'full' : 'reduced', date: new Date().toISOString(), ...figures };
  t.log(`figures ${JSON.stringify(figures)}`);
  const file = process.env.RELIABILITY_FIGURES;
  if (file !== undefined && file !== '') fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
}

// ---- the records the tortures write -------------------------------------------------

/**
 * Every record is a pure function of (generation, producer, seq): a generation is one
 * broker (or child) process lifetime, a producer one concurrent sender, seq its running
 * record number. The verifier recomputes the exact bytes of anything it reads back, so
 * a partial, stale or misplaced record can never pass for a valid one.
 *
 *   key       "<gen>/<producer>/<seq>"
 *   value     gen u32 | producer u32 | seq u32 | n u32 | n pseudo-random bytes (n in 1..maxBytes)
 *   timestamp T0 + gen * 1e6 + seq
 *   headers   [{ key: "p", value: "<producer>" }]
 */
export const T0 = 1_700_000_000_000;

export interface RecordId {
  gen: number;
  producer: number;
  seq: number;
}

function mix(gen: number, producer: number, seq: number): number {
  let h = Math.imul(gen + 1, 0x9e3779b1) ^ Math.imul(producer + 7, 0x85ebca6b) ^ Math.imul(seq + 13, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function keyOf(id: RecordId): string {
  return `${id.gen}/${id.producer}/${id.seq}`;
}

export function valueOf(id: RecordId, maxBytes = 1500): Buffer {
  const h = mix(id.gen, id.producer, id.seq);
  const n = 1 + (h % maxBytes);
  const value = Buffer.allocUnsafe(16 + n);
  value.writeUInt32BE(id.gen, 0);
  value.writeUInt32BE(id.producer, 4);
  value.writeUInt32BE(id.seq, 8);
  value.writeUInt32BE(n, 12);
  let s = h | 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    value[16 + i] = s & 0xff;
  }
  return value;
}

export function timestampOf(id: RecordId): number {
  return T0 + id.gen * 1_000_000 + id.seq;
}

export function recordOf(id: RecordId, maxBytes = 1500): { key: string; value: Buffer; timestamp: number; headers: { p: string } } {
  return { key: keyOf(id), value: valueOf(id, maxBytes), timestamp: timestampOf(id), headers: { p: String(id.producer) } };
}

/** The id a value claims to be, or null when it cannot say. */
export function idOf(value: Buffer | null): RecordId | null {
  if (value === null || value.length < 16) return null;
  return { gen: value.readUInt32BE(0), producer: value.readUInt32BE(4), seq: value.readUInt32BE(8) };
}

/** True when the record read back is exactly the record its value claims to be. */
export function isExact(
  rec: { key: Buffer | null; value: Buffer | null; timestamp: number; headers: { key: string; value: Buffer | null }[] },
  maxBytes = 1500,
): RecordId | null {
  const id = idOf(rec.value);
  if (id === null) return null;
  if (rec.key?.toString() !== keyOf(id) || !valueOf(id, maxBytes).equals(rec.value!) || rec.timestamp !== timestampOf(id)) return null;
  if (rec.headers.length !== 1 || rec.headers[0]!.key !== 'p' || rec.headers[0]!.value?.toString() !== String(id.producer)) return null;
  return id;
}
