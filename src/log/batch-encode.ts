/**
 * The RecordBatch v2 encoder (layout in batch-format.ts): two passes over the records,
 * measure (byte lengths cached in module-level scratch arrays, no per-record
 * allocation), then write into one exact-size Buffer. Synchronous, no state kept
 * between calls (the scratch is refilled by each measure), so any thread may use it.
 */
import { crc32c } from '../native.js';
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import type { ProducerRecord, RecordHeader } from './record.js';
import {
  ATTRIBUTES_POS, BASE_OFFSET_POS, BASE_SEQUENCE_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, CRC_POS, FIRST_TIMESTAMP_POS,
  LAST_OFFSET_DELTA_POS, LEADER_EPOCH_POS, LOG_OVERHEAD, MAGIC, MAGIC_POS, MAX_BATCH_LENGTH, MAX_TIMESTAMP_POS,
  PRODUCER_EPOCH_POS, PRODUCER_ID_POS, RECORD_COUNT_POS, describe, ensureInteger, writeInt64,
} from './batch-format.js';
import { CODEC_NONE, compress, codecOf, type CompressionName } from './compression.js';

export interface EncodeOptions {
  baseOffset?: number;
  /** The batch's timestamp: the default of records without one. Default Date.now(). */
  timestamp?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
  /**
   * Compress the records section with a Kafka codec ('gzip', 'snappy', 'lz4', 'zstd',
   * or its number 1-4; compression.ts says the forms written). Default 'none'.
   */
  compression?: CompressionName | number;
}

// ---------------------------------------------------------------- varints

/** Bytes of the zigzag varint of an int32 n. */
function sizeOfVarint(n: number): number {
  const u = ((n << 1) ^ (n >> 31)) >>> 0;
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

/** Bytes of the zigzag varlong of a safe integer n. */
function sizeOfVarlong(n: number): number {
  if (n >= -0x20000000 && n < 0x20000000) return sizeOfVarint(n);
  let u = n >= 0 ? n * 2 : -n * 2 - 1;
  let bytes = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 0x80);
    bytes++;
  }
  return bytes;
}

function writeVarint(b: Buffer, p: number, n: number): number {
  let u = ((n << 1) ^ (n >> 31)) >>> 0;
  while (u >= 0x80) {
    b[p++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  b[p++] = u;
  return p;
}

function writeVarlong(b: Buffer, p: number, n: number): number {
  if (n >= -0x20000000 && n < 0x20000000) return writeVarint(b, p, n);
  let u = n >= 0 ? n * 2 : -n * 2 - 1;
  while (u >= 0x80) {
    b[p++] = (u % 0x80) | 0x80;
    u = Math.floor(u / 0x80);
  }
  b[p++] = u;
  return p;
}

// ---------------------------------------------------------------- encoding

// Scratch filled by measure() and consumed by the write pass of the same call.
let recordLengths = new Int32Array(3 * 1024); // per record: key bytes, value bytes (-1 = null), body bytes
let recordTimestamps = new Float64Array(1024);
let headerLengths = new Int32Array(1024); // per header: key bytes, value bytes
let headerSlot = 0; // next free (measure) or next unread (write) slot of headerLengths
let firstTimestamp = 0;
let maxTimestamp = 0;

/** UTF-8 bytes of a string; a JS scan beats the native call for short ASCII keys. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n > 24) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return n;
}

/** UTF-8 bytes of a string, byteLength of a Buffer, -1 for null. */
function byteLengthOf(v: unknown, what: string, index: number): number {
  if (typeof v === 'string') return utf8Length(v);
  if (v instanceof Uint8Array) return v.byteLength;
  if (v === null) return -1;
  throw invalidArgument(`${what} of record ${index} must be a Buffer, a string or null, got ${describe(v)}`);
}

function ensureHeaderScratch(needed: number): void {
  if (needed <= headerLengths.length) return;
  const grown = new Int32Array(Math.max(needed, headerLengths.length * 2));
  grown.set(headerLengths);
  headerLengths = grown;
}

/** Measures one record's headers (a list or an object) into headerLengths; returns their bytes including the count. */
function measureHeaders(headers: unknown, index: number): number {
  const list = Array.isArray(headers) ? (headers as RecordHeader[]) : null;
  if (list === null && (typeof headers !== 'object' || headers === null)) {
    throw invalidArgument(`headers of record ${index} must be an object or a list, got ${describe(headers)}`);
  }
  const keys = list === null ? Object.keys(headers as object) : null;
  const count = list === null ? keys!.length : list.length;
  let h = headerSlot;
  ensureHeaderScratch(h + 2 * count);
  let bytes = sizeOfVarint(count);
  for (let j = 0; j < count; j++) {
    let key: string;
    let value: unknown;
    if (list === null) {
      key = keys![j];
      value = (headers as Record<string, unknown>)[key];
    } else {
      const header = list[j];
      if (typeof header !== 'object' || header === null || typeof header.key !== 'string') {
        throw invalidArgument(`header ${j} of record ${index} must be { key: string, value }, got ${describe(header)}`);
      }
      key = header.key;
      value = header.value;
    }
    const k = utf8Length(key);
    const v = byteLengthOf(value, `header ${JSON.stringify(key)}`, index);
    headerLengths[h++] = k;
    headerLengths[h++] = v;
    bytes += sizeOfVarint(k) + k + sizeOfVarint(v) + (v > 0 ? v : 0);
  }
  headerSlot = h;
  return bytes;
}

/** Pass one: fills the scratch arrays and returns the batch's exact size in bytes. */
function measure(records: ProducerRecord[], batchTimestamp: number): number {
  if (!Array.isArray(records) || records.length === 0) {
    throw invalidArgument(`a batch needs at least one record, got ${Array.isArray(records) ? 'an empty list' : describe(records)}`);
  }
  ensureTimestamp(batchTimestamp, 'the batch timestamp');
  const n = records.length;
  if (recordTimestamps.length < n) {
    const capacity = Math.max(n, recordTimestamps.length * 2);
    recordTimestamps = new Float64Array(capacity);
    recordLengths = new Int32Array(3 * capacity);
  }
  let minTs = Infinity;
  let maxTs = -Infinity;
  headerSlot = 0;
  for (let i = 0; i < n; i++) {
    const record = records[i];
    if (typeof record !== 'object' || record === null) throw invalidArgument(`record ${i} must be an object, got ${describe(record)}`);
    const key = record.key;
    const k = key === undefined ? -1 : byteLengthOf(key, 'key', i);
    const value = record.value;
    if (value === undefined) throw invalidArgument(`value of record ${i} must be a Buffer, a string or null, got undefined`);
    const v = byteLengthOf(value, 'value', i);
    let ts = record.timestamp;
    if (ts == null) ts = batchTimestamp;
    else ensureTimestamp(ts, `the timestamp of record ${i}`);
    if (ts < minTs) minTs = ts;
    if (ts > maxTs) maxTs = ts;
    let body = 1 + sizeOfVarint(i) + (k < 0 ? 1 : sizeOfVarint(k) + k) + (v < 0 ? 1 : sizeOfVarint(v) + v);
    const headers = record.headers;
    if (headers == null) {
      body += 1;
    } else {
      body += measureHeaders(headers, i);
    }
    recordTimestamps[i] = ts;
    recordLengths[3 * i] = k;
    recordLengths[3 * i + 1] = v;
    recordLengths[3 * i + 2] = body;
  }
  let size = BATCH_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const body = recordLengths[3 * i + 2] + sizeOfVarlong(recordTimestamps[i] - minTs);
    recordLengths[3 * i + 2] = body;
    size += sizeOfVarint(body) + body;
  }
  if (size - LOG_OVERHEAD > MAX_BATCH_LENGTH) {
    throw new CommitLogError(ErrorCode.RECORD_TOO_LARGE, `a batch of ${n} records takes ${size} bytes, more than the format's ${MAX_BATCH_LENGTH + LOG_OVERHEAD}`);
  }
  firstTimestamp = minTs;
  maxTimestamp = maxTs;
  return size;
}

function ensureTimestamp(ts: unknown, what: string): void {
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) {
    throw invalidArgument(`${what} must be a non-negative integer of ms since the epoch, got ${String(ts)}`);
  }
}

// Buffer's own per-encoding writers skip write()'s argument parsing; they have been on
// Buffer.prototype since Node 0.x but are undocumented, hence the fallback.
interface EncodingWriters {
  utf8Write(s: string, position: number, length: number): number;
  latin1Write(s: string, position: number, length: number): number;
}
const hasEncodingWriters = typeof (Buffer.prototype as unknown as Partial<EncodingWriters>).latin1Write === 'function'
  && typeof (Buffer.prototype as unknown as Partial<EncodingWriters>).utf8Write === 'function';

/**
 * Writes a string or Buffer of byteLength bytes (measured in pass one) at p. A string
 * whose UTF-8 length equals its length is ASCII, so latin1 writes the same bytes at
 * half the cost of utf8, and a byte loop beats both native calls for short keys.
 */
function writeBytes(b: Buffer, p: number, v: string | Uint8Array, byteLength: number): number {
  if (typeof v !== 'string') {
    b.set(v, p);
  } else if (byteLength !== v.length) {
    if (hasEncodingWriters) (b as unknown as EncodingWriters).utf8Write(v, p, byteLength);
    else b.write(v, p, byteLength, 'utf8');
  } else if (byteLength <= 16) {
    for (let i = 0; i < byteLength; i++) b[p + i] = v.charCodeAt(i);
  } else if (hasEncodingWriters) {
    (b as unknown as EncodingWriters).latin1Write(v, p, byteLength);
  } else {
    b.write(v, p, byteLength, 'latin1');
  }
  return p + byteLength;
}

function writeHeaders(b: Buffer, p: number, headers: unknown): number {
  const list = Array.isArray(headers) ? (headers as RecordHeader[]) : null;
  const keys = list === null ? Object.keys(headers as object) : null;
  const count = list === null ? keys!.length : list.length;
  let h = headerSlot;
  p = writeVarint(b, p, count);
  for (let j = 0; j < count; j++) {
    const k = headerLengths[h++];
    const v = headerLengths[h++];
    const key = list === null ? keys![j] : list[j].key;
    p = writeBytes(b, writeVarint(b, p, k), key, k);
    p = writeVarint(b, p, v);
    if (v > 0) p = writeBytes(b, p, (list === null ? (headers as Record<string, unknown>)[key] : list[j].value) as string | Uint8Array, v);
  }
  headerSlot = h;
  return p;
}

/** The exact encoded size of records (pass the same timestamp option as to encodeBatch when some records have none). */
export function batchSizeOf(records: ProducerRecord[], options: { timestamp?: number } = {}): number {
  return measure(records, options.timestamp ?? Date.now());
}

/**
 * Encodes records as one batch: attributes 0 (CreateTime; the codec with `compression`), offsets
 * baseOffset + 0..n-1, firstTimestamp/maxTimestamp the smallest/largest record
 * timestamp. Throws ERR_INVALID_ARGUMENT for an empty list, a key/value that is
 * not a Buffer, a string or null, or a timestamp that is not a non-negative integer.
 */
export function encodeBatch(records: ProducerRecord[], options: EncodeOptions = {}): Buffer {
  const ids = resolveIds(options);
  const codec = resolveCodec(options.compression);
  const size = measure(records, options.timestamp ?? Date.now());
  const b = Buffer.allocUnsafe(size);
  writeMeasured(b, records, ids);
  return codec === CODEC_NONE ? b : compressBatch(b, codec);
}

/** The codec number of a compression option; ERR_INVALID_ARGUMENT for anything else. */
export function resolveCodec(compression: CompressionName | number | undefined): number {
  if (compression === undefined) return CODEC_NONE;
  const codec = typeof compression === 'number' ? compression : codecOf(compression);
  if (codec === undefined || !Number.isInteger(codec) || codec < 0 || codec > 4) {
    throw invalidArgument(`compression must be one of 'none', 'gzip', 'snappy', 'lz4', 'zstd', got ${JSON.stringify(compression)}`);
  }
  return codec;
}

/** The uncompressed batch b with its records section compressed (codec 1-4): a new Buffer, attributes, length and CRC rewritten. */
function compressBatch(b: Buffer, codec: number): Buffer {
  const packed = compress(codec, b.subarray(BATCH_HEADER_BYTES));
  const out = Buffer.allocUnsafe(BATCH_HEADER_BYTES + packed.length);
  b.copy(out, 0, 0, BATCH_HEADER_BYTES);
  out.set(packed, BATCH_HEADER_BYTES);
  out.writeInt32BE(out.length - LOG_OVERHEAD, BATCH_LENGTH_POS);
  out.writeInt16BE(codec, ATTRIBUTES_POS);
  out.writeUInt32BE(crc32c(out, ATTRIBUTES_POS, out.length), CRC_POS);
  return out;
}

/**
 * Encoding in two calls, for writing a batch straight into its final place (a segment's
 * mapping) with no intermediate Buffer: `measureBatch` validates the records and
 * returns the exact size; `encodeMeasuredBatch` then writes them into `target`, which
 * must be exactly that many bytes. Nothing else may be measured or encoded in between
 * (the measurements live in module state), so call the two back to back.
 */
export function measureBatch(records: ProducerRecord[], timestamp: number = Date.now()): number {
  return measure(records, timestamp);
}

export function encodeMeasuredBatch(target: Buffer, records: ProducerRecord[], options: EncodeOptions = {}): void {
  writeMeasured(target, records, resolveIds(options));
}

/** The timestamps of the batch measured last (for the caller's indexes). */
export function measuredTimestamps(): { firstTimestamp: number; maxTimestamp: number } {
  return { firstTimestamp, maxTimestamp };
}

interface BatchIds {
  baseOffset: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  leaderEpoch: number;
}

function resolveIds(options: EncodeOptions): BatchIds {
  const ids = {
    baseOffset: options.baseOffset ?? 0,
    producerId: options.producerId ?? -1,
    producerEpoch: options.producerEpoch ?? -1,
    baseSequence: options.baseSequence ?? -1,
    leaderEpoch: options.partitionLeaderEpoch ?? 0,
  };
  ensureInteger('baseOffset', ids.baseOffset, 0, Number.MAX_SAFE_INTEGER);
  ensureInteger('producerId', ids.producerId, -1, Number.MAX_SAFE_INTEGER);
  ensureInteger('producerEpoch', ids.producerEpoch, -1, 0x7fff);
  ensureInteger('baseSequence', ids.baseSequence, -1, 0x7fffffff);
  ensureInteger('partitionLeaderEpoch', ids.leaderEpoch, -1, 0x7fffffff);
  return ids;
}

/** Pass two: writes the records measured last into b (exactly the measured size). */
function writeMeasured(b: Buffer, records: ProducerRecord[], ids: BatchIds): void {
  const size = b.length;
  const n = records.length;
  writeInt64(b, BASE_OFFSET_POS, ids.baseOffset);
  b.writeInt32BE(size - LOG_OVERHEAD, BATCH_LENGTH_POS);
  b.writeInt32BE(ids.leaderEpoch, LEADER_EPOCH_POS);
  b[MAGIC_POS] = MAGIC;
  b.writeInt16BE(0, ATTRIBUTES_POS);
  b.writeInt32BE(n - 1, LAST_OFFSET_DELTA_POS);
  writeInt64(b, FIRST_TIMESTAMP_POS, firstTimestamp);
  writeInt64(b, MAX_TIMESTAMP_POS, maxTimestamp);
  writeInt64(b, PRODUCER_ID_POS, ids.producerId);
  b.writeInt16BE(ids.producerEpoch, PRODUCER_EPOCH_POS);
  b.writeInt32BE(ids.baseSequence, BASE_SEQUENCE_POS);
  b.writeInt32BE(n, RECORD_COUNT_POS);

  let p = BATCH_HEADER_BYTES;
  headerSlot = 0;
  const first = firstTimestamp;
  for (let i = 0; i < n; i++) {
    const record = records[i];
    const k = recordLengths[3 * i];
    const v = recordLengths[3 * i + 1];
    p = writeVarint(b, p, recordLengths[3 * i + 2]);
    b[p++] = 0;
    p = writeVarlong(b, p, recordTimestamps[i] - first);
    p = writeVarint(b, p, i);
    p = writeVarint(b, p, k);
    if (k > 0) p = writeBytes(b, p, record.key as string | Uint8Array, k);
    p = writeVarint(b, p, v);
    if (v > 0) p = writeBytes(b, p, record.value as string | Uint8Array, v);
    const headers = record.headers;
    if (headers == null) {
      b[p++] = 0;
    } else {
      p = writeHeaders(b, p, headers);
    }
  }
  if (p !== size) throw new Error(`commitlog bug: encoded ${p} bytes, measured ${size}`);
  b.writeUInt32BE(crc32c(b, ATTRIBUTES_POS, size), CRC_POS);
}
