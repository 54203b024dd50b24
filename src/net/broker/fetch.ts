/**
 * The two fetch handlers: Fetch (one partition, the original request) and MultiFetch
 * (many partitions in one long poll, Kafka's Fetch). Both answer with held slices of
 * segments that server.ts sends with sendfile after the response header, one range
 * after the other, and releases once sent (or once the connection is gone).
 *
 * Long polls never spin: they wait on CommitLog.waitForData / waitForAny, which wake
 * on append, and end early when the connection closes (ctx.signal). A wait longer
 * than the broker's cap (BrokerOptions.maxWaitMs) is clamped to it and counted.
 */
import { CommitLogError, ErrorCode } from '../../errors.js';
import type { LogSlice } from '../../log/partition-log.js';
import type { FetchRequest, MultiFetchPartitionResult, MultiFetchRequest, ResponseBody } from '../protocol/messages.js';
import { errorFields, type HandlerContext, type Reply } from './handlers.js';

/** A fetch that leaves max_bytes at 0 gets up to this much. */
export const DEFAULT_FETCH_MAX_BYTES = 1024 * 1024;
/** A MultiFetch that leaves its overall max_bytes at 0 gets up to this much (Kafka's fetch.max.bytes). */
export const DEFAULT_MULTI_FETCH_MAX_BYTES = 50 * 1024 * 1024;
/** Partitions one MultiFetch may name. */
export const MAX_MULTI_FETCH_PARTITIONS = 10_000;

/** The request's wait, clamped to the broker's cap (counted in stats when it was). */
function clampWait(ctx: HandlerContext, requested: number): number {
  if (requested <= ctx.fetchLimits.maxWaitMs) return requested;
  ctx.fetchLimits.clamped();
  return ctx.fetchLimits.maxWaitMs;
}

/**
 * Reads from `offset`; when less than min_bytes (at least one byte) is there and
 * max_wait_ms allows, waits for appends (no polling: waitForData wakes on append)
 * and reads again, until enough arrived, the wait ran out or `signal` aborted.
 */
export async function fetch(ctx: HandlerContext, req: FetchRequest): Promise<Reply> {
  const { log, signal } = ctx;
  const { topic, partition, offset } = req;
  const maxBytes = req.maxBytes > 0 ? req.maxBytes : DEFAULT_FETCH_MAX_BYTES;
  const minBytes = Math.min(Math.max(1, req.minBytes), maxBytes);
  const deadline = performance.now() + clampWait(ctx, req.maxWaitMs);
  // A cold sealed segment's open and the batch header lookup read on the pool first.
  await log.partition(topic, partition).prepareRead(offset);
  let slice = log.readSlice(topic, partition, offset, maxBytes);
  try {
    while ((slice === null || slice.length < minBytes) && !signal.aborted) {
      const timeoutMs = Math.ceil(deadline - performance.now());
      if (timeoutMs <= 0) break;
      const had = slice?.length ?? 0;
      const from = slice === null ? offset : log.latestOffset(topic, partition);
      // A closed or deleted partition rejects the wait; the read below reports it properly.
      const arrived = await log.waitForData(topic, partition, from, { timeoutMs, signal }).catch(() => true);
      if (!arrived) break;
      slice?.release();
      slice = null;
      slice = log.readSlice(topic, partition, offset, maxBytes);
      // No growth although new data arrived: the range is capped (max_bytes or the
      // segment's end), so waiting longer cannot reach min_bytes.
      if (slice !== null && slice.length === had) break;
    }
    const body: ResponseBody = {
      case: 'fetch',
      value: { highWatermark: log.latestOffset(topic, partition), logStartOffset: log.earliestOffset(topic, partition) },
    };
    const reply: Reply = { kind: 'fetch', body, slices: slice === null ? [] : [slice] };
    slice = null;
    return reply;
  } finally {
    slice?.release();
  }
}

interface Entry {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  slice: LogSlice | null;
  error: { errorCode: string; errorMessage: string } | null;
}

/**
 * MultiFetch: reads every partition (each up to its max_bytes, all together up to the
 * overall max_bytes, except that the first partition with data always gets its first
 * batch), and when fewer than min_bytes came back, no partition failed and the wait
 * allows, waits until any partition grows and reads again. A partition's error is its
 * own result; the others are answered as usual.
 */
export async function multiFetch(ctx: HandlerContext, req: MultiFetchRequest): Promise<Reply> {
  const { log, signal } = ctx;
  if (req.partitions.length === 0) throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, 'multiFetch names no partitions');
  if (req.partitions.length > MAX_MULTI_FETCH_PARTITIONS) {
    throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `multiFetch names ${req.partitions.length} partitions, at most ${MAX_MULTI_FETCH_PARTITIONS} are allowed`);
  }
  const seen = new Set<string>();
  for (const p of req.partitions) {
    const key = `${p.topic}\u0000${p.partition}`;
    if (seen.has(key)) throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `multiFetch names ${p.topic}/${p.partition} twice`, { topic: p.topic, partition: p.partition });
    seen.add(key);
  }
  const totalMax = req.maxBytes > 0 ? req.maxBytes : DEFAULT_MULTI_FETCH_MAX_BYTES;
  const minBytes = Math.min(Math.max(1, req.minBytes), totalMax);
  const maxWaitMs = clampWait(ctx, req.maxWaitMs);
  const deadline = performance.now() + maxWaitMs;
  const entries: Entry[] = req.partitions.map((p) => ({
    topic: p.topic, partition: p.partition, offset: p.offset, maxBytes: p.maxBytes > 0 ? p.maxBytes : DEFAULT_FETCH_MAX_BYTES, slice: null, error: null,
  }));
  const releaseAll = (): void => {
    for (const e of entries) {
      e.slice?.release();
      e.slice = null;
    }
  };
  try {
    // Cold sealed segments are opened and their batch headers read on the pool first.
    await Promise.all(entries.map((e) => {
      try {
        return log.partition(e.topic, e.partition).prepareRead(e.offset).catch(() => undefined);
      } catch {
        return undefined; // the read below reports the error
      }
    }));
    let total = readAll(ctx, entries, totalMax);
    let ready = 0;
    while (total < minBytes && !signal.aborted && !entries.some((e) => e.error !== null)) {
      const timeoutMs = Math.ceil(deadline - performance.now());
      if (timeoutMs <= 0) break;
      // Each partition waits past what it has: its offset, or its high watermark when
      // some of its data is already there.
      const wanted = entries.map((e) => ({ topic: e.topic, partition: e.partition, offset: e.slice === null ? e.offset : log.latestOffset(e.topic, e.partition) }));
      ready = await log.waitForAny(wanted, { timeoutMs, signal });
      if (ready < 0) break;
      releaseAll();
      const before = total;
      total = readAll(ctx, entries, totalMax);
      // Nothing grew although a partition did: its range is capped, waiting cannot help.
      if (total === before && total > 0) break;
    }
    const partitions: MultiFetchPartitionResult[] = entries.map((e) => result(ctx, e));
    const sent = entries.filter((e) => e.slice !== null);
    const reply: Reply = { kind: 'fetch', body: { case: 'multiFetch', value: { partitions, maxWaitMs } }, slices: sent.map((e) => e.slice!), topics: sent.map((e) => e.topic) };
    for (const e of entries) e.slice = null; // owned by the reply now
    return reply;
  } finally {
    releaseAll();
  }
}

/** Reads every entry within the caps; returns the payload bytes. */
function readAll(ctx: HandlerContext, entries: Entry[], totalMax: number): number {
  let total = 0;
  for (const e of entries) {
    e.error = null;
    const budget = Math.min(e.maxBytes, totalMax - total);
    // Past the overall cap, only the first partition with data still gets its first batch.
    if (budget <= 0 && total > 0) continue;
    try {
      e.slice = ctx.log.readSlice(e.topic, e.partition, e.offset, Math.max(1, budget));
    } catch (err) {
      e.error = errorFields(err);
      continue;
    }
    if (e.slice !== null) total += e.slice.length;
  }
  return total;
}

function result(ctx: HandlerContext, e: Entry): MultiFetchPartitionResult {
  const out: MultiFetchPartitionResult = {
    topic: e.topic, partition: e.partition, errorCode: '', errorMessage: '', highWatermark: 0, logStartOffset: 0, bytes: e.slice?.length ?? 0,
  };
  if (e.error !== null) {
    out.errorCode = e.error.errorCode;
    out.errorMessage = e.error.errorMessage;
  }
  try {
    out.highWatermark = ctx.log.latestOffset(e.topic, e.partition);
    out.logStartOffset = ctx.log.earliestOffset(e.topic, e.partition);
  } catch (err) {
    // The partition is gone (or never was): its error says so.
    if (out.errorCode === '') ({ errorCode: out.errorCode, errorMessage: out.errorMessage } = errorFields(err));
  }
  return out;
}
