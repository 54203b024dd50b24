/**
 * Producer: sends records to a broker, batched per topic-partition into RecordBatch v2
 * (the broker copies a batch into its log as is, so the client does all per-record
 * work: encoding and the CRC32C).
 *
 * Life of a record: `send()` picks its partition (explicit; else the partitioner:
 * XXH3 of the key modulo the partition count, round robin for keyless records) and
 * appends it to that partition's open draft. A draft leaves as one encoded batch
 * once it is full (`batchBytes`) or `lingerMs` has passed since its first record,
 * and the connection has room: at most `maxInFlight` requests unanswered, and none
 * sent while the socket's write queue is above its high-water mark. Until then it
 * keeps taking records, so batches grow when the broker is the bottleneck (Kafka's
 * accumulator does the same). Each batch's response resolves its records' promises
 * with their offsets (base offset + index in the batch). The drafts are the
 * accumulator's (producer-accumulator.ts), a draft and the promises of its records
 * producer-batch.ts's, the partitioners partitioner.ts's, the connection and the
 * metadata requests producer-link.ts's; this module sends.
 *
 * Partition counts come from a Metadata request per topic, cached for the producer's
 * life; a batch refused with ERR_UNKNOWN_TOPIC/PARTITION drops the entry, so the next
 * send asks again (the topic may have been recreated).
 *
 * Retries, bounded by time (Kafka's delivery.timeout.ms): only connection failures
 * (refused, reset, timed out) and ERR_LOG_CLOSED (the broker is shutting down) are
 * retried; see isRetriable() in client-types.ts for why the other codes are final.
 * The producer reconnects, and resends, with capped jittered exponential backoff
 * (retryBackoffMs doubling up to retryBackoffMaxMs, backoffMs()) for as long as a
 * record may still be delivered: a record fails only once `deliveryTimeoutMs` has
 * passed since its batch was started (ERR_DELIVERY_TIMEOUT, the last failure as its
 * cause), whether it is waiting for metadata, for a connection, for a resend or for
 * an answer. `retries` (default unlimited) can bound the attempts per batch as well.
 * A batch whose response was lost with the connection may already be in the log, so
 * a resend can write it twice: delivery is at least once.
 *
 * Order within a partition: a batch that failed retriably is resent only once every
 * request still in flight has been answered or failed, and resends go in their
 * original order before anything newer. Batches failing together (one lost
 * connection) therefore keep their order; what could still reorder is a batch
 * failing alone while later ones succeed, which neither a lost connection nor a
 * broker that is shutting down (it refuses everything after) produces.
 *
 * Concurrency: single JS thread; any number of concurrent send() calls. Records are
 * not copied before encoding: do not mutate a record (or its Buffers) until its
 * promise settles.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import type { ProducerRecord } from '../../log/record.js';
import { resolveCodec } from '../../log/batch-encode.js';
import type { CompressionName } from '../../log/compression.js';
import {
  backoffMs,
  intOption,
  isRetriable,
  parseBroker,
  retryPolicy,
  type ClientOptions,
  type RecordMetadata,
  type RetryOptions,
  type RetryPolicy,
} from './client-types.js';
import type { Connection, ConnectionOptions } from './connection.js';
import { ProducerLink } from './producer-link.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frame.js';
import type { Acks as WireAcks } from '../protocol/messages.js';
import { choosePartition, partitionerOption, type Partitioner } from './partitioner.js';
import { Accumulator } from './producer-accumulator.js';
import { capture, captured, Delivery, estimateRecord, rejectOwner, resolveRecords, type Draft, type Owner, type Resolve } from './producer-batch.js';

export type { Partitioner, PartitionerFn } from './partitioner.js';

export type Acks = 'none' | 'written' | 'flushed';

export interface ProducerOptions extends ClientOptions, RetryOptions {
  /** 'written' (default): acknowledged once in the broker's log; 'flushed': once on disk; 'none': not acknowledged (offset -1). */
  acks?: Acks;
  /** How long a partition's first record waits for company before its batch is sent. Default 5; 0 sends at the next turn of the event loop. */
  lingerMs?: number;
  /** A batch is sent once its records take about this many bytes. Default 1 MiB. */
  batchBytes?: number;
  /** Compress each batch's records: 'none' (default), 'gzip', 'snappy', 'lz4' or 'zstd' (Kafka's codecs; docs/format.md). */
  compression?: CompressionName;
  /** Produce requests sent and not yet answered. Default 5. */
  maxInFlight?: number;
  /**
   * How long a record may take from send() to its acknowledgement, waiting, retries
   * and resends included; past it the record fails with ERR_DELIVERY_TIMEOUT. Default
   * 120000 (Kafka's delivery.timeout.ms).
   */
  deliveryTimeoutMs?: number;
  /** Attempts after the first, per batch, for retriable failures. Default unlimited: deliveryTimeoutMs bounds them. */
  retries?: number;
  partitioner?: Partitioner;
}

export interface SendOptions {
  /** Send every record to this partition (no partitioner, no metadata request). */
  partition?: number;
}

interface TopicState {
  /** Partition count from metadata; -1 until known. */
  partitions: number;
  roundRobin: number;
}

interface WaitingSend {
  records: ProducerRecord[];
  estimates: number[];
  owner: Owner;
  /** Date.now() at send(): its delivery timeout runs from here. */
  sentAt: number;
}

/** Room for the frame prefix and the request header inside maxFrameBytes. */
const FRAME_HEADROOM_BYTES = 4096;

const WIRE_ACKS: Record<Acks, WireAcks> = { none: 'NONE', written: 'WRITTEN', flushed: 'FLUSHED' };

export class Producer {
  private readonly host: string;
  private readonly port: number;
  private readonly acks: Acks;
  private readonly lingerMs: number;
  private readonly batchBytes: number;
  private readonly maxInFlight: number;
  private readonly retries: number;
  private readonly retry: RetryPolicy;
  private readonly deliveryTimeoutMs: number;
  private readonly partitioner: Partitioner;
  private readonly acc: Accumulator;

  private readonly topics = new Map<string, TopicState>();
  private readonly metadataRequests = new Map<string, Promise<number>>();
  private readonly waiting = new Map<string, WaitingSend[]>();
  /** Dispatched drafts that failed retriably, in seq order; they go before any draft. */
  private retryQueue: Draft[] = [];
  private inFlight = 0;
  private lingerTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** Fires at the earliest delivery deadline of what is unsettled. */
  private expiryTimer: NodeJS.Timeout | undefined;
  /** The connection to the broker and the metadata requests (producer-link.ts). */
  private readonly link: ProducerLink;
  /** A pump waits for the connection, a drain or a backoff; nothing else may dispatch. */
  private pumpBlocked = false;
  private pausedUntil = 0;
  private closing: Promise<void> | undefined;

  constructor(options: ProducerOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options must be an object');
    const { host, port } = parseBroker(options.broker);
    this.host = host;
    this.port = port;
    const acks = options.acks ?? 'written';
    if (!Object.hasOwn(WIRE_ACKS, acks)) throw invalidArgument(`acks must be 'none', 'written' or 'flushed', got ${String(acks)}`);
    this.acks = acks;
    this.lingerMs = intOption('lingerMs', options.lingerMs, 5);
    const maxFrameBytes = intOption('maxFrameBytes', options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 64 * 1024, 0xffffffff);
    const maxBatchBytes = maxFrameBytes - FRAME_HEADROOM_BYTES;
    this.batchBytes = intOption('batchBytes', options.batchBytes, 1024 * 1024, 1, maxBatchBytes);
    this.acc = new Accumulator(this.batchBytes, maxBatchBytes, () => {
      if (this.waiting.size === 0) this.disarmExpiry();
    });
    this.acc.compression = resolveCodec(options.compression);
    this.maxInFlight = intOption('maxInFlight', options.maxInFlight, 5, 1);
    this.retries = intOption('retries', options.retries, Number.MAX_SAFE_INTEGER);
    this.retry = retryPolicy(options);
    this.deliveryTimeoutMs = intOption('deliveryTimeoutMs', options.deliveryTimeoutMs, 120_000, 1);
    this.partitioner = partitionerOption(options.partitioner);
    const connectionOptions: ConnectionOptions = {
      host,
      port,
      clientId: options.clientId,
      connectTimeoutMs: options.connectTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs,
      maxFrameBytes,
      writeHighWaterMarkBytes: Math.max(2 * this.batchBytes, 64 * 1024),
    };
    this.link = new ProducerLink(connectionOptions, this.retries, this.retry, () => this.wantsConnection());
  }

  /**
   * Sends one record (resolving to its { partition, offset }) or a list (resolving to
   * one per record, in order). Rejects with the broker's error code (ERR_UNKNOWN_TOPIC,
   * ERR_RECORD_TOO_LARGE, ...), ERR_DELIVERY_TIMEOUT once deliveryTimeoutMs passed
   * without an answer (ERR_IO if an explicit `retries` ran out first),
   * ERR_INVALID_ARGUMENT for a malformed record, ERR_LOG_CLOSED after close().
   */
  send(topic: string, record: ProducerRecord, options?: SendOptions): Promise<RecordMetadata>;
  send(topic: string, records: ProducerRecord[], options?: SendOptions): Promise<RecordMetadata[]>;
  send(topic: string, input: ProducerRecord | ProducerRecord[], options?: SendOptions): Promise<RecordMetadata | RecordMetadata[]> {
    if (!Array.isArray(input)) return this.sendOne(topic, input, options);
    let estimates: number[];
    let explicit: number | undefined;
    try {
      explicit = this.checkSend(topic, options);
      estimates = new Array<number>(input.length);
      for (let i = 0; i < input.length; i++) estimates[i] = estimateRecord(input[i], i);
    } catch (err) {
      return Promise.reject(err);
    }
    if (input.length === 0) return Promise.resolve([]);
    const delivery = new Delivery(input.length);
    const promise = new Promise<RecordMetadata[]>(capture);
    delivery.resolve = captured.resolve;
    delivery.reject = captured.reject;
    const state = this.topicState(topic);
    if (explicit !== undefined) {
      for (let i = 0; i < input.length; i++) this.append(topic, explicit, input[i], estimates[i], delivery, i);
    } else if (state.partitions > 0) {
      this.route(state, topic, input, estimates, delivery);
    } else {
      this.waitForMetadata(topic, { records: input, estimates, owner: delivery, sentAt: Date.now() });
    }
    return promise;
  }

  /** Sends everything accumulated so far and resolves once all of it is answered (or failed; failures reject their send() promises). */
  async flush(): Promise<void> {
    // Sends waiting for a partition count join their drafts when it arrives.
    while (this.metadataRequests.size > 0) await Promise.allSettled([...this.metadataRequests.values()]);
    this.acc.closeAll();
    const settled = this.acc.settledAll();
    this.pump();
    await settled;
  }

  /**
   * Flushes, then closes the connection. Later sends reject with ERR_LOG_CLOSED. With
   * the broker away, this waits for the records' delivery timeout at most.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flush();
      this.clearLinger();
      this.disarmExpiry();
      await this.link.close();
    })();
    return this.closing;
  }

  // ---- partitioning and accumulation ------------------------------------------------

  private sendOne(topic: string, record: ProducerRecord, options: SendOptions | undefined): Promise<RecordMetadata> {
    let bytes: number;
    let explicit: number | undefined;
    try {
      explicit = this.checkSend(topic, options);
      bytes = estimateRecord(record, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    const state = this.topicState(topic);
    if (explicit === undefined && state.partitions <= 0) {
      return new Promise((resolve) => this.waitForMetadata(topic, { records: [record], estimates: [bytes], owner: resolve as Resolve, sentAt: Date.now() }));
    }
    let partition: number;
    try {
      partition = explicit ?? this.choosePartition(state, topic, record);
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = new Promise<RecordMetadata>(capture);
    this.append(topic, partition, record, bytes, captured.resolve, 0);
    return promise;
  }

  /** Throws for a closed producer or bad arguments; returns the explicit partition, if any. */
  private checkSend(topic: string, options: SendOptions | undefined): number | undefined {
    if (this.closing !== undefined) throw new CommitLogError(ErrorCode.LOG_CLOSED, `producer for ${this.host}:${this.port} is closed`);
    if (typeof topic !== 'string' || topic.length === 0) throw invalidArgument('topic must be a non-empty string');
    const explicit = options?.partition;
    if (explicit !== undefined && (!Number.isInteger(explicit) || explicit < 0 || explicit > 0xffffffff)) {
      throw invalidArgument(`partition must be a non-negative integer, got ${String(explicit)}`);
    }
    return explicit;
  }

  private topicState(topic: string): TopicState {
    let state = this.topics.get(topic);
    if (state === undefined) {
      state = { partitions: -1, roundRobin: 0 };
      this.topics.set(topic, state);
    }
    return state;
  }

  private route(state: TopicState, topic: string, records: ProducerRecord[], estimates: number[], owner: Owner): void {
    for (let i = 0; i < records.length; i++) {
      let partition: number;
      try {
        partition = this.choosePartition(state, topic, records[i]);
      } catch (err) {
        rejectOwner(owner, err);
        return;
      }
      this.append(topic, partition, records[i], estimates[i], owner, owner instanceof Delivery ? i : 0);
    }
  }

  private choosePartition(state: TopicState, topic: string, record: ProducerRecord): number {
    return choosePartition(this.partitioner, state, topic, state.partitions, record);
  }

  private append(topic: string, partition: number, record: ProducerRecord, bytes: number, owner: Owner, slot: number): void {
    const { created, full } = this.acc.append(topic, partition, record, bytes, owner, slot);
    if (created) {
      this.armLinger();
      // Later drafts expire later: an armed timer already fires early enough.
      if (this.expiryTimer === undefined) this.armExpiry();
    }
    if (full) this.pump();
  }

  /** Arms the timer that sends the oldest open draft once its linger has passed. */
  private armLinger(): void {
    if (this.lingerTimer !== undefined || this.pumpBlocked) return;
    if (this.lingerMs === 0) {
      this.lingerTimer = setImmediate(() => {
        this.lingerTimer = undefined;
        this.pump();
      });
      return;
    }
    const oldest = this.acc.oldestOpen();
    if (oldest === undefined) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.pump();
    }, Math.max(0, oldest.createdAt + this.lingerMs - Date.now()));
  }

  private clearLinger(): void {
    const timer = this.lingerTimer;
    if (timer === undefined) return;
    this.lingerTimer = undefined;
    if (this.lingerMs > 0) clearTimeout(timer as NodeJS.Timeout);
    else clearImmediate(timer as NodeJS.Immediate);
  }

  // ---- sending ------------------------------------------------------------------------

  /**
   * Dispatches what may go: retried batches first, then drafts that are full or past
   * their linger, while the connection, maxInFlight and the socket's write queue allow.
   * Drafts that must wait keep taking records, so batches grow under load.
   */
  private pump(): void {
    if (this.pumpBlocked) return;
    if (this.retryQueue.length === 0 && this.acc.drafts.length === 0) return;
    // A resend waits for every answer still due, so nothing sent after it overtakes it.
    if (this.retryQueue.length > 0 && this.inFlight > 0) return;
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      this.block(new Promise((resolve) => setTimeout(resolve, wait)));
      return;
    }
    const conn = this.link.conn;
    if (conn === undefined || !conn.isOpen) {
      this.block(this.link.connection(), (err) => this.failUndispatched(err));
      return;
    }
    const now = Date.now();
    while (this.inFlight < this.maxInFlight) {
      if (conn.needsDrain) {
        // A failed connection hands its in-flight batches back through onBatchFailed;
        // the next pump reconnects.
        this.block(conn.drained());
        return;
      }
      const draft = this.retryQueue.length > 0 ? this.retryQueue.shift()! : this.acc.takeSendable(now, this.lingerMs);
      if (draft === undefined) break;
      if (draft.buf === undefined && !this.acc.encode(draft)) continue;
      this.dispatch(conn, draft);
    }
    if (this.inFlight < this.maxInFlight && this.acc.drafts.length > 0) this.armLinger();
  }

  /** Pumps again once `until` settles; `onError` handles its rejection (default: pump anyway). */
  private block(until: Promise<unknown>, onError?: (err: unknown) => void): void {
    this.pumpBlocked = true;
    this.clearLinger();
    until.then(
      () => {
        this.pumpBlocked = false;
        this.pump();
      },
      (err: unknown) => {
        this.pumpBlocked = false;
        if (onError !== undefined) onError(err);
        this.pump();
      },
    );
  }

  private dispatch(conn: Connection, draft: Draft): void {
    this.inFlight++;
    draft.inFlight = true;
    const body = { case: 'produce' as const, value: { topic: draft.topic, partition: draft.partition, acks: WIRE_ACKS[this.acks] } };
    if (this.acks === 'none') {
      conn.send(body, draft.buf).then(
        () => this.onBatchDone(draft, -1),
        (err: unknown) => this.onBatchFailed(draft, err),
      );
      return;
    }
    conn.request(body, draft.buf).then(
      (response) => {
        const value = response.header.body?.case === 'produce' ? response.header.body.value : undefined;
        if (value === undefined) {
          this.onBatchFailed(draft, new CommitLogError(ErrorCode.BAD_FRAME, `produce response from ${conn.address} carries no produce body`));
        } else if (value.lastOffset - value.baseOffset !== draft.owners.length - 1) {
          this.onBatchFailed(draft, new CommitLogError(ErrorCode.BAD_FRAME, `produce response for ${draft.owners.length} records has offsets ${value.baseOffset}..${value.lastOffset}`));
        } else {
          this.onBatchDone(draft, value.baseOffset);
        }
      },
      (err: unknown) => this.onBatchFailed(draft, err),
    );
  }

  private onBatchDone(draft: Draft, baseOffset: number): void {
    this.inFlight--;
    draft.inFlight = false;
    if (!draft.expired) {
      resolveRecords(draft, baseOffset);
      this.acc.settle(draft);
    }
    this.pump();
  }

  private onBatchFailed(draft: Draft, err: unknown): void {
    this.inFlight--;
    draft.inFlight = false;
    if (draft.expired) {
      this.pump();
      return;
    }
    if (isRetriable(err)) this.link.lastError = err;
    if (isRetriable(err) && draft.attempts < this.retries) {
      if (Date.now() >= draft.createdAt + this.deliveryTimeoutMs) {
        this.acc.reject(draft, this.timeoutError(draft.topic, draft.partition, draft.owners.length));
        this.pump();
        return;
      }
      draft.attempts++;
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + backoffMs(draft.attempts - 1, this.retry.backoffMs, this.retry.backoffMaxMs));
      let i = this.retryQueue.length;
      while (i > 0 && this.retryQueue[i - 1]!.seq > draft.seq) i--;
      this.retryQueue.splice(i, 0, draft);
      this.pump();
      return;
    }
    if (err instanceof CommitLogError && (err.code === ErrorCode.UNKNOWN_TOPIC || err.code === ErrorCode.UNKNOWN_PARTITION)) {
      // The topic may be gone or recreated: the next send asks for its partitions again.
      const state = this.topics.get(draft.topic);
      if (state !== undefined) state.partitions = -1;
    }
    this.acc.reject(draft, err);
    this.pump();
  }

  // ---- delivery timeout ---------------------------------------------------------------

  /** Arms the timer for the earliest delivery deadline among unsettled drafts and parked sends. */
  private armExpiry(): void {
    this.disarmExpiry();
    let earliest = this.acc.oldestCreatedAt();
    for (const list of this.waiting.values()) for (const w of list) earliest = Math.min(earliest, w.sentAt);
    if (earliest === Infinity) return;
    this.expiryTimer = setTimeout(() => this.expire(), Math.max(0, earliest + this.deliveryTimeoutMs - Date.now()));
    // Only pending work keeps the process alive (a socket, a backoff), never this timer.
    this.expiryTimer.unref();
  }

  private disarmExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /**
   * Fails with ERR_DELIVERY_TIMEOUT whatever is past its deadline: drafts waiting to
   * be sent or resent leave their queues; a draft in flight is rejected now and its
   * answer, when it comes, ignored (it still holds its maxInFlight slot until then).
   */
  private expire(): void {
    this.expiryTimer = undefined;
    const cutoff = Date.now() - this.deliveryTimeoutMs;
    if (this.acc.expire(cutoff, (d) => this.timeoutError(d.topic, d.partition, d.owners.length))) {
      this.retryQueue = this.retryQueue.filter((d) => !d.expired);
    }
    for (const [topic, list] of this.waiting) {
      const [late, onTime] = [list.filter((w) => w.sentAt <= cutoff), list.filter((w) => w.sentAt > cutoff)];
      for (const w of late) rejectOwner(w.owner, this.timeoutError(topic, undefined, w.records.length));
      if (onTime.length === 0) this.waiting.delete(topic);
      else this.waiting.set(topic, onTime);
    }
    this.armExpiry();
  }

  private timeoutError(topic: string, partition: number | undefined, records: number): CommitLogError {
    const where = partition === undefined ? topic : `${topic}/${partition}`;
    const last = this.link.lastError instanceof Error ? `; last failure: ${this.link.lastError.message}` : '';
    return new CommitLogError(
      ErrorCode.DELIVERY_TIMEOUT,
      `${records} record(s) for ${where} not acknowledged within deliveryTimeoutMs (${this.deliveryTimeoutMs} ms)${last}`,
      { topic, partition, cause: this.link.lastError },
    );
  }

  /** The connection could not be (re)established: every batch not yet sent fails. */
  private failUndispatched(err: unknown): void {
    const drafts = [...this.retryQueue, ...this.acc.takeAll()];
    this.retryQueue = [];
    for (const draft of drafts) this.acc.reject(draft, err);
  }

  // ---- metadata -----------------------------------------------------------------------

  private wantsConnection(): boolean {
    return this.acc.drafts.length > 0 || this.retryQueue.length > 0 || this.waiting.size > 0;
  }

  /** Parks a send until the topic's partition count is known (one Metadata request at a time per topic). */
  private waitForMetadata(topic: string, send: WaitingSend): void {
    let list = this.waiting.get(topic);
    if (list === undefined) this.waiting.set(topic, (list = []));
    list.push(send);
    if (this.expiryTimer === undefined) this.armExpiry();
    if (this.metadataRequests.has(topic)) return;
    const request = this.link.partitionCount(topic, () => this.waiting.get(topic) !== undefined).then(
      (count) => {
        this.metadataRequests.delete(topic);
        const state = this.topicState(topic);
        state.partitions = count;
        const waiting = this.waiting.get(topic) ?? [];
        this.waiting.delete(topic);
        for (const w of waiting) this.route(state, topic, w.records, w.estimates, w.owner);
        return count;
      },
      (err: unknown) => {
        this.metadataRequests.delete(topic);
        const waiting = this.waiting.get(topic) ?? [];
        this.waiting.delete(topic);
        for (const w of waiting) rejectOwner(w.owner, err);
        return -1;
      },
    );
    this.metadataRequests.set(topic, request);
  }
}
