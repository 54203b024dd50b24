import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../../src/errors.js';
import { CommitLog, type CommitLogOptions } from '../../src/log/commit-log.js';
import { encodeBatch, readBatchHeader, setBaseOffset } from '../../src/log/batch.js';
import { sendfileStats } from '../../src/native.js';
import { encodeFrame, FrameDecoder } from '../../src/net/protocol/frame.js';
import { API_VERSION, decodeResponse, encodeRequest, type RequestBody, type ResponseHeader } from '../../src/net/protocol/messages.js';
import { MAX_PENDING_BYTES, MAX_PENDING_REQUESTS, startBroker, type Broker, type BrokerOptions } from '../../src/net/broker/server.js';
import { rng, testSeed, tmpDir, until } from '../helpers/tmp.js';

// Serial: several tests read process-wide counters (sendfile bytes, memory) or time things.

const MiB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---- a tiny raw client: frames in, frames out, nothing else ------------------------

interface Reply {
  header: ResponseHeader;
  payload: Buffer;
}

class RawClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 256 * MiB });
  private readonly replies: Reply[] = [];
  private waiter: ((r: Reply | Error) => void) | null = null;
  private nextId = 1;
  private failure: Error | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (const frame of this.decoder) {
        this.deliver({ header: decodeResponse(frame.header), payload: Buffer.from(frame.payload) });
      }
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.failure = new Error('connection closed');
      this.waiter?.(this.failure);
      this.waiter = null;
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private deliver(r: Reply): void {
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w(r);
    } else {
      this.replies.push(r);
    }
  }

  /** The bytes of one request frame. */
  frame(body: RequestBody | undefined, payload: Buffer = EMPTY, options: { apiVersion?: number; correlationId?: number } = {}): { bytes: Buffer; id: number } {
    const id = options.correlationId ?? this.nextId++;
    const header = encodeRequest({ apiVersion: options.apiVersion ?? API_VERSION, correlationId: id, clientId: 'server.test', body });
    return { bytes: Buffer.concat([encodeFrame(header, payload.length, 0xffffffff), payload]), id };
  }

  send(body: RequestBody | undefined, payload: Buffer = EMPTY, options: { apiVersion?: number } = {}): number {
    const { bytes, id } = this.frame(body, payload, options);
    this.socket.write(bytes);
    return id;
  }

  /** The next response, in arrival order. */
  next(timeoutMs = 20_000): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
  }

  async call(body: RequestBody | undefined, payload: Buffer = EMPTY, options: { apiVersion?: number } = {}): Promise<Reply> {
    const id = this.send(body, payload, options);
    const reply = await this.next();
    if (reply.header.correlationId !== id) throw new Error(`expected correlation id ${id}, got ${reply.header.correlationId}`);
    return reply;
  }

  /** A request that must succeed: its body. */
  async ok(body: RequestBody, payload: Buffer = EMPTY): Promise<Reply> {
    const reply = await this.call(body, payload);
    if (reply.header.errorCode !== '') throw new Error(`${body.case} failed: ${reply.header.errorCode} ${reply.header.errorMessage}`);
    return reply;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ---- fixtures -----------------------------------------------------------------------

interface Fixture {
  dir: string;
  log: CommitLog;
  broker: Broker;
  warnings: string[];
  clients: RawClient[];
  connect(): Promise<RawClient>;
}

const quiet = { info: () => undefined, warn: () => undefined };

async function setup(t: ExecutionContext, options: Partial<BrokerOptions> = {}, logOptions: Partial<CommitLogOptions> = {}, dir = tmpDir(t)): Promise<Fixture> {
  const log = await CommitLog.open({ dir, logger: quiet, ...logOptions });
  const warnings: string[] = [];
  const broker = await startBroker({ log, logger: { info: () => undefined, warn: (_f, m) => warnings.push(m) }, ...options });
  const clients: RawClient[] = [];
  const f: Fixture = {
    dir,
    log,
    broker,
    warnings,
    clients,
    connect: async () => {
      const c = await RawClient.connect(broker.port);
      clients.push(c);
      return c;
    },
  };
  t.teardown(async () => {
    for (const c of clients) c.destroy();
    await broker.close();
    await log.close();
  });
  return f;
}

function batchOf(count: number, valueBytes: number, seed = 1): Buffer {
  const random = rng(seed);
  const records = [];
  for (let i = 0; i < count; i++) {
    const value = Buffer.alloc(valueBytes);
    for (let j = 0; j < valueBytes; j += 4) value.writeUInt32LE((random() * 2 ** 32) >>> 0, Math.min(j, valueBytes - 4));
    records.push({ key: `k${i}`, value });
  }
  return encodeBatch(records, { timestamp: 1_700_000_000_000 + seed });
}

/** The bytes a batch is stored as: the same, with the base offset the log assigned. */
function stored(batch: Buffer, baseOffset: number): Buffer {
  const copy = Buffer.from(batch);
  setBaseOffset(copy, 0, baseOffset);
  return copy;
}

const produce = (topic: string, partition: number, acks: 'WRITTEN' | 'NONE' | 'FLUSHED' = 'WRITTEN'): RequestBody => ({ case: 'produce', value: { topic, partition, acks } });
const fetchReq = (topic: string, partition: number, offset: number, maxBytes = MiB, maxWaitMs = 0, minBytes = 0): RequestBody => ({
  case: 'fetch',
  value: { topic, partition, offset, maxBytes, maxWaitMs, minBytes },
});
const createTopic = (name: string, partitions = 1, segmentBytes?: number): RequestBody => ({
  case: 'createTopic',
  value: segmentBytes === undefined ? { name, partitions } : { name, partitions, segmentBytes },
});

type Bodies = { [B in NonNullable<ResponseHeader['body']> as B['case']]: B['value'] };

function bodyOf<K extends keyof Bodies>(reply: Reply, kind: K): Bodies[K] {
  const body = reply.header.body;
  if (body === undefined || body.case !== kind) throw new Error(`expected a ${kind} body, got ${JSON.stringify(reply.header)}`);
  return body.value as Bodies[K];
}

/** Every stored byte of a partition, fetched in steps of `maxBytes`, with the batch count. */
async function fetchAll(c: RawClient, topic: string, partition: number, maxBytes = 30_000): Promise<{ bytes: Buffer; batches: number }> {
  const parts: Buffer[] = [];
  let batches = 0;
  let offset = 0;
  for (;;) {
    const reply = await c.ok(fetchReq(topic, partition, offset, maxBytes));
    const { highWatermark } = bodyOf(reply, 'fetch');
    if (reply.payload.length === 0) {
      if (offset !== highWatermark) throw new Error(`empty fetch at ${offset} below the high watermark ${highWatermark}`);
      return { bytes: Buffer.concat(parts), batches };
    }
    parts.push(reply.payload);
    for (let pos = 0; pos < reply.payload.length; ) {
      const h = readBatchHeader(reply.payload, pos);
      offset = h.baseOffset + h.lastOffsetDelta + 1;
      pos += h.size;
      batches++;
    }
  }
}

function expectError(t: ExecutionContext, reply: Reply, code: string): void {
  t.is(reply.header.errorCode, code, reply.header.errorMessage);
  t.true(reply.header.errorMessage.length > 0);
  t.is(reply.payload.length, 0);
}

// ---- produce and fetch ------------------------------------------------------------------

test.serial('batches produced to several partitions fetch back byte-exact across segment rolls', async (t) => {
  const seed = testSeed();
  t.log(`SEED=${seed}`);
  const random = rng(seed);
  const f = await setup(t, {}, { flush: 'async' });
  const c = await f.connect();
  await c.ok(createTopic('rolls', 3, 65536));
  const expected: Buffer[][] = [[], [], []];
  const next = [0, 0, 0];
  for (let i = 0; i < 240; i++) {
    const partition = i % 3;
    const count = 1 + Math.floor(random() * 20);
    const batch = batchOf(count, 50 + Math.floor(random() * 500), seed + i);
    const reply = await c.ok(produce('rolls', partition), batch);
    t.deepEqual(bodyOf(reply, 'produce'), { baseOffset: next[partition], lastOffset: next[partition] + count - 1 });
    expected[partition].push(stored(batch, next[partition]));
    next[partition] += count;
  }
  const description = f.log.describeTopic('rolls');
  for (let p = 0; p < 3; p++) {
    t.true(description.partitions[p].segments >= 3, `partition ${p} rolled (${description.partitions[p].segments} segments)`);
    const all = await fetchAll(c, 'rolls', p);
    t.is(all.batches, expected[p].length);
    t.true(all.bytes.equals(Buffer.concat(expected[p])), `partition ${p} is byte-exact`);
    // A fetch from the middle of a batch starts at that batch.
    const reply = await c.ok(fetchReq('rolls', p, next[p] - 1, 1));
    t.true(reply.payload.equals(expected[p][expected[p].length - 1]));
    t.deepEqual(bodyOf(reply, 'fetch'), { highWatermark: next[p], logStartOffset: 0 });
  }
});

test.serial('50 pipelined requests written at once get 50 responses in request order', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('pipe', 2));
  const frames: Buffer[] = [];
  const ids: number[] = [];
  const kinds: string[] = [];
  for (let i = 0; i < 50; i++) {
    let body: RequestBody;
    let payload: Buffer = EMPTY;
    switch (i % 5) {
      case 0:
      case 1:
        body = produce('pipe', i % 2);
        payload = batchOf(3, 100, i);
        break;
      case 2:
        body = fetchReq('pipe', 0, 0);
        break;
      case 3:
        body = { case: 'metadata', value: { topics: ['pipe'] } };
        break;
      default:
        body = fetchReq('nope', 0, 0); // an error answered in its turn
    }
    const { bytes, id } = c.frame(body, payload);
    frames.push(bytes);
    ids.push(id);
    kinds.push(body.case);
  }
  c.socket.write(Buffer.concat(frames));
  const got: number[] = [];
  const produced = [0, 0];
  for (let i = 0; i < 50; i++) {
    const reply = await c.next();
    got.push(reply.header.correlationId);
    if (i % 5 === 4) {
      t.is(reply.header.errorCode, ErrorCode.UNKNOWN_TOPIC);
    } else {
      t.is(reply.header.body?.case as string | undefined, kinds[i]);
    }
    if (kinds[i] === 'produce') {
      // Produces to one partition are appended in request order.
      t.is(bodyOf(reply, 'produce').baseOffset, produced[i % 2]);
      produced[i % 2] += 3;
    }
  }
  t.deepEqual(got, ids);
});

test.serial('acks NONE gets no response, and the batch is stored', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('fire'));
  const batch = batchOf(4, 64);
  c.send(produce('fire', 0, 'NONE'), batch);
  // Under flush 'sync' the batch becomes visible once its msync lands: a long poll waits for it.
  const polled = await c.ok(fetchReq('fire', 0, 0, MiB, 10_000, 1));
  t.is(bodyOf(polled, 'fetch').highWatermark, 4);
  const id = c.send({ case: 'listOffsets', value: { topic: 'fire', partition: 0, spec: 'LATEST', timestamp: 0 } });
  const reply = await c.next();
  t.is(reply.header.correlationId, id);
  t.deepEqual(bodyOf(reply, 'listOffsets'), { offset: 4 });
  const all = await fetchAll(c, 'fire', 0);
  t.true(all.bytes.equals(stored(batch, 0)));
});

test.serial('acks FLUSHED answers once the batch is flushed under flush "os"', async (t) => {
  const flushed: string[] = [];
  const f = await setup(t, {}, { flush: 'os', hooks: { afterFlush: (topic, partition) => void flushed.push(`${topic}/${partition}`) } });
  const c = await f.connect();
  await c.ok(createTopic('durable', 2));
  const reply = await c.ok(produce('durable', 1, 'FLUSHED'), batchOf(2, 10));
  t.deepEqual(bodyOf(reply, 'produce'), { baseOffset: 0, lastOffset: 1 });
  t.deepEqual(flushed, ['durable/1']);
  await c.ok(produce('durable', 1, 'WRITTEN'), batchOf(2, 10));
  t.deepEqual(flushed, ['durable/1']);
});

test.serial('ListOffsets, Metadata and DeleteTopic answer from the log', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('meta', 2));
  await c.ok(createTopic('other'));
  const at = (ts: number) => encodeBatch([{ value: 'a', timestamp: ts }, { value: 'b', timestamp: ts + 10 }], { timestamp: ts });
  await c.ok(produce('meta', 1), at(1000));
  await c.ok(produce('meta', 1), at(2000));
  const list = async (spec: 'EARLIEST' | 'LATEST' | 'TIMESTAMP', timestamp = 0) =>
    bodyOf(await c.ok({ case: 'listOffsets', value: { topic: 'meta', partition: 1, spec, timestamp } }), 'listOffsets').offset;
  t.is(await list('EARLIEST'), 0);
  t.is(await list('LATEST'), 4);
  t.is(await list('TIMESTAMP', 1005), 1);
  t.is(await list('TIMESTAMP', 1500), 2);
  t.is(await list('TIMESTAMP', 9999), -1);
  const all = bodyOf(await c.ok({ case: 'metadata', value: { topics: [] } }), 'metadata');
  t.deepEqual(all.topics.map((x) => x.name), ['meta', 'other']);
  t.deepEqual(all.topics[0].partitions, [
    { partition: 0, earliestOffset: 0, latestOffset: 0, sizeBytes: 0, segments: 1 },
    { partition: 1, earliestOffset: 0, latestOffset: 4, sizeBytes: at(1000).length + at(2000).length, segments: 1 },
  ]);
  await c.ok({ case: 'deleteTopic', value: { name: 'other' } });
  t.deepEqual(bodyOf(await c.ok({ case: 'metadata', value: { topics: [] } }), 'metadata').topics.map((x) => x.name), ['meta']);
  expectError(t, await c.call({ case: 'metadata', value: { topics: ['other'] } }), ErrorCode.UNKNOWN_TOPIC);
});

// ---- long poll ------------------------------------------------------------------------

test.serial('a fetch at the end long-polls and is answered as soon as another connection produces', async (t) => {
  const f = await setup(t);
  const waiter = await f.connect();
  const producer = await f.connect();
  await producer.ok(createTopic('poll'));
  const started = performance.now();
  const id = waiter.send(fetchReq('poll', 0, 0, MiB, 5000));
  const pending = waiter.next();
  await new Promise((r) => setTimeout(r, 200));
  const batch = batchOf(2, 30);
  const producedAt = performance.now();
  await producer.ok(produce('poll', 0), batch);
  const reply = await pending;
  const answeredAt = performance.now();
  t.is(reply.header.correlationId, id);
  t.true(reply.payload.equals(stored(batch, 0)));
  t.deepEqual(bodyOf(reply, 'fetch'), { highWatermark: 2, logStartOffset: 0 });
  t.true(answeredAt < producedAt + 1000, `answered ${Math.round(answeredAt - producedAt)} ms after the produce`);
  t.true(answeredAt - started < 5000);
});

test.serial('a long-poll with no data answers empty after max_wait_ms', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('quiet'));
  const started = performance.now();
  const reply = await c.ok(fetchReq('quiet', 0, 0, MiB, 100));
  const elapsed = performance.now() - started;
  t.is(reply.payload.length, 0);
  t.deepEqual(bodyOf(reply, 'fetch'), { highWatermark: 0, logStartOffset: 0 });
  t.true(elapsed >= 90 && elapsed < 3000, `took ${Math.round(elapsed)} ms`);
});

test.serial('min_bytes makes a fetch wait until enough bytes are there', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  const p = await f.connect();
  await c.ok(createTopic('min'));
  const first = batchOf(1, 100, 1);
  await p.ok(produce('min', 0), first);
  const pending = c.call(fetchReq('min', 0, 0, MiB, 5000, first.length + 1));
  await new Promise((r) => setTimeout(r, 150));
  const second = batchOf(1, 100, 2);
  await p.ok(produce('min', 0), second);
  const reply = await pending;
  t.true(reply.payload.equals(Buffer.concat([stored(first, 0), stored(second, 1)])));
});

// ---- zero copy ------------------------------------------------------------------------

test.serial('a fetch of N bytes moves exactly N bytes through sendfile', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('zc'));
  for (let i = 0; i < 8; i++) await c.ok(produce('zc', 0), batchOf(20, 1000, i));
  const before = sendfileStats().bytes;
  const brokerBefore = f.broker.stats().sendfileBytes;
  const reply = await c.ok(fetchReq('zc', 0, 0, 4 * MiB));
  const moved = sendfileStats().bytes - before;
  t.true(reply.payload.length > 8 * 20 * 1000);
  t.is(moved, reply.payload.length);
  t.is(f.broker.stats().sendfileBytes - brokerBefore, reply.payload.length);
});

// ---- errors over the wire ----------------------------------------------------------------

test.serial('every request error comes back as its code, and the connection keeps working', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('errs', 1, 65536));
  const good = batchOf(3, 20);
  await c.ok(produce('errs', 0), good);
  const before = await fetchAll(c, 'errs', 0);

  expectError(t, await c.call(fetchReq('nope', 0, 0)), ErrorCode.UNKNOWN_TOPIC);
  expectError(t, await c.call(produce('errs', 9), good), ErrorCode.UNKNOWN_PARTITION);
  expectError(t, await c.call(createTopic('bad/name')), ErrorCode.INVALID_TOPIC);
  expectError(t, await c.call(createTopic('errs')), ErrorCode.TOPIC_EXISTS);
  expectError(t, await c.call(fetchReq('errs', 0, 1000)), ErrorCode.OFFSET_OUT_OF_RANGE);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 3] ^= 0x40;
  expectError(t, await c.call(produce('errs', 0), flipped), ErrorCode.CORRUPT_BATCH);
  expectError(t, await c.call(produce('errs', 0), EMPTY), ErrorCode.CORRUPT_BATCH);
  expectError(t, await c.call(produce('errs', 0), batchOf(1, 70_000)), ErrorCode.RECORD_TOO_LARGE);
  expectError(t, await c.call({ case: 'metadata', value: { topics: [] } }, EMPTY, { apiVersion: API_VERSION + 1 }), ErrorCode.UNSUPPORTED_VERSION);
  expectError(t, await c.call({ case: 'metadata', value: { topics: [] } }, EMPTY, { apiVersion: 0 }), ErrorCode.UNSUPPORTED_VERSION);
  // Version 1 requests are still served; the kinds version 2 added are refused in version 1.
  t.is((await c.call({ case: 'metadata', value: { topics: ['errs'] } }, EMPTY, { apiVersion: 1 })).header.errorCode, '');
  expectError(t, await c.call({ case: 'listGroups', value: {} }, EMPTY, { apiVersion: 1 }), ErrorCode.UNSUPPORTED_VERSION);
  expectError(t, await c.call(undefined), ErrorCode.INVALID_ARGUMENT);
  expectError(t, await c.call({ case: 'metadata', value: { topics: [] } }, good), ErrorCode.INVALID_ARGUMENT);
  expectError(t, await c.call(createTopic('tiny', 1, 1000)), ErrorCode.INVALID_ARGUMENT);
  expectError(t, await c.call({ case: 'offsetCommit', value: { group: 'g', offsets: [{ topic: 'nope', partition: 0, offset: 1, metadata: '' }] } }), ErrorCode.UNKNOWN_TOPIC);
  expectError(t, await c.call({ case: 'offsetCommit', value: { group: '', offsets: [{ topic: 'errs', partition: 0, offset: 1, metadata: '' }] } }), ErrorCode.INVALID_ARGUMENT);

  const after = await fetchAll(c, 'errs', 0);
  t.true(after.bytes.equals(before.bytes), 'stored data unchanged');
  t.is(f.log.latestOffset('errs', 0), 3);
  t.is(f.broker.stats().connections, 1);
});

for (const [title, bytes] of [
  ['a frame over maxFrameBytes', (() => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(2 * MiB, 0);
    b.writeUInt32BE(4, 4);
    return b;
  })()],
  ['a garbage prefix', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['a header that is not protobuf', encodeFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0)],
  // api_version 1, correlation_id 77, produce { acks: 7 }: protobuf, but no valid RequestHeader.
  ['a header with an unknown enum value', encodeFrame(Buffer.from([0x08, API_VERSION, 0x10, 77, 0x52, 0x02, 0x18, 0x07]), 0)],
] as const) {
  test.serial(`${title} closes that connection only; others keep working and stored data is unchanged`, async (t) => {
    const f = await setup(t, { maxFrameBytes: MiB });
    const good = await f.connect();
    const bad = await f.connect();
    await good.ok(createTopic('safe'));
    await good.ok(produce('safe', 0), batchOf(5, 50));
    const before = await fetchAll(good, 'safe', 0);
    // A long-poll on the bad connection is cancelled when it closes.
    bad.send(fetchReq('safe', 0, 5, MiB, 60_000));
    await new Promise((r) => setTimeout(r, 50));
    bad.socket.write(bytes);
    await bad.closed;
    t.is(f.broker.stats().badFrames, 1);
    t.is(f.warnings.length, 1);
    t.regex(f.warnings[0], /closing connection/);
    await good.ok(produce('safe', 0), batchOf(1, 10, 9));
    const after = await fetchAll(good, 'safe', 0);
    t.true(after.bytes.subarray(0, before.bytes.length).equals(before.bytes));
    t.is(f.log.latestOffset('safe', 0), 6);
    await until(() => f.broker.stats().connections === 1, 5000, 'the bad connection to go');
  });
}

// ---- consumer-group offsets ---------------------------------------------------------------

test.serial('committed offsets survive a restart of the broker and the CommitLog', async (t) => {
  const dir = tmpDir(t);
  const first = await setup(t, {}, {}, dir);
  const c = await first.connect();
  await c.ok(createTopic('grp', 3));
  await c.ok(produce('grp', 0), batchOf(12, 10));
  await c.ok(produce('grp', 2), batchOf(7, 10));
  await c.ok({
    case: 'offsetCommit',
    value: { group: 'readers', offsets: [{ topic: 'grp', partition: 0, offset: 12, metadata: 'gen-1' }, { topic: 'grp', partition: 2, offset: 7, metadata: '' }] },
  });
  c.destroy();
  await first.broker.close();
  await first.log.close();

  const second = await setup(t, {}, {}, dir);
  const d = await second.connect();
  const fetched = async (topic: string, partitions: number[], group = 'readers') =>
    bodyOf(await d.ok({ case: 'offsetFetch', value: { group, topic, partitions } }), 'offsetFetch').offsets;
  t.deepEqual(await fetched('grp', [0, 1, 2]), [
    { partition: 0, offset: 12, metadata: 'gen-1' },
    { partition: 1, offset: -1, metadata: '' },
    { partition: 2, offset: 7, metadata: '' },
  ]);
  t.deepEqual(await fetched('grp', []), await fetched('grp', [0, 1, 2]));
  t.deepEqual(await fetched('grp', [0], 'strangers'), [{ partition: 0, offset: -1, metadata: '' }]);
  expectError(t, await d.call({ case: 'offsetFetch', value: { group: 'readers', topic: 'grp', partitions: [3] } }), ErrorCode.UNKNOWN_PARTITION);
  // Deleting the topic drops its offsets: a new topic of the same name starts fresh.
  await d.ok({ case: 'deleteTopic', value: { name: 'grp' } });
  await d.ok(createTopic('grp', 3));
  t.deepEqual(await fetched('grp', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
});

// ---- backpressure and shutdown ---------------------------------------------------------------

test.serial('a client that sends many fetches and never reads stays bounded, and others are still served', async (t) => {
  const f = await setup(t);
  const setupClient = await f.connect();
  await setupClient.ok(createTopic('big'));
  const payload = batchOf(100, 10_000, 3); // ~1 MiB
  await setupClient.ok(produce('big', 0), payload);

  const hog = await f.connect();
  hog.socket.pause();
  const rssBefore = process.memoryUsage().rss;
  const frames: Buffer[] = [];
  for (let i = 0; i < 3000; i++) frames.push(hog.frame(fetchReq('big', 0, 0, 2 * MiB)).bytes);
  hog.socket.write(Buffer.concat(frames));
  await until(() => f.broker.stats().perConnection.some((s) => s.paused), 20_000, 'the broker to stop reading the hog');
  await new Promise((r) => setTimeout(r, 300));

  const other = await f.connect();
  const reply = await other.ok(fetchReq('big', 0, 0, 2 * MiB));
  t.true(reply.payload.equals(stored(payload, 0)));
  const stats = f.broker.stats();
  const hogStats = stats.perConnection.find((s) => s.pendingRequests > 0)!;
  t.log(`hog: ${hogStats.pendingRequests} pending requests, ${hogStats.pendingBytes} pending bytes; max pending ${stats.maxPendingBytes}; responses ${stats.responses}`);
  t.true(hogStats.pendingRequests <= MAX_PENDING_REQUESTS);
  t.true(stats.maxPendingBytes <= MAX_PENDING_BYTES + 2 * MiB, `max pending ${stats.maxPendingBytes}`);
  t.true(stats.responses < 1000, 'the broker did not answer everything into memory');
  t.true(process.memoryUsage().rss - rssBefore < 256 * MiB);
  hog.destroy();
  await until(() => f.broker.stats().connections === 2, 5000, 'the hog connection to go');
  // Every segment range its queued fetches held is released: once the topic is
  // deleted, no file descriptor of this process points into it.
  await setupClient.ok({ case: 'deleteTopic', value: { name: 'big' } });
  const topicDir = path.join(f.dir, 'big') + path.sep;
  const openInTopic = (): string[] =>
    fs.readdirSync('/proc/self/fd').map((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    }).filter((target) => target.startsWith(topicDir));
  await until(() => openInTopic().length === 0, 5000, `the deleted topic's files to be closed (${openInTopic().join(', ')})`);
  t.pass();
});

test.serial('broker.close() with open connections and a pending long-poll resolves promptly', async (t) => {
  const dir = tmpDir(t);
  const log = await CommitLog.open({ dir, logger: quiet });
  t.teardown(() => log.close());
  const broker = await startBroker({ log, logger: quiet });
  const a = await RawClient.connect(broker.port);
  const b = await RawClient.connect(broker.port);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  await a.ok(createTopic('bye'));
  const id = a.send(fetchReq('bye', 0, 0, MiB, 60_000));
  await new Promise((r) => setTimeout(r, 50));
  const started = performance.now();
  await broker.close();
  t.true(performance.now() - started < 3000);
  const reply = await a.next();
  t.is(reply.header.correlationId, id);
  t.is(reply.payload.length, 0);
  await Promise.all([a.closed, b.closed]);
  await t.throwsAsync(RawClient.connect(broker.port));
  // The CommitLog is still open and usable.
  t.is(log.latestOffset('bye', 0), 0);
});

// ---- the binary ---------------------------------------------------------------------------

function spawnBroker(dir: string): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'commitlog.js'), 'broker', '--dir', dir, '--port', '0', '--http-port', 'off', '--kafka-port', 'off'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

test.serial('bin/commitlog.js broker serves a directory, refuses a second broker on it, and exits 0 on SIGTERM', async (t) => {
  const dir = tmpDir(t);
  const first = spawnBroker(dir);
  t.teardown(() => {
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
  });
  await until(() => /listening on /.test(first.stdout()) || first.child.exitCode !== null, 30_000, 'the listening line');
  const match = /listening on (\S+):(\d+)/.exec(first.stdout());
  t.truthy(match, first.stderr());
  const port = Number(match![2]);
  t.true(port > 0);

  const c = await RawClient.connect(port);
  await c.ok(createTopic('cli'));
  const batch = batchOf(3, 40);
  await c.ok(produce('cli', 0), batch);
  const reply = await c.ok(fetchReq('cli', 0, 0));
  t.true(reply.payload.equals(stored(batch, 0)));

  const second = spawnBroker(dir);
  t.is(await second.exited, 1);
  t.regex(second.stderr(), /lock/i);

  first.child.kill('SIGTERM');
  t.is(await first.exited, 0, first.stderr());
  await c.closed;
  t.true(fs.existsSync(path.join(dir, '.clean-shutdown')));
});

test.serial('startBroker rejects a bad port and a taken one', async (t) => {
  const f = await setup(t);
  await t.throwsAsync(startBroker({ log: f.log, port: 70000 }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(startBroker({ log: f.log, port: f.broker.port, logger: quiet }), { code: 'EADDRINUSE' });
});

test.serial('a client that half-closes after its requests still gets every response, then the connection closes', async (t) => {
  const f = await setup(t);
  const c = await f.connect();
  await c.ok(createTopic('half'));
  const ids = [c.send(produce('half', 0), batchOf(2, 10)), c.send(fetchReq('half', 0, 0, MiB, 5000)), c.send({ case: 'metadata', value: { topics: [] } })];
  c.socket.end();
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await c.next()).header.correlationId);
  t.deepEqual(got, ids);
  await c.closed;
  await until(() => f.broker.stats().connections === 0, 5000, 'the connection to close');
});
