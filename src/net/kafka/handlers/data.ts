/**
 * Kafka's data path: Produce (0, v3-8) and Fetch (1, v4-12), on the CommitLog.
 *
 * Produce: each partition's records are one or more RecordBatch v2 (magic 2), stored
 * as they came (compressed ones too) by CommitLog.appendBatch, which checks the CRC,
 * the structure and the record count and assigns the base offset in the log (the
 * base offset and leader epoch lie outside the CRC). Every append starts before the
 * first await, so pipelined produces get offsets in request order. acks 0: nothing is
 * answered (failures are logged); acks 1: answered once appended (under the log's
 * `sync` flush policy that already means flushed); acks -1: also flushed to disk.
 *
 * Fetch: per partition, the whole batches from the one holding fetch_offset, cut at
 * batch boundaries by partition_max_bytes and the response's max_bytes, except that
 * the first batch of the first partition with data is sent even when larger (KIP-74).
 * The batches are not read: each becomes an ExternalRecords placeholder whose source
 * is the held LogSlice, sent by the listener with sendfile and released after.
 * fetch_offset below the log start or past the high watermark is OFFSET_OUT_OF_RANGE;
 * at the high watermark the request long-polls (max_wait_ms, min_bytes), woken by
 * appends (CommitLog.waitForData), never by polling. Fetch sessions (KIP-227) are not
 * kept: session id 0 in every answer (full fetches), and a request naming a session
 * gets FETCH_SESSION_ID_NOT_FOUND so the client falls back to full fetches.
 */
import { CommitLogError, ErrorCode } from '../../../errors.js';
import type { LogSlice } from '../../../log/partition-log.js';
import type { ExternalRecords, Message } from '../codec.js';
import { KafkaError, kafkaErrorCode } from '../error-codes.js';
import { EMPTY, int, list, str } from './common.js';
import type { KafkaHandler, KafkaHandlerContext } from './types.js';

export const PRODUCE = 0;
export const FETCH = 1;

/** Kafka's FETCH_SESSION_ID_NOT_FOUND. */
const FETCH_SESSION_ID_NOT_FOUND = 70;
/** Offset of batchLength in a RecordBatch header; the batch is 12 + batchLength bytes. */
const BATCH_LENGTH_POS = 8;
/** A long poll is never longer than this, whatever max_wait_ms says. */
export const MAX_FETCH_WAIT_MS = 5 * 60 * 1000;

/** The source of a fetch response's ExternalRecords: one held range of a segment. */
export type FetchRecordSource = LogSlice;

interface PartitionAppend {
  index: number;
  written: Promise<{ baseOffset: number }>;
}

/** Splits a partition's records into its batches by their length fields (whole batches only). */
function batchesOf(records: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < records.length) {
    if (records.length - at < BATCH_LENGTH_POS + 4) throw new CommitLogError(ErrorCode.CORRUPT_BATCH, `truncated batch header at position ${at}`, { position: at });
    const size = 12 + records.readInt32BE(at + BATCH_LENGTH_POS);
    if (size < 12 || at + size > records.length) throw new CommitLogError(ErrorCode.CORRUPT_BATCH, `batch at position ${at} claims ${size} bytes, ${records.length - at} left`, { position: at });
    out.push(records.subarray(at, at + size));
    at += size;
  }
  return out;
}

/** Appends every batch of one partition (synchronously started); resolves with the first batch's base offset. */
function appendPartition(ctx: KafkaHandlerContext, topic: string, partition: number, records: unknown): Promise<{ baseOffset: number }> {
  try {
    if (!(records instanceof Uint8Array) || records.length === 0) {
      throw new CommitLogError(ErrorCode.CORRUPT_BATCH, `produce to ${topic}/${partition} carries no records`, { topic, partition });
    }
    const buf = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
    const appends = batchesOf(buf).map((b) => ctx.log.appendBatch(topic, partition, b));
    // Every append has started; one failing makes the partition's answer that failure.
    return Promise.all(appends).then((results) => ({ baseOffset: results[0].baseOffset }));
  } catch (err) {
    return Promise.reject(err);
  }
}

export const handleProduce: KafkaHandler = async (ctx, request, version) => {
  const acks = int(request.acks, 1);
  const topics = list(request.topicData);
  const badAcks = acks !== 0 && acks !== 1 && acks !== -1;
  const planned = topics.map((t) => {
    const name = str(t.name);
    const partitions: PartitionAppend[] = list(t.partitionData).map((p) => {
      const index = int(p.index);
      const written = badAcks
        ? Promise.reject(new CommitLogError(ErrorCode.INVALID_ARGUMENT, `acks must be -1, 0 or 1, got ${acks}`))
        : appendPartition(ctx, name, index, p.records);
      written.catch(() => undefined); // observed below
      return { index, written };
    });
    return { name, partitions };
  });
  const responses = await Promise.all(planned.map(async ({ name, partitions }) => ({
    name,
    partitionResponses: await Promise.all(partitions.map(async ({ index, written }) => {
      try {
        const { baseOffset } = await written;
        if (acks === -1) await ctx.log.partition(name, index).flush();
        return { index, errorCode: 0, baseOffset, logAppendTimeMs: -1, logStartOffset: logStart(ctx, name, index), recordErrors: [], errorMessage: null };
      } catch (err) {
        const errorCode = badAcks ? KafkaError.INVALID_REQUIRED_ACKS : kafkaErrorCode(err);
        if (acks === 0) ctx.logger.info({ connection: ctx.connectionId, topic: name, partition: index, err: String(err) }, 'Kafka produce with acks 0 failed');
        return { index, errorCode, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [], errorMessage: version >= 8 ? messageOf(err) : null };
      }
    })),
  })));
  if (acks === 0) return null;
  return { responses, throttleTimeMs: 0 };
};

function logStart(ctx: KafkaHandlerContext, topic: string, partition: number): number {
  try {
    return ctx.log.earliestOffset(topic, partition);
  } catch {
    return -1;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface FetchPartitionPlan {
  topic: string;
  partition: number;
  fetchOffset: number;
  maxBytes: number;
}

interface FetchPartitionResult {
  errorCode: number;
  highWatermark: number;
  logStartOffset: number;
  slice: LogSlice | null;
}

/** One read of one partition; never throws (errors become the partition's code). */
function readPartition(ctx: KafkaHandlerContext, p: FetchPartitionPlan, budget: number, first: boolean): FetchPartitionResult {
  const { log } = ctx;
  let hw: number;
  let start: number;
  try {
    hw = log.latestOffset(p.topic, p.partition);
    start = log.earliestOffset(p.topic, p.partition);
  } catch (err) {
    return { errorCode: kafkaErrorCode(err), highWatermark: -1, logStartOffset: -1, slice: null };
  }
  if (p.fetchOffset < start || p.fetchOffset > hw) return { errorCode: KafkaError.OFFSET_OUT_OF_RANGE, highWatermark: hw, logStartOffset: start, slice: null };
  if (p.fetchOffset === hw || (!first && budget <= 0)) return { errorCode: 0, highWatermark: hw, logStartOffset: start, slice: null };
  const limit = Math.max(1, Math.min(p.maxBytes, first ? Math.max(budget, 1) : budget));
  let slice: LogSlice | null;
  try {
    slice = log.readSlice(p.topic, p.partition, p.fetchOffset, limit);
  } catch (err) {
    return { errorCode: kafkaErrorCode(err), highWatermark: hw, logStartOffset: start, slice: null };
  }
  // Only the first batch of the response may exceed the limits.
  if (slice !== null && !first && slice.length > limit) {
    slice.release();
    slice = null;
  }
  return { errorCode: 0, highWatermark: hw, logStartOffset: start, slice };
}

/** Reads every partition once, within the response budget. */
function readAll(ctx: KafkaHandlerContext, plans: FetchPartitionPlan[], maxBytes: number): { results: FetchPartitionResult[]; bytes: number; failed: boolean } {
  let budget = maxBytes;
  let bytes = 0;
  let failed = false;
  const results = plans.map((p) => {
    const r = readPartition(ctx, p, budget, bytes === 0);
    if (r.slice !== null) {
      bytes += r.slice.length;
      budget -= r.slice.length;
    }
    if (r.errorCode !== 0) failed = true;
    return r;
  });
  return { results, bytes, failed };
}

function releaseAll(results: FetchPartitionResult[]): void {
  for (const r of results) r.slice?.release();
}

/** Resolves when any of the partitions may have data past its fetch offset, on timeout, or on abort. */
async function waitForAny(ctx: KafkaHandlerContext, plans: FetchPartitionPlan[], timeoutMs: number): Promise<void> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race(plans.map((p) => ctx.log.waitForData(p.topic, p.partition, p.fetchOffset, { timeoutMs, signal: stop.signal }).catch(() => true)));
  } finally {
    stop.abort(); // the other waits end now, not at their timeout
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

export const handleFetch: KafkaHandler = async (ctx, request, version) => {
  const sessionId = int(request.sessionId, 0);
  if (version >= 7 && sessionId !== 0) {
    return { throttleTimeMs: 0, errorCode: FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] };
  }
  const plans: FetchPartitionPlan[] = [];
  for (const t of list(request.topics)) {
    for (const p of list(t.partitions)) {
      plans.push({ topic: str(t.topic), partition: int(p.partition), fetchOffset: int(p.fetchOffset), maxBytes: int(p.partitionMaxBytes, 0) });
    }
  }
  const maxBytes = Math.max(1, int(request.maxBytes, 0x7fffffff));
  const minBytes = Math.max(0, int(request.minBytes, 0));
  const maxWaitMs = Math.min(MAX_FETCH_WAIT_MS, Math.max(0, int(request.maxWaitMs, 0)));
  const deadline = performance.now() + maxWaitMs;
  // What the reads would fault in on the event loop (a cold sealed segment's indexes,
  // the batch header lookup) is read on the thread pool first, as on the native path.
  await Promise.all(plans.map((p) => {
    try {
      return ctx.log.partition(p.topic, p.partition).prepareRead(p.fetchOffset);
    } catch {
      return undefined; // an unknown topic or partition: the read reports it
    }
  }));
  let read = readAll(ctx, plans, maxBytes);
  while (plans.length > 0 && !read.failed && read.bytes < Math.max(1, minBytes) && minBytes > 0 && !ctx.signal.aborted) {
    const timeoutMs = Math.ceil(deadline - performance.now());
    if (timeoutMs <= 0) break;
    const had = read.bytes;
    releaseAll(read.results);
    // Wait from where each partition stands now: its fetch offset, or past what was read.
    await waitForAny(ctx, plans.map((p, i) => ({ ...p, fetchOffset: Math.max(p.fetchOffset, read.results[i].highWatermark) })), timeoutMs);
    read = readAll(ctx, plans, maxBytes);
    // Capped (max_bytes, a segment's end): waiting longer cannot reach min_bytes.
    if (read.bytes > 0 && read.bytes === had) break;
  }
  const results = read.results;
  for (const r of results) {
    const slice = r.slice;
    if (slice !== null) ctx.defer(() => slice.release());
  }
  const byTopic = new Map<string, Message[]>();
  const order: string[] = [];
  plans.forEach((p, i) => {
    const r = results[i];
    let parts = byTopic.get(p.topic);
    if (parts === undefined) {
      byTopic.set(p.topic, (parts = []));
      order.push(p.topic);
    }
    const records: Buffer | ExternalRecords = r.slice === null ? EMPTY : { external: true, byteLength: r.slice.length, source: r.slice };
    parts.push({
      partitionIndex: p.partition,
      errorCode: r.errorCode,
      highWatermark: r.highWatermark,
      lastStableOffset: r.highWatermark,
      logStartOffset: r.logStartOffset,
      abortedTransactions: [],
      preferredReadReplica: -1,
      records,
    });
  });
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: order.map((topic) => ({ topic, partitions: byTopic.get(topic)! })),
  };
};
