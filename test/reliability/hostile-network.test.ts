/**
 * Hostile network input against the real broker (a child process, so its memory is its
 * own: VmRSS / VmHWM from /proc/<pid>/status):
 *
 * 1. Property-based fuzzing of frames, thousands of cases per run (fast-check, seeded):
 *    random bytes; valid request frames mutated (bytes flipped, set, inserted, deleted,
 *    cut, repeated); frame and header lengths at and around every limit; unknown
 *    request kinds (body field numbers), api versions and wire types; field values at
 *    their limits. Each case is its own connection, written in random chunks. The
 *    broker must answer with well-formed frames carrying only documented error codes
 *    (never ERR_IO, i.e. an unexpected exception), or close that connection; it never
 *    dies; a health check passes throughout; stored data is unchanged (the segment
 *    files of the topic no case may write to hash the same, and a full re-read is byte
 *    equal); what was appended to the fuzzing topic is only whole batches the corpus
 *    holds.
 * 2. Many concurrent connections: idle ones, clients that flood fetches and never read,
 *    clients that send most of a maximum-size frame and stall. The broker's memory
 *    stays within the per-connection bounds of docs/protocol.md (measured, published),
 *    a well-behaved client is served throughout, stored data is unchanged, and SIGTERM
 *    still shuts it down cleanly (exit 0).
 *
 * Seeded: SEED=<n>; size: TORTURE=1 or RELIABILITY_FUZZ_CASES / RELIABILITY_IDLE_CONNECTIONS.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ErrorCode } from '../../src/errors.js';
import { readBatchHeader, setBaseOffset } from '../../src/log/batch.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder } from '../../src/net/protocol/frame.js';
import { decodeResponse, type RequestBody } from '../../src/net/protocol/messages.js';
import { MAX_PENDING_BYTES } from '../../src/net/broker/server.js';
import { memoryOf, sampleMemory, startBroker, stopBroker, type RunningBroker } from './broker-process.js';
import { publish, recordOf, resolveSeed, size, sleep, tempDir, within } from './helpers.js';
import { batch, fetchBody, produceBody, requestFrame, WireClient } from './wire.js';

const MiB = 1024 * 1024;
const MAX_FRAME = DEFAULT_MAX_FRAME_BYTES;
const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
/** Never in a response: a bad frame closes the connection, an unexpected exception is ERR_IO. */
const NEVER_ANSWERED = new Set<string>([ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE, ErrorCode.IO]);

// ---- the broker and its data -----------------------------------------------------------

interface Fixture {
  broker: RunningBroker;
  dir: string;
  metricsPort: number;
  /** Stored bytes of 'stable' per partition, as fetched before the attack. */
  stable: Buffer[];
  stableHash: string;
  /** The batches the corpus may append to 'fuzz' (bytes without the base offset). */
  fuzzBatches: Buffer[];
}

function hashTopicFiles(dir: string, topic: string): string {
  const h = createHash('sha256');
  const root = path.join(dir, topic);
  for (const p of fs.readdirSync(root).sort()) {
    const pdir = path.join(root, p);
    if (!fs.statSync(pdir).isDirectory()) continue;
    for (const f of fs.readdirSync(pdir).filter((n) => n.endsWith('.log')).sort()) {
      h.update(f);
      h.update(fs.readFileSync(path.join(pdir, f)));
    }
  }
  return h.digest('hex');
}

async function fetchAll(c: WireClient, topic: string, partition: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < 100_000; i++) {
    const r = await c.ok(fetchBody(topic, partition, offset, 2 * MiB));
    if (r.payload.length === 0) return Buffer.concat(parts);
    parts.push(r.payload);
    for (let p = 0; p < r.payload.length;) {
      const h = readBatchHeader(r.payload, p);
      offset = h.baseOffset + h.lastOffsetDelta + 1;
      p += h.size;
    }
  }
  throw new Error('fetchAll did not end');
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('metrics request timed out')));
  });
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

async function setup(t: ExecutionContext, stableBatches: number): Promise<Fixture> {
  const dir = path.join(tempDir(t), 'data');
  const broker = await startBroker(t, { dir, flush: 'sync', segmentBytes: 256 * 1024, extraArgs: ['--metrics-port', '0', '--log-level', 'error'] });
  const metricsPort = Number(/metrics on \S+:(\d+)/.exec(broker.stdout())![1]);
  const c = await WireClient.connect(broker.port);
  try {
    await c.ok({ case: 'createTopic', value: { name: 'stable', partitions: 2 } });
    await c.ok({ case: 'createTopic', value: { name: 'fuzz', partitions: 1 } });
    await c.ok({ case: 'createTopic', value: { name: 'fuzz2', partitions: 2 } });
    await c.ok({ case: 'createTopic', value: { name: 'big', partitions: 1, segmentBytes: 16 * MiB } });
    for (let i = 0; i < stableBatches; i++) {
      const records = Array.from({ length: 1 + (i % 5) }, (_, k) => recordOf({ gen: 1, producer: i % 2, seq: i * 5 + k }, 4000));
      await c.ok(produceBody('stable', i % 2), batch(records));
    }
    for (let i = 0; i < 8; i++) await c.ok(produceBody('big', 0), batch([{ value: Buffer.alloc(900 * 1024, i) }]));
    const stable = [await fetchAll(c, 'stable', 0), await fetchAll(c, 'stable', 1)];
    const fuzzBatches = Array.from({ length: 6 }, (_, i) => batch(Array.from({ length: 1 + i }, (_, k) => recordOf({ gen: 2, producer: i, seq: k }, 300))));
    for (const b of fuzzBatches) await c.ok(produceBody('fuzz', 0), b);
    return { broker, dir, metricsPort, stable, stableHash: hashTopicFiles(dir, 'stable'), fuzzBatches };
  } finally {
    c.destroy();
  }
}

/** Stored data unchanged; 'fuzz' holds only whole corpus batches; returns problems. */
async function checkData(f: Fixture): Promise<string[]> {
  const problems: string[] = [];
  if (hashTopicFiles(f.dir, 'stable') !== f.stableHash) problems.push("the segment files of 'stable' changed");
  const c = await WireClient.connect(f.broker.port);
  try {
    for (let p = 0; p < 2; p++) if (!(await fetchAll(c, 'stable', p)).equals(f.stable[p]!)) problems.push(`'stable' partition ${p} reads back differently`);
    // A mutated request may have deleted 'fuzz' (a valid DeleteTopic): then there is nothing to check.
    const exists = (await c.ok({ case: 'metadata', value: { topics: [] } })).header.body;
    const fuzz = exists?.case === 'metadata' && exists.value.topics.some((x) => x.name === 'fuzz') ? await fetchAll(c, 'fuzz', 0) : Buffer.alloc(0);
    for (let p = 0; p < fuzz.length;) {
      const h = readBatchHeader(fuzz, p);
      const stored = Buffer.from(fuzz.subarray(p, p + h.size));
      // The base offset is assigned by the log; the leader epoch (12..15) is outside the
      // CRC and stored as the producer sent it, so a mutation there is a valid batch.
      stored.fill(0, 12, 16);
      const known = f.fuzzBatches.some((b) => {
        const copy = Buffer.from(b);
        setBaseOffset(copy, 0, h.baseOffset);
        copy.fill(0, 12, 16);
        return copy.equals(stored);
      });
      if (!known) problems.push(`'fuzz' holds a batch at offset ${h.baseOffset} that no client sent`);
      p += h.size;
    }
  } finally {
    c.destroy();
  }
  return problems;
}

// ---- protobuf by hand (for what the encoder refuses to write) ----------------------------

function varint(n: bigint | number): Buffer {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function field(no: number, wireType: number, payload: Buffer): Buffer {
  const tag = varint((BigInt(no) << 3n) | BigInt(wireType));
  if (wireType === 2) return Buffer.concat([tag, varint(payload.length), payload]);
  return Buffer.concat([tag, payload]);
}

const str = (s: string): Buffer => Buffer.from(s, 'utf8');

/** A RequestHeader built by hand: version, correlation id, then whatever body bytes. */
function rawHeader(apiVersion: number | bigint, correlationId: number, body: Buffer): Buffer {
  return Buffer.concat([field(1, 0, varint(apiVersion)), field(2, 0, varint(correlationId)), field(3, 2, str('fuzz')), body]);
}

function frameOf(header: Buffer, payload: Buffer = Buffer.alloc(0), lengthOverride?: number, headerLengthOverride?: number): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(lengthOverride ?? 4 + header.length + payload.length, 0);
  prefix.writeUInt32BE(headerLengthOverride ?? header.length, 4);
  return Buffer.concat([prefix, header, payload]);
}

// ---- the corpus and the generators -------------------------------------------------------

interface Case {
  kind: string;
  bytes: Buffer;
  /** Cut points for writing in chunks (sorted, within bytes). */
  cuts: number[];
  /** When every frame is valid: the correlation ids answered, in order. */
  expect?: number[];
}

/**
 * Valid requests the mutations start from. None names 'stable': one flipped bit can turn
 * a fetch into a valid DeleteTopic of the topic it names (field 11 -> 15), and the
 * broker rightly obeys, so the fuzzer only ever names topics it may write or delete.
 */
function corpus(f: Fixture): { body: RequestBody; payload?: Buffer; answered: boolean }[] {
  const corrupt = Buffer.from(f.fuzzBatches[2]!);
  corrupt[corrupt.length - 1] ^= 0xff; // CRC mismatch: never stored
  return [
    { body: produceBody('fuzz', 0), payload: f.fuzzBatches[0]!, answered: true },
    { body: produceBody('fuzz', 0, 'NONE'), payload: f.fuzzBatches[1]!, answered: false },
    { body: produceBody('fuzz', 0, 'FLUSHED'), payload: f.fuzzBatches[3]!, answered: true },
    { body: produceBody('fuzz2', 1), payload: corrupt, answered: true },
    { body: produceBody('fuzz2', 0), payload: Buffer.from('not a batch at all, not even close to one...........................'), answered: true },
    { body: fetchBody('fuzz', 0, 0, 64 * 1024), answered: true },
    { body: fetchBody('fuzz2', 1, 3, 1, 20, 1), answered: true },
    { body: fetchBody('fuzz', 0, 0, 0, 50, 1 << 20), answered: true },
    { body: fetchBody('fuzz2', 7, 0), answered: true },
    { body: { case: 'listOffsets', value: { topic: 'fuzz', partition: 0, spec: 'TIMESTAMP', timestamp: 1_700_000_000_000 } }, answered: true },
    { body: { case: 'listOffsets', value: { topic: 'fuzz2', partition: 1, spec: 'LATEST', timestamp: 0 } }, answered: true },
    { body: { case: 'metadata', value: { topics: [] } }, answered: true },
    { body: { case: 'metadata', value: { topics: ['fuzz', 'nope'] } }, answered: true },
    { body: { case: 'offsetCommit', value: { group: 'fz', offsets: [{ topic: 'fuzz', partition: 0, offset: 1, metadata: 'm' }] } }, answered: true },
    { body: { case: 'offsetFetch', value: { group: 'fz', topic: 'fuzz', partitions: [] } }, answered: true },
    { body: { case: 'deleteTopic', value: { name: 'no-such-topic' } }, answered: true },
    { body: { case: 'createTopic', value: { name: '..', partitions: 1 } }, answered: true },
  ];
}

function validFrames(f: Fixture): fc.Arbitrary<{ bytes: Buffer; expect: number[] }> {
  const items = corpus(f);
  return fc.array(fc.nat({ max: items.length - 1 }), { minLength: 1, maxLength: 5 }).map((picks) => {
    const frames: Buffer[] = [];
    const expect: number[] = [];
    picks.forEach((k, i) => {
      const item = items[k]!;
      frames.push(requestFrame(item.body, item.payload, i + 1));
      if (item.answered) expect.push(i + 1);
    });
    return { bytes: Buffer.concat(frames), expect };
  });
}

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), v: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), v: fc.constantFrom(0x00, 0xff, 0x7f, 0x80, 0x01) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), v: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat(), v: fc.constant(0) }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), v: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(bytes: Buffer, ops: { op: string; at: number; v: number }[]): Buffer {
  let b = Buffer.from(bytes);
  for (const { op, at, v } of ops) {
    if (b.length === 0) break;
    const i = at % b.length;
    if (op === 'flip') b[i] ^= v;
    else if (op === 'set') b[i] = v;
    else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
    else if (op === 'delete') b = Buffer.concat([b.subarray(0, i), b.subarray(i + v)]);
    else if (op === 'cut') b = b.subarray(0, i);
    else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + v), b.subarray(i)]);
  }
  return b;
}

/** Frame and header lengths at and around every limit, with a short tail of whatever. */
const limitLengths = fc.record({
  length: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 64, MAX_FRAME - 1, MAX_FRAME, MAX_FRAME + 1, MAX_FRAME * 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1),
  headerDelta: fc.constantFrom(-5, -4, -3, -1, 0, 1, 2, 1000, 2 ** 31),
  tail: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
}).map(({ length, headerDelta, tail }) => {
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(length, 0);
  prefix.writeUInt32BE(Math.max(0, Math.min(2 ** 32 - 1, length - 4 + headerDelta)), 4);
  return Buffer.concat([prefix, tail]);
});

/** Headers the encoder would refuse: unknown kinds, versions, wire types, values past their range. */
const oddHeaders = fc.oneof(
  // An unknown body field (a request kind this broker does not know), any version.
  fc.record({
    version: fc.constantFrom(0, 1, 2, 255, 2 ** 32 - 1),
    no: fc.oneof(fc.integer({ min: 18, max: 60 }), fc.constantFrom(4, 9, 100, 1000, 536870911)),
    content: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  }).map(({ version, no, content }) => frameOf(rawHeader(version, 7, field(no, 2, content)))),
  // A known body with an unknown version.
  fc.constantFrom(0, 2, 3, 2 ** 32 - 1).map((version) => frameOf(rawHeader(version, 7, field(13, 2, Buffer.alloc(0))))),
  // A body field with the wrong wire type, or an invalid wire type.
  fc.record({ no: fc.integer({ min: 10, max: 17 }), wt: fc.constantFrom(0, 1, 3, 4, 5, 6, 7) }).map(({ no, wt }) =>
    frameOf(rawHeader(1, 7, Buffer.concat([varint((BigInt(no) << 3n) | BigInt(wt)), varint(5), Buffer.alloc(8, 1)])))),
  // Fetch / produce fields at and past their limits.
  fc.record({
    topic: fc.constantFrom('fuzz', 'fuzz2', '', 'x'.repeat(249), 'x'.repeat(250), '..', 'a/b', '\u0000', 'é'),
    partition: fc.constantFrom(0n, 1n, 2n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 64n - 1n),
    offset: fc.constantFrom(0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n),
    maxBytes: fc.constantFrom(0n, 1n, 2n ** 32n - 1n),
    maxWaitMs: fc.constantFrom(0n, 1n, 50n, 2n ** 31n, 2n ** 32n - 1n),
    minBytes: fc.constantFrom(0n, 1n, 2n ** 32n - 1n),
  }).map(({ topic, partition, offset, maxBytes, maxWaitMs, minBytes }) => {
    const body = Buffer.concat([field(1, 2, str(topic)), field(2, 0, varint(partition)), field(3, 0, varint(offset)), field(4, 0, varint(maxBytes)), field(5, 0, varint(maxWaitMs)), field(6, 0, varint(minBytes))]);
    return frameOf(rawHeader(1, 7, field(11, 2, body)));
  }),
  // Strings and lengths that run past the end of the header.
  fc.record({ claimed: fc.constantFrom(1, 100, 2 ** 20, 2 ** 31, 2 ** 35), have: fc.nat({ max: 20 }) }).map(({ claimed, have }) =>
    frameOf(Buffer.concat([field(1, 0, varint(1)), varint((3n << 3n) | 2n), varint(claimed), Buffer.alloc(have, 0x61)]))),
);

function cases(f: Fixture, seed: number, count: number): Case[] {
  const withCuts = <T extends { bytes: Buffer }>(arb: fc.Arbitrary<T>): fc.Arbitrary<T & { cuts: number[] }> =>
    fc.tuple(arb, fc.array(fc.nat(), { maxLength: 6 })).map(([x, cuts]) => ({ ...x, cuts: [...new Set(cuts.map((c) => (x.bytes.length === 0 ? 0 : c % x.bytes.length)))].sort((a, b) => a - b) }));
  const arb = fc.oneof(
    { weight: 3, arbitrary: withCuts(fc.uint8Array({ maxLength: 600 }).map((a) => ({ kind: 'random bytes', bytes: Buffer.from(a) }))) },
    { weight: 2, arbitrary: withCuts(validFrames(f).map((v) => ({ kind: 'valid frames', bytes: v.bytes, expect: v.expect }))) },
    { weight: 4, arbitrary: withCuts(fc.tuple(validFrames(f), fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([v, ops]) => ({ kind: 'mutated frames', bytes: mutate(v.bytes, ops) }))) },
    { weight: 2, arbitrary: withCuts(limitLengths.map((bytes) => ({ kind: 'lengths at limits', bytes }))) },
    { weight: 2, arbitrary: withCuts(oddHeaders.map((bytes) => ({ kind: 'odd headers', bytes }))) },
  );
  return fc.sample(arb, { seed, numRuns: count }) as Case[];
}

// ---- running one case ------------------------------------------------------------------------

interface Outcome {
  responses: number;
  closedByBroker: boolean;
  problems: string[];
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function connectRetrying(port: number): Promise<net.Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect(port);
    } catch (err) {
      // Ephemeral ports in TIME_WAIT after thousands of connections: wait and retry.
      if (attempt >= 20) throw err;
      await sleep(50 * (attempt + 1));
    }
  }
}

/** Writes the case in its chunks, waits for the answers or the close (bounded), checks them. */
async function runCase(port: number, c: Case): Promise<Outcome> {
  const socket = await connectRetrying(port);
  const decoder = new FrameDecoder({ maxFrameBytes: 0xffffffff });
  const problems: string[] = [];
  const ids: number[] = [];
  let closedByBroker = false;
  let resetByUs = false;
  let lastData = performance.now();
  socket.on('data', (chunk: Buffer) => {
    lastData = performance.now();
    try {
      decoder.push(chunk);
      for (const frame of decoder) {
        const h = decodeResponse(frame.header);
        ids.push(h.correlationId);
        if (h.errorCode !== '' && (!KNOWN_CODES.has(h.errorCode) || NEVER_ANSWERED.has(h.errorCode))) {
          problems.push(`response ${h.correlationId} carries ${h.errorCode}: ${h.errorMessage}`);
        }
      }
    } catch (err) {
      problems.push(`the broker sent a response that does not decode: ${String(err)}`);
      socket.destroy();
    }
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    // FIN or RST from the broker (an RST when it closed with our bytes unread).
    if (!resetByUs) closedByBroker = true;
    resolve();
  }));
  socket.on('error', () => undefined);
  socket.once('end', () => (closedByBroker = true));
  let from = 0;
  for (const cut of [...c.cuts, c.bytes.length]) {
    if (cut <= from) continue;
    if (socket.destroyed) break;
    socket.write(c.bytes.subarray(from, cut));
    from = cut;
    await sleep(0);
  }
  // Half-close: the broker answers what it received, then ends the connection (or it
  // closed it already for a bad frame). A long poll or a stall is cut short.
  if (!socket.destroyed) socket.end();
  const started = performance.now();
  while (!socket.destroyed && !closedByBroker) {
    if (performance.now() - lastData > 1000 || performance.now() - started > 3000) break;
    await sleep(2);
  }
  if (c.expect !== undefined && ids.join(',') !== c.expect.join(',')) problems.push(`valid frames answered with ids [${ids.join(',')}], expected [${c.expect.join(',')}]`);
  resetByUs = !closedByBroker && !socket.destroyed;
  socket.resetAndDestroy();
  await closed;
  return { responses: ids.length, closedByBroker, problems };
}

async function healthy(port: number): Promise<boolean> {
  const c = await within(WireClient.connect(port), 10_000, 'connecting for a health check');
  try {
    const r = await within(c.call({ case: 'metadata', value: { topics: [] } }), 10_000, 'a health check');
    return r.header.errorCode === '';
  } finally {
    c.destroy();
  }
}

// ---- the tests ------------------------------------------------------------------------------

test.serial('fuzzed frames (random, mutated, at limits, unknown kinds and versions) never crash the broker, get only documented answers, and leave stored data unchanged', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const f = await setup(t, 60);
  const before = memoryOf(f.broker.pid)!;
  const sampler = sampleMemory(f.broker.pid);
  t.teardown(() => sampler.stop());
  const all = cases(f, seed, size('fuzz_cases', 10_000, 100_000));
  const kinds = new Map<string, number>();
  const failures: string[] = [];
  let responses = 0;
  let closed = 0;
  const started = performance.now();
  // Frames of exactly the maximum size and one byte less, sent whole: answered (the
  // garbage batch refused), never a closed connection.
  const header = requestFrame(produceBody('fuzz', 0), Buffer.alloc(0), 1).subarray(8);
  for (const payloadBytes of [MAX_FRAME - 4 - header.length, MAX_FRAME - 4 - header.length - 1]) {
    const c = await WireClient.connect(f.broker.port);
    const r = await within(c.call(produceBody('fuzz', 0), Buffer.alloc(payloadBytes, 0x42)), 30_000, 'a maximum-size frame');
    c.destroy();
    if (r.header.errorCode !== ErrorCode.CORRUPT_BATCH && r.header.errorCode !== ErrorCode.RECORD_TOO_LARGE) failures.push(`a ${payloadBytes}-byte garbage batch was answered ${r.header.errorCode || 'with success'}`);
  }
  // A frame one byte over the limit: the connection is closed at once, nothing answered.
  const over = await runCase(f.broker.port, { kind: 'over the limit', bytes: frameOf(header, Buffer.alloc(16), MAX_FRAME + 1), cuts: [] });
  if (over.responses !== 0 || !over.closedByBroker) failures.push(`a frame over the limit got ${over.responses} responses, closed by the broker: ${over.closedByBroker}`);

  const CONCURRENCY = 24;
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < all.length && failures.length < 20) {
      const i = next++;
      const c = all[i]!;
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      let out: Outcome;
      try {
        out = await runCase(f.broker.port, c);
      } catch (err) {
        failures.push(`case ${i} (${c.kind}): ${String(err)}`);
        continue;
      }
      responses += out.responses;
      if (out.closedByBroker) closed++;
      if (out.problems.length > 0) failures.push(`case ${i} (${c.kind}, bytes ${c.bytes.subarray(0, 200).toString('hex')}): ${out.problems.join('; ')}`);
      if (!f.broker.alive) failures.push(`the broker died at case ${i} (${c.kind}): ${f.broker.child.exitCode ?? f.broker.child.signalCode}`);
      if (i % 500 === 499 && !(await healthy(f.broker.port))) failures.push(`health check failed after case ${i}`);
    }
  }));
  sampler.stop();
  t.deepEqual(failures.slice(0, 10), [], `${failures.length} failing cases (seed ${seed})`);
  t.true(f.broker.alive, f.broker.stderr().slice(-2000));
  t.true(await healthy(f.broker.port));
  t.deepEqual(await checkData(f), [], 'stored data after fuzzing');
  const m = await metrics(f.metricsPort);
  const after = memoryOf(f.broker.pid)!;
  const exit = await stopBroker(f.broker);
  t.deepEqual(exit, { code: 0, signal: null }, 'a clean shutdown after fuzzing');
  publish(t, {
    seed, cases: all.length, kinds: Object.fromEntries(kinds), responses, closedByBroker: closed, badFramesMetric: metric(m, 'commitlog_bad_frames_total'),
    rssBeforeMiB: +(before.rss / MiB).toFixed(1), rssPeakSampledMiB: +(sampler.peak / MiB).toFixed(1), rssHighWaterMiB: +(after.peak / MiB).toFixed(1), seconds: Math.round((performance.now() - started) / 1000),
  });
});

test.serial('many connections, clients that never read and clients stalled inside maximum-size frames: memory stays within the per-connection bounds, others are served, data unchanged', async (t) => {
  const f = await setup(t, 20);
  const idleCount = size('idle_connections', 400, 2000);
  const hogCount = size('hog_connections', 16, 64);
  const stallCount = size('stalled_connections', 6, 12);
  const before = memoryOf(f.broker.pid)!;
  const sampler = sampleMemory(f.broker.pid);
  t.teardown(() => sampler.stop());
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));

  // Idle connections.
  for (let i = 0; i < idleCount; i++) {
    const s = await connectRetrying(f.broker.port);
    s.on('error', () => undefined);
    sockets.push(s);
  }
  // Clients that flood fetches of ~7 MiB and never read a byte.
  const flood = Buffer.concat(Array.from({ length: 200 }, (_, i) => requestFrame(fetchBody('big', 0, 0, 8 * MiB), Buffer.alloc(0), i + 1)));
  for (let i = 0; i < hogCount; i++) {
    const s = await connectRetrying(f.broker.port);
    s.on('error', () => undefined);
    s.pause();
    s.write(flood);
    sockets.push(s);
  }
  // Clients that announce a maximum-size produce frame, send all but a few bytes, and stall.
  const header = requestFrame(produceBody('fuzz', 0), Buffer.alloc(0), 1).subarray(8);
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(MAX_FRAME, 0);
  prefix.writeUInt32BE(header.length, 4);
  const almost = Buffer.concat([prefix, header, Buffer.alloc(MAX_FRAME - 4 - header.length - 10, 0x33)]);
  for (let i = 0; i < stallCount; i++) {
    const s = await connectRetrying(f.broker.port);
    s.on('error', () => undefined);
    s.write(almost);
    sockets.push(s);
  }
  // A well-behaved client keeps working meanwhile.
  const good = await WireClient.connect(f.broker.port);
  t.teardown(() => good.destroy());
  let served = 0;
  let maxLatencyMs = 0;
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const t0 = performance.now();
    await within(good.ok({ case: 'metadata', value: { topics: [] } }), 20_000, 'a well-behaved client under attack');
    const r = await within(good.ok(fetchBody('stable', 0, 0, 4096)), 20_000, 'a fetch under attack');
    if (r.payload.length === 0) t.fail('empty fetch under attack');
    maxLatencyMs = Math.max(maxLatencyMs, performance.now() - t0);
    served++;
    await sleep(50);
  }
  const during = memoryOf(f.broker.pid)!;
  const m = await metrics(f.metricsPort);
  const connections = metric(m, 'commitlog_connections');
  t.true(f.broker.alive);
  t.true(connections >= idleCount + hogCount + stallCount, `connections gauge ${connections}`);

  // The bound: per connection, undecoded input up to the frame limit (the stalled ones),
  // or MAX_PENDING_BYTES of queued responses plus socket buffers (the hogs); idle ones next to nothing.
  const boundBytes = stallCount * MAX_FRAME + hogCount * (MAX_PENDING_BYTES + 2 * MiB) + idleCount * 64 * 1024 + 160 * MiB;
  const growth = sampler.peak - before.rss;
  t.true(growth <= boundBytes, `RSS grew by ${(growth / MiB).toFixed(1)} MiB, bound ${(boundBytes / MiB).toFixed(1)} MiB`);

  // They leave; the broker is still sound, and a SIGTERM with hogs still connected is clean.
  for (const s of sockets.splice(0, idleCount + stallCount)) s.destroy();
  t.deepEqual(await checkData(f), [], 'stored data after the attack');
  sampler.stop();
  const exit = await within(stopBroker(f.broker, 30_000), 40_000, 'shutdown with non-reading clients connected');
  t.deepEqual(exit, { code: 0, signal: null }, f.broker.stderr().slice(-2000));
  publish(t, {
    idle: idleCount, hogs: hogCount, stalledMaxFrames: stallCount, servedRoundTrips: served, maxRoundTripMs: Math.round(maxLatencyMs),
    rssBeforeMiB: +(before.rss / MiB).toFixed(1), rssDuringMiB: +(during.rss / MiB).toFixed(1), rssPeakSampledMiB: +(sampler.peak / MiB).toFixed(1),
    rssHighWaterMiB: +(during.peak / MiB).toFixed(1), boundMiB: +(boundBytes / MiB).toFixed(1),
  });
});
