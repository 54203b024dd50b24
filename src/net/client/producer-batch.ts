/**
 * The Producer's unit of work: a Draft is the records of one partition on their way to
 * the broker as one batch, with the promise of each record (Kafka's ProducerBatch).
 * This module owns how those promises are kept and settled; when a draft is sent,
 * retried or expired is the Producer's business (producer.ts).
 *
 * Memory: a draft keeps one function per record (a single send's resolve; rejecting
 * goes through it too, see rejectThrough) or one shared Delivery per array send, and
 * drops its record objects once encoded. With tens of thousands of records in flight,
 * what an unanswered record retains is what the GC must copy, so nothing here makes a
 * closure per record.
 *
 * Concurrency: single JS thread; no I/O here.
 */
import { invalidArgument } from '../../errors.js';
import type { ProducerRecord } from '../../log/record.js';
import type { RecordMetadata } from './client-types.js';

export type Resolve = (value: never) => void;
export type Reject = (err: unknown) => void;

/** An array send(): its records may spread over several drafts. */
export class Delivery {
  remaining: number;
  readonly results: RecordMetadata[];
  settled = false;
  resolve!: Resolve;
  reject!: Reject;

  constructor(count: number) {
    this.remaining = count;
    this.results = new Array<RecordMetadata>(count);
  }
}

/** Who waits for a record: a single send's resolve function, or the Delivery of an array send. */
export type Owner = Resolve | Delivery;

/**
 * The records of one partition on their way to the broker as one batch. Open (taking
 * records) until it is full, its linger has passed and the connection has room for it,
 * or flush() closes it; encoded when it is dispatched.
 */
export class Draft {
  records: ProducerRecord[] = [];
  /** Per record: who waits for it. */
  owners: Owner[] = [];
  /** Per record: its index in its Delivery (0 for a single send). */
  slots: number[] = [];
  bytes = 0;
  /** Takes no more records: send as soon as the connection allows. */
  full = false;
  buf: Buffer | undefined;
  attempts = 0;
  /** A request carrying it is unanswered. */
  inFlight = false;
  /** Failed with ERR_DELIVERY_TIMEOUT (its records rejected); an answer still due is ignored. */
  expired = false;
  onSettled: (() => void) | undefined;
  settledPromise: Promise<void> | undefined;
  constructor(readonly seq: number, readonly topic: string, readonly partition: number, readonly createdAt: number) {}
}

/** The records' bytes are all a resend needs once encoded. */
export const NO_RECORDS: ProducerRecord[] = [];

// A promise per record is the API; its executor need not be a closure per record.
// The executor runs synchronously inside `new Promise`, so these are read right after.
export const captured: { resolve: Resolve; reject: Reject } = { resolve: () => undefined, reject: () => undefined };
export function capture(resolve: (value: never) => void, reject: Reject): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/**
 * Rejects a single send through its resolve function, so a draft keeps one function
 * per record, not two.
 */
export function rejectThrough(resolve: Resolve, err: unknown): void {
  const rejected = Promise.reject(err);
  rejected.catch(() => undefined); // observed by the outer promise, which adopts it
  resolve(rejected as never);
}

export function rejectDelivery(delivery: Delivery, err: unknown): void {
  if (delivery.settled) return;
  delivery.settled = true;
  delivery.reject(err);
}

/** Rejects one owner: a single send, or the whole array send it belongs to. */
export function rejectOwner(owner: Owner, err: unknown): void {
  if (typeof owner === 'function') rejectThrough(owner, err);
  else rejectDelivery(owner, err);
}

/** Resolves every record of the draft: offset baseOffset + index, or -1 for every one when baseOffset < 0. */
export function resolveRecords(draft: Draft, baseOffset: number): void {
  const { owners, slots, partition } = draft;
  const n = owners.length;
  for (let i = 0; i < n; i++) {
    const meta: RecordMetadata = { partition, offset: baseOffset < 0 ? -1 : baseOffset + i };
    const owner = owners[i]!;
    if (typeof owner === 'function') {
      owner(meta as never);
    } else if (!owner.settled) {
      owner.results[slots[i]!] = meta;
      if (--owner.remaining === 0) {
        owner.settled = true;
        owner.resolve(owner.results as never);
      }
    }
  }
}

export function rejectRecords(draft: Draft, err: unknown): void {
  for (const owner of draft.owners) rejectOwner(owner, err);
}

/** Per-record bytes a batch adds besides key, value and headers (varints, attributes). */
const RECORD_OVERHEAD_BYTES = 20;

/** Checks a record's field types and estimates its encoded bytes (strings counted as one byte a character). */
export function estimateRecord(record: ProducerRecord, index: number): number {
  if (typeof record !== 'object' || record === null) throw invalidArgument(`record ${index} must be an object, got ${record === null ? 'null' : typeof record}`);
  let bytes = RECORD_OVERHEAD_BYTES + fieldBytes(record.value, 'value', index, false) + fieldBytes(record.key, 'key', index, true);
  const headers = record.headers;
  if (headers != null) {
    if (typeof headers !== 'object') throw invalidArgument(`headers of record ${index} must be an object or a list`);
    if (Array.isArray(headers)) {
      for (const h of headers) bytes += 4 + (typeof h?.key === 'string' ? h.key.length : 0) + fieldBytes(h?.value, 'a header value', index, false);
    } else {
      for (const key in headers) bytes += 4 + key.length + fieldBytes(headers[key], 'a header value', index, false);
    }
  }
  const ts = record.timestamp;
  if (ts != null && (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0)) {
    throw invalidArgument(`timestamp of record ${index} must be a non-negative integer of ms since the epoch, got ${String(ts)}`);
  }
  return bytes;
}

function fieldBytes(v: unknown, what: string, index: number, optional: boolean): number {
  if (typeof v === 'string') return v.length;
  if (v instanceof Uint8Array) return v.byteLength;
  if (v === null || (optional && v === undefined)) return 0;
  throw invalidArgument(`${what} of record ${index} must be a Buffer, a string or null, got ${v === undefined ? 'undefined' : typeof v}`);
}
