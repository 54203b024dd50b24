/**
 * Helpers of the client tests (client-*.test.ts):
 * - `inProcessBroker`: a CommitLog and a broker in this process, on an ephemeral port;
 * - `BrokerChild`: the real `commitlog broker` as a child process on a fixed port, so
 *   it can be stopped (SIGKILL or SIGTERM) and started again where clients expect it;
 * - `fakeBroker`: a TCP server speaking the frame protocol (frame.ts) that serves
 *   hand-made record batches, to feed a consumer damaged data the real broker would
 *   never send;
 * - `within`: a hang guard (a test that waits for a client fails instead of hanging).
 * Everything listens on 127.0.0.1 and is stopped in the test's teardown.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../../src/log/commit-log.js';
import { readBatchHeader } from '../../src/log/batch.js';
import { encodeFrame, FrameDecoder } from '../../src/net/protocol/frame.js';
import { decodeRequest, encodeResponse, type MultiFetchPartitionResult, type RequestBody, type ResponseBody } from '../../src/net/protocol/messages.js';
import { startBroker, type Broker } from '../../src/net/broker/server.js';
import { tmpDir } from '../helpers/tmp.js';

export const quiet = { info: (): void => undefined, warn: (): void => undefined };

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects if `promise` has not settled after `ms`: a hang guard, not a performance bound. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- in-process broker ----------------------------------------------------------------

export interface InProcessBroker {
  log: CommitLog;
  broker: Broker;
  address: string;
}

/** A CommitLog (retention only when the test calls enforceRetention) served on an ephemeral port. */
export async function inProcessBroker(t: ExecutionContext, flush: 'sync' | 'async' = 'async'): Promise<InProcessBroker> {
  const dir = tmpDir(t, 'commitlog-client-');
  const log = await CommitLog.open({ dir, flush, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: 65536 }, logger: quiet });
  const broker = await startBroker({ log, port: 0, logger: quiet });
  t.teardown(async () => {
    await broker.close().catch(() => undefined);
    await log.close().catch(() => undefined);
  });
  return { log, broker, address: `127.0.0.1:${broker.port}` };
}

// ---- the broker as a child process ----------------------------------------------------

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'commitlog.js');

/** A port that was free a moment ago (the kernel's choice, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * `commitlog broker --dir DIR --port PORT --flush sync` as a child, started and
 * stopped as often as a test likes, always on the same port. A child still running
 * at the end of the test is SIGKILLed.
 */
export class BrokerChild {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Everything every life of the broker wrote to stderr. */
  stderr = '';

  constructor(t: ExecutionContext, readonly dir: string, readonly port: number, readonly extraArgs: string[] = []) {
    t.teardown(() => this.stop('SIGKILL'));
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the broker and waits for its listening line; retries while the port is still taken. */
  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.spawnOnce();
      if (result === 'listening') return;
      if (attempt >= 100 || !/EADDRINUSE|address already in use/i.test(result)) {
        throw new Error(`broker on port ${this.port} did not start: ${result.slice(-2000)}`);
      }
      await sleep(100);
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after 20 s of a SIGTERM). */
  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }

  private spawnOnce(): Promise<'listening' | string> {
    const args = [bin, 'broker', '--dir', this.dir, '--host', '127.0.0.1', '--port', String(this.port), '--flush', 'sync', '--log-level', 'warn', '--http-port', 'off', '--kafka-port', 'off', ...this.extraArgs];
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMMITLOG_')) env[k] = v;
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let out = '';
    let err = '';
    return new Promise((resolve) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (/listening on /.test(out)) resolve('listening');
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        this.stderr += d;
      });
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        resolve(`exited (${code ?? signal}) before listening: ${err}`);
      });
    });
  }
}

// ---- a fake broker serving hand-made batches ---------------------------------------------

export interface FakePartition {
  /** Encoded batches, in offset order (a damaged one is served as it is). */
  batches: Buffer[];
  /** Fetch requests received, by offset. */
  fetches: number[];
}

export interface FakeBroker {
  port: number;
  address: string;
  partitions: FakePartition[];
  /** Appends a batch to a partition and wakes its parked fetch. */
  append(partition: number, batch: Buffer): void;
}

function endOffset(p: FakePartition): number {
  const last = p.batches.at(-1);
  if (last === undefined) return 0;
  const h = readBatchHeader(last);
  return h.baseOffset + h.lastOffsetDelta + 1;
}

/** Whole batches from `offset` (the first may start before it), at least one, up to maxBytes. */
function readFake(p: FakePartition, offset: number, maxBytes: number): Buffer {
  const out: Buffer[] = [];
  let bytes = 0;
  for (const b of p.batches) {
    const h = readBatchHeader(b);
    if (h.baseOffset + h.lastOffsetDelta < offset) continue;
    if (out.length > 0 && bytes + b.length > maxBytes) break;
    out.push(b);
    bytes += b.length;
  }
  return Buffer.concat(out);
}

/**
 * Serves one topic of `partitionCount` partitions: Metadata, ListOffsets, OffsetFetch
 * (nothing committed), Fetch and MultiFetch of whole batches from `partitions[p].batches`, as the
 * real broker does (the first batch may start before the offset asked for; at least
 * one batch; a fetch at the end waits for an append up to max_wait_ms). A batch is
 * found by the offsets of its header as served, so damage to a header changes what
 * a fetch returns, as it would on disk.
 */
export async function fakeBroker(t: ExecutionContext, topic: string, partitionCount: number): Promise<FakeBroker> {
  const partitions: FakePartition[] = Array.from({ length: partitionCount }, () => ({ batches: [], fetches: [] }));
  const wakers = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  /** Resolves at the next append (or teardown), or after `maxWaitMs`. */
  const nextAppend = (maxWaitMs: number): Promise<void> => new Promise<void>((resolve) => {
    const wake = (): void => {
      wakers.delete(wake);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(wake, maxWaitMs);
    wakers.add(wake);
  });

  const answer = async (body: RequestBody | undefined): Promise<{ errorCode?: string; body?: ResponseBody; payload?: Buffer }> => {
    switch (body?.case) {
      case 'metadata':
        return {
          body: {
            case: 'metadata',
            value: { topics: [{ name: topic, partitions: partitions.map((p, i) => ({ partition: i, earliestOffset: 0, latestOffset: endOffset(p), sizeBytes: 0, segments: 1 })) }] },
          },
        };
      case 'listOffsets': {
        const p = partitions[body.value.partition]!;
        return { body: { case: 'listOffsets', value: { offset: body.value.spec === 'EARLIEST' ? 0 : endOffset(p) } } };
      }
      case 'offsetFetch':
        return { body: { case: 'offsetFetch', value: { offsets: [] } } };
      case 'fetch': {
        const { partition, offset, maxBytes, maxWaitMs } = body.value;
        const p = partitions[partition]!;
        p.fetches.push(offset);
        if (offset > endOffset(p)) return { errorCode: 'ERR_OFFSET_OUT_OF_RANGE' };
        if (offset === endOffset(p)) {
          await nextAppend(maxWaitMs);
        }
        return { body: { case: 'fetch', value: { highWatermark: endOffset(p), logStartOffset: 0 } }, payload: readFake(p, offset, maxBytes) };
      }
      case 'multiFetch': {
        // As the real broker: answered once any partition has data (or max_wait_ms).
        const { maxWaitMs } = body.value;
        const entries = body.value.partitions.map((e) => ({ e, p: partitions[e.partition]! }));
        for (const { e, p } of entries) p.fetches.push(e.offset);
        const readAll = (): { results: MultiFetchPartitionResult[]; payload: Buffer[] } => {
          const results: MultiFetchPartitionResult[] = [];
          const payload: Buffer[] = [];
          for (const { e, p } of entries) {
            const end = endOffset(p);
            const r: MultiFetchPartitionResult = { topic: e.topic, partition: e.partition, errorCode: '', errorMessage: '', highWatermark: end, logStartOffset: 0, bytes: 0 };
            if (e.offset > end) {
              r.errorCode = 'ERR_OFFSET_OUT_OF_RANGE';
              r.errorMessage = 'fake ERR_OFFSET_OUT_OF_RANGE';
            } else {
              const out = readFake(p, e.offset, e.maxBytes);
              r.bytes = out.length;
              payload.push(out);
            }
            results.push(r);
          }
          return { results, payload };
        };
        let read = readAll();
        if (read.results.every((r) => r.errorCode === '' && r.bytes === 0)) {
          await nextAppend(maxWaitMs);
          read = readAll();
        }
        return { body: { case: 'multiFetch', value: { partitions: read.results, maxWaitMs } }, payload: Buffer.concat(read.payload) };
      }
      default:
        return { errorCode: 'ERR_INVALID_ARGUMENT' };
    }
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    const decoder = new FrameDecoder();
    // Responses leave in request order, as the real broker's do.
    let chain = Promise.resolve();
    socket.on('data', (chunk) => {
      decoder.push(chunk);
      for (const frame of decoder) {
        const request = decodeRequest(frame.header);
        const answered = answer(request.body);
        chain = chain.then(async () => {
          const a = await answered;
          const errorCode = a.errorCode ?? '';
          const header = encodeResponse({ correlationId: request.correlationId, errorCode, errorMessage: errorCode === '' ? '' : `fake ${errorCode}`, body: a.body });
          const payload = a.payload ?? Buffer.alloc(0);
          if (!socket.destroyed) socket.write(Buffer.concat([encodeFrame(header, payload.length), payload]));
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const wake of [...wakers]) wake();
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    partitions,
    append(partition, batch) {
      partitions[partition]!.batches.push(batch);
      for (const wake of [...wakers]) wake();
    },
  };
}
