/**
 * MultiFetch (many partitions in one long poll), the old single-partition Fetch still
 * served byte for byte, the broker's maxWaitMs cap and transferTimeoutMs, and the
 * Consumer reading a 16-partition topic over exactly one connection.
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { ErrorCode } from '../../src/errors.js';
import { CommitLog } from '../../src/log/commit-log.js';
import { decodeBatches } from '../../src/log/batch-decode.js';
import { encodeBatch } from '../../src/log/batch.js';
import { Consumer } from '../../src/net/client/consumer.js';
import { encodeFrame, FrameDecoder } from '../../src/net/protocol/frame.js';
import {
  API_VERSION, decodeResponse, encodeRequest, type MultiFetchResponse, type RequestBody, type ResponseHeader,
} from '../../src/net/protocol/messages.js';
import { startBroker, type Broker, type BrokerOptions } from '../../src/net/broker/server.js';
import { tmpDir, until } from '../helpers/tmp.js';
import { quiet } from './client-helpers.js';

const MiB = 1024 * 1024;

interface Reply {
  header: ResponseHeader;
  payload: Buffer;
}

/** Frames in, frames out. */
class Raw {
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 256 * MiB });
  private readonly replies: Reply[] = [];
  private waiter: ((r: Reply) => void) | null = null;
  private id = 1;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (const f of this.decoder) {
        const r = { header: decodeResponse(f.header), payload: Buffer.from(f.payload) };
        if (this.waiter !== null) {
          const w = this.waiter;
          this.waiter = null;
          w(r);
        } else this.replies.push(r);
      }
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  frame(body: RequestBody): Buffer {
    const header = encodeRequest({ apiVersion: API_VERSION, correlationId: this.id++, clientId: 'multi-fetch.test', body });
    return encodeFrame(header, 0);
  }

  next(): Promise<Reply> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  call(body: RequestBody): Promise<Reply> {
    this.socket.write(this.frame(body));
    return this.next();
  }
}

interface Fixture {
  log: CommitLog;
  broker: Broker;
  raw(): Promise<Raw>;
}

async function setup(t: ExecutionContext, options: Partial<BrokerOptions> = {}, segmentBytes = 1 * MiB): Promise<Fixture> {
  const log = await CommitLog.open({ dir: tmpDir(t), logger: quiet, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes } });
  const broker = await startBroker({ log, logger: quiet, ...options });
  const sockets: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await broker.close();
    await log.close();
  });
  return {
    log, broker, raw: async () => {
      const r = await Raw.connect(broker.port);
      sockets.push(r.socket);
      return r;
    },
  };
}

/** Appends `count` records 'p<partition>-<i>' to a partition, in batches of `per`. */
async function fill(log: CommitLog, topic: string, partition: number, count: number, per = 5, valueBytes = 0): Promise<void> {
  for (let i = 0; i < count; i += per) {
    const records = Array.from({ length: Math.min(per, count - i) }, (_, j) => ({ value: valueBytes > 0 ? Buffer.alloc(valueBytes, 97) : `p${partition}-${i + j}` }));
    await log.appendBatch(topic, partition, encodeBatch(records, { timestamp: 1000 }));
  }
}

function multi(reply: Reply): MultiFetchResponse {
  if (reply.header.errorCode !== '') throw new Error(`${reply.header.errorCode}: ${reply.header.errorMessage}`);
  const body = reply.header.body;
  if (body?.case !== 'multiFetch') throw new Error(`expected a multiFetch body, got ${body?.case}`);
  return body.value;
}

/** Each result's records (from its offset on), split out of the payload by the results' byte counts. */
function split(reply: Reply, offsets: number[]): string[][] {
  const out: string[][] = [];
  let at = 0;
  multi(reply).partitions.forEach((r, i) => {
    out.push(decodeBatches(reply.payload, at, at + r.bytes, offsets[i]).map((rec) => rec.value!.toString()));
    at += r.bytes;
  });
  if (at !== reply.payload.length) throw new Error(`results cover ${at} bytes of a ${reply.payload.length}-byte payload`);
  return out;
}

test('MultiFetch returns each partition\'s batches, its high watermark and log start, and per-partition errors without failing the rest', async (t) => {
  const { log, raw } = await setup(t);
  await log.createTopic('a', { partitions: 3 });
  await fill(log, 'a', 0, 10);
  await fill(log, 'a', 2, 3);
  const c = await raw();
  const reply = await c.call({
    case: 'multiFetch',
    value: {
      partitions: [
        { topic: 'a', partition: 0, offset: 6, maxBytes: 0 },
        { topic: 'a', partition: 1, offset: 0, maxBytes: 0 },
        { topic: 'a', partition: 2, offset: 0, maxBytes: 0 },
        { topic: 'a', partition: 7, offset: 0, maxBytes: 0 },
        { topic: 'nope', partition: 0, offset: 0, maxBytes: 0 },
      ],
      maxBytes: 0, maxWaitMs: 0, minBytes: 0,
    },
  });
  const r = multi(reply).partitions;
  t.deepEqual(r.map((p) => [p.topic, p.partition, p.errorCode, p.highWatermark, p.logStartOffset]), [
    ['a', 0, '', 10, 0],
    ['a', 1, '', 0, 0],
    ['a', 2, '', 3, 0],
    ['a', 7, ErrorCode.UNKNOWN_PARTITION, 0, 0],
    ['nope', 0, ErrorCode.UNKNOWN_TOPIC, 0, 0],
  ]);
  t.deepEqual(split(reply, [6, 0, 0, 0, 0]), [['p0-6', 'p0-7', 'p0-8', 'p0-9'], [], ['p2-0', 'p2-1', 'p2-2'], [], []]);
  // An offset past the end is that partition's ERR_OFFSET_OUT_OF_RANGE, with its range.
  const out = multi(await c.call({
    case: 'multiFetch', value: { partitions: [{ topic: 'a', partition: 2, offset: 50, maxBytes: 0 }, { topic: 'a', partition: 0, offset: 0, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 0, minBytes: 0 },
  })).partitions;
  t.deepEqual(out.map((p) => [p.errorCode, p.highWatermark, p.logStartOffset, p.bytes > 0]), [[ErrorCode.OFFSET_OUT_OF_RANGE, 3, 0, false], ['', 10, 0, true]]);
  // Bad requests as a whole: none named, one named twice.
  const none = await c.call({ case: 'multiFetch', value: { partitions: [], maxBytes: 0, maxWaitMs: 0, minBytes: 0 } });
  t.is(none.header.errorCode, ErrorCode.INVALID_ARGUMENT);
  const twice = await c.call({ case: 'multiFetch', value: { partitions: [{ topic: 'a', partition: 0, offset: 0, maxBytes: 0 }, { topic: 'a', partition: 0, offset: 3, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 0, minBytes: 0 } });
  t.is(twice.header.errorCode, ErrorCode.INVALID_ARGUMENT);
});

test('MultiFetch caps: per partition, overall, and always one whole batch of the first partition with data', async (t) => {
  const { log, raw } = await setup(t);
  await log.createTopic('c', { partitions: 3 });
  for (const p of [0, 1, 2]) await fill(log, 'c', p, 20, 5);
  const c = await raw();
  const all = { topic: 'c', offset: 0 };
  // maxBytes 1 everywhere: partition 0 still gets its first batch (5 records), the others nothing.
  const tiny = await c.call({ case: 'multiFetch', value: { partitions: [0, 1, 2].map((partition) => ({ ...all, partition, maxBytes: 1 })), maxBytes: 1, maxWaitMs: 0, minBytes: 0 } });
  t.deepEqual(split(tiny, [0, 0, 0]).map((v) => v.length), [5, 0, 0]);
  t.deepEqual(multi(tiny).partitions.map((p) => p.highWatermark), [20, 20, 20]);
  // Per-partition caps of one batch each, no overall cap: one batch from every partition.
  const oneBatch = await c.call({ case: 'multiFetch', value: { partitions: [0, 1, 2].map((partition) => ({ ...all, partition, maxBytes: 1 })), maxBytes: 0, maxWaitMs: 0, minBytes: 0 } });
  t.deepEqual(split(oneBatch, [0, 0, 0]).map((v) => v.length), [5, 5, 5]);
  // An overall cap of two batches' bytes: partition 0 all of its 4 batches do not fit; what fits, in order.
  const batchBytes = multi(oneBatch).partitions[0]!.bytes;
  const capped = await c.call({ case: 'multiFetch', value: { partitions: [0, 1, 2].map((partition) => ({ ...all, partition, maxBytes: 0 })), maxBytes: 2 * batchBytes, maxWaitMs: 0, minBytes: 0 } });
  t.deepEqual(split(capped, [0, 0, 0]).map((v) => v.length), [10, 0, 0]);
});

test('MultiFetch long-polls all its partitions and is answered by an append to any one of them', async (t) => {
  const { log, broker, raw } = await setup(t);
  await log.createTopic('w', { partitions: 4 });
  const c = await raw();
  const answered = c.call({
    case: 'multiFetch', value: { partitions: [0, 1, 2, 3].map((partition) => ({ topic: 'w', partition, offset: 0, maxBytes: 0 })), maxBytes: 0, maxWaitMs: 3_600_000, minBytes: 0 },
  });
  await until(() => broker.stats().perConnection.some((p) => p.pendingRequests === 1), 10_000, 'the poll to be parked');
  await fill(log, 'w', 2, 3);
  const reply = await answered;
  t.deepEqual(split(reply, [0, 0, 0, 0]), [[], [], ['p2-0', 'p2-1', 'p2-2'], []]);
  t.is(multi(reply).maxWaitMs, 30_000); // an hour asked, the default cap applied
  t.is(broker.stats().clampedWaits, 1);
});

test('a maxWaitMs above the broker\'s cap is clamped to it: the response arrives and says so', async (t) => {
  const { log, broker, raw } = await setup(t, { maxWaitMs: 200 });
  await log.createTopic('e', { partitions: 2 });
  const c = await raw();
  const reply = await c.call({ case: 'multiFetch', value: { partitions: [{ topic: 'e', partition: 0, offset: 0, maxBytes: 0 }, { topic: 'e', partition: 1, offset: 0, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 3_600_000, minBytes: 0 } });
  t.is(multi(reply).maxWaitMs, 200);
  t.deepEqual(multi(reply).partitions.map((p) => p.bytes), [0, 0]);
  // The single-partition Fetch is capped the same way.
  const single = await c.call({ case: 'fetch', value: { topic: 'e', partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 3_600_000, minBytes: 0 } });
  t.is(single.header.errorCode, '');
  t.is(single.payload.length, 0);
  t.is(broker.stats().clampedWaits, 2);
  const within = await c.call({ case: 'multiFetch', value: { partitions: [{ topic: 'e', partition: 0, offset: 0, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 10, minBytes: 0 } });
  t.is(multi(within).maxWaitMs, 10);
  t.is(broker.stats().clampedWaits, 2);
});

test('the old single-partition Fetch request, byte for byte, is answered as before', async (t) => {
  const { log, raw } = await setup(t);
  await log.createTopic('t', { partitions: 2 });
  await fill(log, 't', 1, 5);
  // u32 length 28 | u32 header length 24 | RequestHeader { api_version 1, correlation_id 7,
  // client_id "old", fetch { topic "t", partition 1, offset 2, max_bytes 65536, min_bytes 1 } }
  const frame = Buffer.from('0000001c' + '00000018' + '0801' + '1007' + '1a036f6c64' + '5a0d' + '0a0174' + '1001' + '1802' + '20808004' + '3001', 'hex');
  t.is(frame.length, 32);
  const c = await raw();
  c.socket.write(frame);
  const reply = await c.next();
  t.is(reply.header.correlationId, 7);
  t.is(reply.header.errorCode, '');
  t.deepEqual(reply.header.body, { case: 'fetch', value: { highWatermark: 5, logStartOffset: 0 } });
  // The whole stored batch (it starts before offset 2), as stored.
  t.deepEqual(decodeBatches(reply.payload, 0, reply.payload.length, 0).map((r) => [r.offset, r.value!.toString()]), [[0, 'p1-0'], [1, 'p1-1'], [2, 'p1-2'], [3, 'p1-3'], [4, 'p1-4']]);
  // Its encoding has not changed either.
  t.deepEqual(Buffer.from(encodeRequest({ apiVersion: 1, correlationId: 7, clientId: 'old', body: { case: 'fetch', value: { topic: 't', partition: 1, offset: 2, maxBytes: 65536, maxWaitMs: 0, minBytes: 1 } } })), frame.subarray(8));
});

test('a client that stops reading during a transfer is cut off after transferTimeoutMs; others keep being served', async (t) => {
  const { log, broker, raw } = await setup(t, { transferTimeoutMs: 1000 }, 16 * MiB);
  await log.createTopic('big', { partitions: 1 });
  await fill(log, 'big', 0, 4096, 64, 1000); // ~4 MiB in 64 batches
  const hog = await raw();
  hog.socket.pause();
  hog.socket.removeAllListeners('data');
  // 12 fetches of all of it: ~48 MiB, far past what the socket buffers hold.
  const frames = Array.from({ length: 12 }, () => hog.frame({ case: 'fetch', value: { topic: 'big', partition: 0, offset: 0, maxBytes: 8 * MiB, maxWaitMs: 0, minBytes: 0 } }));
  hog.socket.write(Buffer.concat(frames));
  const other = await raw();
  // Served while the hog is stalled, and after it is gone.
  const during = await other.call({ case: 'multiFetch', value: { partitions: [{ topic: 'big', partition: 0, offset: 4000, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 0, minBytes: 0 } });
  t.is(multi(during).partitions[0]!.highWatermark, 4096);
  await until(() => broker.stats().transferTimeouts === 1, 60_000, 'the transfer timeout');
  await until(() => broker.stats().connections === 1, 10_000, 'the hog connection to close');
  t.is(broker.stats().perConnection.length, 1);
  const after = await other.call({ case: 'multiFetch', value: { partitions: [{ topic: 'big', partition: 0, offset: 4032, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 0, minBytes: 0 } });
  t.is(split(after, [4032])[0]!.length, 64);
  // The slices the hog held are released: the topic can be deleted and recreated.
  await log.deleteTopic('big');
  t.false(log.listTopics().includes('big'));
});

test('a long poll whose client went away ends with its connection', async (t) => {
  const { log, broker, raw } = await setup(t);
  await log.createTopic('idle', { partitions: 8 });
  const c = await raw();
  c.socket.write(c.frame({ case: 'multiFetch', value: { partitions: Array.from({ length: 8 }, (_, partition) => ({ topic: 'idle', partition, offset: 0, maxBytes: 0 })), maxBytes: 0, maxWaitMs: 3_600_000, minBytes: 0 } }));
  await until(() => broker.stats().perConnection.some((p) => p.pendingRequests === 1), 10_000, 'the poll to be parked');
  c.socket.destroy();
  await until(() => broker.stats().connections === 0, 10_000, 'the connection to be cleaned up');
  // The broker goes on serving: a new poll is answered by an append.
  const d = await raw();
  const answered = d.call({ case: 'multiFetch', value: { partitions: [{ topic: 'idle', partition: 5, offset: 0, maxBytes: 0 }], maxBytes: 0, maxWaitMs: 3_600_000, minBytes: 0 } });
  await until(() => broker.stats().perConnection.some((p) => p.pendingRequests === 1), 10_000, 'the second poll to be parked');
  await fill(log, 'idle', 5, 2);
  t.deepEqual(split(await answered, [0]), [['p5-0', 'p5-1']]);
});

test('a Consumer of a 16-partition topic uses exactly one connection and gets every record', async (t) => {
  const { log, broker } = await setup(t);
  await log.createTopic('sixteen', { partitions: 16 });
  for (let p = 0; p < 16; p++) await fill(log, 'sixteen', p, 40 + p, 7);
  const consumer = new Consumer({ broker: `127.0.0.1:${broker.port}`, topic: 'sixteen', maxWaitMs: 200, logger: quiet });
  t.teardown(() => consumer.close());
  const expected = Array.from({ length: 16 }, (_, p) => 40 + p + 10).reduce((a, b) => a + b, 0);
  const seen = new Map<number, string[]>();
  let total = 0;
  let appended = false;
  for await (const r of consumer) {
    if (!seen.has(r.partition)) seen.set(r.partition, []);
    seen.get(r.partition)!.push(r.value!.toString());
    total++;
    if (!appended && total === 100) {
      // Records that arrive while the consumer long-polls wake it.
      appended = true;
      for (let p = 0; p < 16; p++) {
        await log.appendBatch('sixteen', p, encodeBatch(Array.from({ length: 10 }, (_, i) => ({ value: `late-${p}-${i}` })), { timestamp: 1000 }));
      }
    }
    if (total === expected) break;
  }
  for (let p = 0; p < 16; p++) {
    const want = [...Array.from({ length: 40 + p }, (_, i) => `p${p}-${i}`), ...Array.from({ length: 10 }, (_, i) => `late-${p}-${i}`)];
    t.deepEqual(seen.get(p), want, `partition ${p}`);
  }
  const stats = broker.stats();
  t.is(stats.connectionsAccepted, 1);
  t.is(stats.connections, 1);
  t.is(stats.fetches, 0);
  t.true(stats.multiFetches > 0);
});
