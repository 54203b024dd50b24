/**
 * The record browser's pages: a bounded read of one partition from an offset (or the
 * first offset at or after a time), each key, value and header rendered for a person:
 * JSON pretty-printed when the bytes parse as JSON, text when they are valid UTF-8
 * without control characters (tab, CR and LF allowed), hex otherwise.
 *
 * Bounds: at most MAX_PAGE_RECORDS records per page, at most READ_BUDGET_BYTES of
 * batches read for one page, at most SHOWN_BYTES of each key, value or header shown
 * (the rest is cut, with `truncated` set and the full size given). The range is
 * prefetched on the thread pool first (CommitLog.prefetch), so a cold page does not
 * fault on the event loop.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import type { CommitLog } from '../log/commit-log.js';
import type { LogRecord } from '../log/record.js';
import { badRequest } from './api-error.js';

export const DEFAULT_PAGE_RECORDS = 20;
export const MAX_PAGE_RECORDS = 500;
const READ_BUDGET_BYTES = 8 * 1024 * 1024;
const READ_STEP_BYTES = 1024 * 1024;
const SHOWN_BYTES = 64 * 1024;

export interface RenderedBytes {
  /** 'null' for an absent key or value. */
  encoding: 'json' | 'text' | 'hex' | 'null';
  /** The JSON pretty-printed, the text, or hex pairs separated by spaces. */
  text: string;
  sizeBytes: number;
  truncated: boolean;
}

export interface RenderedRecord {
  offset: number;
  timestamp: number;
  /** ISO-8601 of timestamp. */
  time: string;
  key: RenderedBytes;
  value: RenderedBytes;
  headers: { key: string; value: RenderedBytes }[];
}

export interface RecordPage {
  topic: string;
  partition: number;
  /** The first offset asked for (after resolving a time). */
  offset: number;
  /** Set when the page was asked by time. */
  time: string | null;
  records: RenderedRecord[];
  /** Where the next page starts (one past the last record shown). */
  nextOffset: number;
  /** Where the previous page starts; null at the partition's start. */
  prevOffset: number | null;
  earliestOffset: number;
  /** The high watermark: one past the last record readers see. */
  latestOffset: number;
  limit: number;
}

export interface PageQuery {
  partition: number;
  offset?: number;
  /** ms since epoch. */
  time?: number;
  limit: number;
}

/** Parses `partition`, `offset` | `time` and `limit` from a query string; ERR_INVALID_ARGUMENT otherwise. */
export function parsePageQuery(q: URLSearchParams): PageQuery {
  const partition = intParam(q, 'partition', 0);
  const limit = intParam(q, 'limit', DEFAULT_PAGE_RECORDS);
  if (limit < 1 || limit > MAX_PAGE_RECORDS) throw badRequest(`limit must be an integer in [1, ${MAX_PAGE_RECORDS}], got ${limit}`);
  const time = q.get('time');
  if (q.has('offset') && time !== null) throw badRequest('give offset or time, not both');
  if (time !== null) {
    const ms = parseTime(time);
    return { partition, time: ms, limit };
  }
  return { partition, offset: q.has('offset') ? intParam(q, 'offset', 0) : undefined, limit };
}

function intParam(q: URLSearchParams, name: string, fallback: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw badRequest(`${name} must be a non-negative integer, got ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}

/** An ISO-8601 date-time (or date) to ms since epoch. */
export function parseTime(text: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) throw badRequest(`time must be an ISO-8601 date-time such as 2026-01-31T12:00:00Z, got ${JSON.stringify(text.slice(0, 40))}`);
  return ms;
}

/**
 * One page of `topic`'s partition. Without offset or time: the last `limit` records.
 * An offset below the log start or past the log end is ERR_OFFSET_OUT_OF_RANGE (from
 * the log); a time past the last record gives an empty page at the latest offset.
 */
export async function readPage(log: CommitLog, topic: string, q: PageQuery): Promise<RecordPage> {
  const earliest = log.earliestOffset(topic, q.partition);
  const latest = log.latestOffset(topic, q.partition);
  let offset: number;
  if (q.time !== undefined) offset = log.offsetForTimestamp(topic, q.partition, q.time) ?? latest;
  else if (q.offset !== undefined) offset = q.offset;
  else offset = Math.max(earliest, latest - q.limit);
  const end = log.logEndOffset(topic, q.partition);
  if (offset < earliest || offset > end) {
    throw new CommitLogError(ErrorCode.OFFSET_OUT_OF_RANGE, `offset ${offset} is out of range: partition ${q.partition} of ${topic} holds offsets [${earliest}, ${end})`, { topic, partition: q.partition, offset });
  }
  // Written but not yet visible (under sync, not yet flushed): start at what readers see.
  if (offset > latest) offset = latest;
  const records: RenderedRecord[] = [];
  let next = offset;
  let budget = READ_BUDGET_BYTES;
  while (records.length < q.limit && next < latest && budget > 0) {
    const maxBytes = Math.min(READ_STEP_BYTES, budget);
    await log.prefetch(topic, q.partition, next, { maxBytes });
    // Read after the await: retention may have moved the start meanwhile.
    const batch: LogRecord[] = log.read(topic, q.partition, next, { maxBytes });
    if (batch.length === 0) break;
    budget -= batch.reduce((n, r) => n + (r.key?.length ?? 0) + (r.value?.length ?? 0) + 64, 0);
    for (const r of batch) {
      if (r.offset < next) continue;
      if (records.length === q.limit) break;
      records.push(renderRecord(r));
      next = r.offset + 1;
    }
  }
  return {
    topic,
    partition: q.partition,
    offset,
    time: q.time === undefined ? null : new Date(q.time).toISOString(),
    records,
    nextOffset: next,
    prevOffset: offset <= earliest ? null : Math.max(earliest, offset - q.limit),
    earliestOffset: earliest,
    latestOffset: latest,
    limit: q.limit,
  };
}

export function renderRecord(r: LogRecord): RenderedRecord {
  return {
    offset: r.offset,
    timestamp: r.timestamp,
    time: Number.isFinite(r.timestamp) && Math.abs(r.timestamp) < 8.64e15 ? new Date(r.timestamp).toISOString() : String(r.timestamp),
    key: renderBytes(r.key),
    value: renderBytes(r.value),
    headers: r.headers.map((h) => ({ key: h.key, value: renderBytes(h.value) })),
  };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** JSON pretty-printed, UTF-8 text or hex; copies what it keeps (the input may be a view of a mapping). */
export function renderBytes(b: Buffer | null): RenderedBytes {
  if (b === null) return { encoding: 'null', text: '', sizeBytes: 0, truncated: false };
  if (!Buffer.isBuffer(b)) throw invalidArgument('bytes must be a Buffer');
  const truncated = b.length > SHOWN_BYTES;
  const shown = truncated ? b.subarray(0, SHOWN_BYTES) : b;
  let text: string | null = null;
  try {
    text = decoder.decode(shown);
  } catch {
    // not UTF-8 (or cut inside a character: then shown as hex too)
  }
  if (text !== null && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    if (!truncated && /^\s*[[{"\d\-tfn]/.test(text)) {
      try {
        return { encoding: 'json', text: JSON.stringify(JSON.parse(text), null, 2), sizeBytes: b.length, truncated };
      } catch {
        // not JSON: shown as text
      }
    }
    return { encoding: 'text', text, sizeBytes: b.length, truncated };
  }
  const hex = shown.toString('hex').replace(/(..)(?!$)/g, '$1 ');
  return { encoding: 'hex', text: hex, sizeBytes: b.length, truncated };
}
