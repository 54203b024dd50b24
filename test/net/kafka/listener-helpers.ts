/**
 * Helpers of the Kafka listener tests: a CommitLog with a native broker core
 * (offsets store, coordinator) and the Kafka listener beside it on ephemeral ports,
 * and a raw Kafka client over one socket that encodes requests with the codec and
 * decodes the responses in order.
 */
import type { ExecutionContext } from 'ava';
import net from 'node:net';
import { CommitLog } from '../../../src/log/commit-log.js';
import { startBroker, type Broker } from '../../../src/net/broker/server.js';
import { decodeResponse, encodeRequest, KafkaFrameSplitter, type Message } from '../../../src/net/kafka/index.js';
import { startKafkaListener, type KafkaListener, type KafkaListenerOptions } from '../../../src/net/kafka/listener.js';
import { tmpDir } from '../../helpers/tmp.js';

export const quiet = { info: (): void => undefined, warn: (): void => undefined };

export interface KafkaSetup {
  log: CommitLog;
  broker: Broker;
  kafka: KafkaListener;
  /** "127.0.0.1:port" of the Kafka listener. */
  address: string;
}

export async function kafkaSetup(t: ExecutionContext, options: Partial<KafkaListenerOptions> = {}, flush: 'sync' | 'async' = 'async'): Promise<KafkaSetup> {
  const dir = tmpDir(t, 'commitlog-kafka-');
  const log = await CommitLog.open({ dir, flush, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: 1024 * 1024 }, logger: quiet });
  const broker = await startBroker({ log, port: 0, logger: quiet, groups: { initialRebalanceDelayMs: 0 } });
  const kafka = await startKafkaListener({ log, offsets: broker.offsets, coordinator: broker.coordinator, port: 0, logger: quiet, ...options });
  t.teardown(async () => {
    await kafka.close().catch(() => undefined);
    await broker.close().catch(() => undefined);
    await log.close().catch(() => undefined);
  });
  return { log, broker, kafka, address: `127.0.0.1:${kafka.port}` };
}

interface Waiter {
  key: number;
  version: number;
  correlationId: number;
  resolve: (body: Message) => void;
  reject: (err: Error) => void;
}

/** One raw connection: requests encoded by the codec, responses matched in order. */
export class RawKafka {
  readonly socket: net.Socket;
  private readonly splitter = new KafkaFrameSplitter();
  private readonly waiting: Waiter[] = [];
  private nextId = 1;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk) => {
      for (const frame of this.splitter.push(chunk)) {
        const w = this.waiting.shift();
        if (w === undefined) throw new Error('response without a request');
        try {
          const r = decodeResponse(w.key, w.version, frame);
          if (r.correlationId !== w.correlationId) throw new Error(`correlation id ${r.correlationId}, expected ${w.correlationId}`);
          w.resolve(r.body);
        } catch (err) {
          w.reject(err as Error);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      for (const w of this.waiting.splice(0)) w.reject(new Error('connection closed'));
    });
  }

  static connect(t: ExecutionContext, port: number): Promise<RawKafka> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawKafka(socket)));
      socket.once('error', reject);
      t.teardown(() => {
        socket.destroy();
      });
    });
  }

  /** The encoded request frame (size prefix included) and a promise of its response. */
  frame(key: number, version: number, body: Message, expectResponse = true): { bytes: Buffer; response: Promise<Message> } {
    const correlationId = this.nextId++;
    const bytes = encodeRequest({ apiKey: key, apiVersion: version, correlationId, clientId: 'raw-test' }, body);
    const response = new Promise<Message>((resolve, reject) => {
      if (expectResponse) this.waiting.push({ key, version, correlationId, resolve, reject });
    });
    response.catch(() => undefined);
    return { bytes, response };
  }

  /** Sends a ready request frame (without its size prefix), e.g. one captured from a client. */
  raw(frame: Buffer, key: number, version: number, correlationId: number, expectResponse = true): { bytes: Buffer; response: Promise<Message> } {
    const size = Buffer.alloc(4);
    size.writeInt32BE(frame.length, 0);
    const response = new Promise<Message>((resolve, reject) => {
      if (expectResponse) this.waiting.push({ key, version, correlationId, resolve, reject });
    });
    response.catch(() => undefined);
    return { bytes: Buffer.concat([size, frame]), response };
  }

  request(key: number, version: number, body: Message): Promise<Message> {
    const f = this.frame(key, version, body);
    this.socket.write(f.bytes);
    return f.response;
  }
}
