/**
 * Kafka's RecordBatch v2 (magic 2) codec, byte for byte: what producers build, what
 * the log stores and what fetches return. All integers are big-endian; docs/format.md
 * has the same table with a worked example.
 *
 * RecordBatch =>
 *   pos size field                type    in CRC
 *    0   8   BaseOffset           int64   no   first offset; assigned in place by the log
 *    8   4   BatchLength          int32   no   bytes after this field (size - LOG_OVERHEAD)
 *   12   4   PartitionLeaderEpoch int32   no   the log stamps its recovery epoch here in place (recovery.md)
 *   16   1   Magic                int8    no   2
 *   17   4   CRC                  uint32  no   CRC32C of [Attributes, end of batch)
 *   21   2   Attributes           int16   yes  bits 0-2 compression (only 0 accepted),
 *                                              3 timestamp type, 4 transactional, 5 control
 *   23   4   LastOffsetDelta      int32   yes  RecordCount - 1
 *   27   8   FirstTimestamp       int64   yes  smallest record timestamp (ms)
 *   35   8   MaxTimestamp         int64   yes  largest record timestamp (ms)
 *   43   8   ProducerId           int64   yes  -1: not idempotent
 *   51   2   ProducerEpoch        int16   yes  -1
 *   53   4   BaseSequence         int32   yes  -1
 *   57   4   RecordCount          int32   yes
 *   61   …   Records              [Record] yes
 *
 * Record =>
 *   Length         varint   bytes of the record after this field
 *   Attributes     int8     unused, 0
 *   TimestampDelta varlong  timestamp - FirstTimestamp
 *   OffsetDelta    varint   offset - BaseOffset (0..n-1)
 *   KeyLength      varint   -1 = null key
 *   Key            bytes
 *   ValueLength    varint   -1 = null value
 *   Value          bytes
 *   HeadersCount   varint
 *   Headers        [HeaderKeyLength varint, HeaderKey UTF-8, HeaderValueLength varint (-1 = null), HeaderValue bytes]
 * varint/varlong: zigzag ((n << 1) ^ (n >> 31|63)), then 7 bits a byte, low group
 * first, high bit = more bytes follow (protobuf's sint32/sint64).
 *
 * Encoding is two passes over the records: measure (byte lengths cached in module-level
 * scratch arrays, no per-record allocation), then write into one exact-size Buffer.
 * Every function here is synchronous and keeps no state between calls, so callers on
 * any thread (each worker has its own module instance) may use it freely. A batch is
 * self-checking: a torn write shows as a length running past the data or a CRC
 * mismatch (verifyBatch). Decoding never trusts a length: anything that runs past its
 * batch or record is ERR_CORRUPT_BATCH, never garbage or a RangeError.
 */
import { crc32c } from '../native.js';
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import type { LogRecord, ProducerRecord, RecordHeader } from './record.js';

export const LOG_OVERHEAD = 12;
export const BATCH_HEADER_BYTES = 61;
export const MAGIC = 2;

export const BASE_OFFSET_POS = 0;
export const BATCH_LENGTH_POS = 8;
export const LEADER_EPOCH_POS = 12;
export const MAGIC_POS = 16;
export const CRC_POS = 17;
export const ATTRIBUTES_POS = 21;
export const LAST_OFFSET_DELTA_POS = 23;
export const FIRST_TIMESTAMP_POS = 27;
export const MAX_TIMESTAMP_POS = 35;
export const PRODUCER_ID_POS = 43;
export const PRODUCER_EPOCH_POS = 51;
export const BASE_SEQUENCE_POS = 53;
export const RECORD_COUNT_POS = 57;

/** Attribute bits (Kafka's DefaultRecordBatch). */
export const COMPRESSION_MASK = 0x07;
export const TIMESTAMP_TYPE_MASK = 0x08;
export const TRANSACTIONAL_MASK = 0x10;
export const CONTROL_MASK = 0x20;

/** The smallest legal BatchLength: a header with no records. */
const MIN_BATCH_LENGTH = BATCH_HEADER_BYTES - LOG_OVERHEAD;
const MAX_BATCH_LENGTH = 0x7fffffff;
const TWO_POW_32 = 4294967296;

export interface BatchHeader {
  baseOffset: number;
  batchLength: number;
  /** LOG_OVERHEAD + batchLength: the bytes the batch takes in a segment. */
  size: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  firstTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface EncodeOptions {
  baseOffset?: number;
  /** The batch's timestamp: the default of records without one. Default Date.now(). */
  timestamp?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  partitionLeaderEpoch?: number;
}

// ---------------------------------------------------------------- fixed-width fields

function readInt16(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16)) >> 16;
}

function readInt32(b: Uint8Array, p: number): number {
  return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
}

function readUInt32(b: Uint8Array, p: number): number {
  return readInt32(b, p) >>> 0;
}

/** Exact for safe integers; two 32-bit reads beat readBigInt64BE (no BigInt allocation). */
function readInt64(b: Uint8Array, p: number): number {
  return readInt32(b, p) * TWO_POW_32 + readUInt32(b, p + 4);
}

/** The maxTimestamp field of the batch at `position` (no other field read, nothing checked). */
export function readMaxTimestamp(buf: Uint8Array, position: number): number {
  return readInt64(buf, position + MAX_TIMESTAMP_POS);
}

/** The baseOffset field of the batch at `position` (no other field read, nothing checked). */
export function readBaseOffset(buf: Uint8Array, position: number): number {
  return readInt64(buf, position + BASE_OFFSET_POS);
}

function writeInt64(b: Buffer, p: number, n: number): void {
  const hi = Math.floor(n / TWO_POW_32);
  b.writeInt32BE(hi, p);
  b.writeUInt32BE(n - hi * TWO_POW_32, p + 4);
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

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

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

function ensureInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer in [${min}, ${max}], got ${value}`);
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
 * Encodes records as one batch: attributes 0 (uncompressed, CreateTime), offsets
 * baseOffset + 0..n-1, firstTimestamp/maxTimestamp the smallest/largest record
 * timestamp. Throws ERR_INVALID_ARGUMENT for an empty list, a key/value that is
 * not a Buffer, a string or null, or a timestamp that is not a non-negative integer.
 */
export function encodeBatch(records: ProducerRecord[], options: EncodeOptions = {}): Buffer {
  const ids = resolveIds(options);
  const size = measure(records, options.timestamp ?? Date.now());
  const b = Buffer.allocUnsafe(size);
  writeMeasured(b, records, ids);
  return b;
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

/** Sets the base offset in place; it lies outside the CRC, which stays valid. */
export function setBaseOffset(buf: Buffer, position: number, baseOffset: number): void {
  ensureInteger('baseOffset', baseOffset, 0, Number.MAX_SAFE_INTEGER);
  ensureInteger('position', position, 0, buf.length - LOG_OVERHEAD);
  writeInt64(buf, position + BASE_OFFSET_POS, baseOffset);
}

// ---------------------------------------------------------------- header and verification

function corrupt(position: number, reason: string): CommitLogError {
  return new CommitLogError(ErrorCode.CORRUPT_BATCH, `corrupt batch at position ${position}: ${reason}`, { position });
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function ensureRange(buf: Uint8Array, position: number, end: number): void {
  if (!(buf instanceof Uint8Array)) throw invalidArgument(`buf must be a Buffer, got ${describe(buf)}`);
  ensureInteger('end', end, 0, buf.byteLength);
  ensureInteger('position', position, 0, end);
}

/** Reads the 61-byte header at position; checks only that it lies inside buf. */
export function readBatchHeader(buf: Uint8Array | Buffer, position = 0): BatchHeader {
  ensureRange(buf, position, buf.byteLength);
  if (buf.byteLength - position < BATCH_HEADER_BYTES) {
    throw corrupt(position, `a batch header needs ${BATCH_HEADER_BYTES} bytes, only ${buf.byteLength - position} left`);
  }
  const batchLength = readInt32(buf, position + BATCH_LENGTH_POS);
  return {
    baseOffset: readInt64(buf, position + BASE_OFFSET_POS),
    batchLength,
    size: LOG_OVERHEAD + batchLength,
    partitionLeaderEpoch: readInt32(buf, position + LEADER_EPOCH_POS),
    magic: (buf[position + MAGIC_POS] << 24) >> 24,
    crc: readUInt32(buf, position + CRC_POS),
    attributes: readInt16(buf, position + ATTRIBUTES_POS),
    lastOffsetDelta: readInt32(buf, position + LAST_OFFSET_DELTA_POS),
    firstTimestamp: readInt64(buf, position + FIRST_TIMESTAMP_POS),
    maxTimestamp: readInt64(buf, position + MAX_TIMESTAMP_POS),
    producerId: readInt64(buf, position + PRODUCER_ID_POS),
    producerEpoch: readInt16(buf, position + PRODUCER_EPOCH_POS),
    baseSequence: readInt32(buf, position + BASE_SEQUENCE_POS),
    recordCount: readInt32(buf, position + RECORD_COUNT_POS),
  };
}

/** Length, magic and compression: what a decoder must know before touching the records. Returns the batch end. */
function checkFrame(buf: Uint8Array, position: number, end: number): number {
  if (end - position < LOG_OVERHEAD) {
    throw corrupt(position, `truncated: ${end - position} bytes left, a batch needs ${LOG_OVERHEAD} for its offset and length`);
  }
  const batchLength = readInt32(buf, position + BATCH_LENGTH_POS);
  if (batchLength < MIN_BATCH_LENGTH) throw corrupt(position, `batch length ${batchLength} is below the minimum ${MIN_BATCH_LENGTH}`);
  if (batchLength > end - position - LOG_OVERHEAD) {
    throw corrupt(position, `truncated: batch length ${batchLength} runs past the end (${end - position - LOG_OVERHEAD} bytes left)`);
  }
  const magic = buf[position + MAGIC_POS];
  if (magic !== MAGIC) throw corrupt(position, `magic ${magic}, expected ${MAGIC}`);
  return position + LOG_OVERHEAD + batchLength;
}

function checkCompression(buf: Uint8Array, position: number): void {
  const codec = buf[position + ATTRIBUTES_POS + 1] & COMPRESSION_MASK;
  if (codec !== 0) throw corrupt(position, `compression codec ${codec} in the attributes: compressed batches are not supported yet`);
}

/**
 * Checks one batch in buf[position, end): length, magic 2, CRC32C, no compression,
 * recordCount >= 1 and lastOffsetDelta == recordCount - 1. Throws ERR_CORRUPT_BATCH
 * with the position and the reason; returns the header.
 */
export function verifyBatch(buf: Buffer, position = 0, end = buf.length): BatchHeader {
  ensureRange(buf, position, end);
  const batchEnd = checkFrame(buf, position, end);
  const stored = readUInt32(buf, position + CRC_POS);
  const computed = crc32c(buf, position + ATTRIBUTES_POS, batchEnd);
  if (stored !== computed) throw corrupt(position, `CRC mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`);
  checkCompression(buf, position);
  const header = readBatchHeader(buf, position);
  if (header.recordCount < 1) throw corrupt(position, `record count ${header.recordCount}, a batch holds at least 1`);
  if (header.lastOffsetDelta !== header.recordCount - 1) {
    throw corrupt(position, `last offset delta ${header.lastOffsetDelta} does not match record count ${header.recordCount}`);
  }
  return header;
}

// ---------------------------------------------------------------- decoding

// The decoder's read position and the batch it is in (for error messages).
let cursor = 0;
let batchPosition = 0;

function overrun(what: string): CommitLogError {
  return corrupt(batchPosition, `${what} runs past its record or batch (at byte ${cursor})`);
}

function readVarint(b: Uint8Array, end: number): number {
  let p = cursor;
  if (p >= end) throw overrun('a varint');
  let byte = b[p++];
  let u = byte & 0x7f;
  if (byte >= 0x80) {
    for (let shift = 7; ; shift += 7) {
      if (p >= end) throw overrun('a varint');
      byte = b[p++];
      if (shift === 28) {
        if (byte > 0x0f) throw corrupt(batchPosition, `varint at byte ${cursor} exceeds 32 bits`);
        u = (u | (byte << 28)) >>> 0;
        break;
      }
      u |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
    }
  }
  cursor = p;
  return (u >>> 1) ^ -(u & 1);
}

/** A zigzag varlong as a number; deltas beyond ±2^52 (8 bytes) are rejected rather than rounded. */
function readVarlong(b: Uint8Array, end: number): number {
  let p = cursor;
  if (p >= end) throw overrun('a varlong');
  let byte = b[p++];
  let u = byte & 0x7f;
  for (let scale = 0x80; byte >= 0x80; scale *= 0x80) {
    if (p >= end) throw overrun('a varlong');
    if (scale > 2 ** 49) throw corrupt(batchPosition, `timestamp delta at byte ${cursor} is beyond ±2^52`);
    byte = b[p++];
    u += (byte & 0x7f) * scale;
  }
  if (u > Number.MAX_SAFE_INTEGER) throw corrupt(batchPosition, `timestamp delta at byte ${cursor} is beyond ±2^52`);
  cursor = p;
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/** A length-prefixed byte string as a view (null for length -1); skip = parse past it only. */
function readBytes(b: Buffer, end: number, skip: boolean): Buffer | null {
  const length = readVarint(b, end);
  if (length < 0) {
    if (length === -1) return null;
    throw corrupt(batchPosition, `negative length ${length} at byte ${cursor}`);
  }
  const start = cursor;
  if (length > end - start) throw overrun(`a field of ${length} bytes`);
  cursor = start + length;
  return skip ? null : b.subarray(start, start + length);
}

function readHeaders(b: Buffer, end: number, skip: boolean): RecordHeader[] {
  const count = readVarint(b, end);
  if (count < 0) throw corrupt(batchPosition, `header count ${count} at byte ${cursor}`);
  const headers: RecordHeader[] = [];
  for (let j = 0; j < count; j++) {
    const keyLength = readVarint(b, end);
    if (keyLength < 0 || keyLength > end - cursor) throw overrun(`a header key of ${keyLength} bytes`);
    const key = skip ? '' : b.toString('utf8', cursor, cursor + keyLength);
    cursor += keyLength;
    const value = readBytes(b, end, skip);
    if (!skip) headers.push({ key, value });
  }
  return headers;
}

/** Decodes the batch at position (which must end by limit) into out; returns the batch size. */
function decodeInto(b: Buffer, position: number, limit: number, fromOffset: number, out: LogRecord[]): number {
  const batchEnd = checkFrame(b, position, limit);
  checkCompression(b, position);
  const baseOffset = readInt64(b, position + BASE_OFFSET_POS);
  const logAppendTime = (b[position + ATTRIBUTES_POS + 1] & TIMESTAMP_TYPE_MASK) !== 0;
  const first = readInt64(b, position + FIRST_TIMESTAMP_POS);
  const max = readInt64(b, position + MAX_TIMESTAMP_POS);
  const count = readInt32(b, position + RECORD_COUNT_POS);
  if (count < 0) throw corrupt(position, `record count ${count}`);
  batchPosition = position;
  cursor = position + BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const length = readVarint(b, batchEnd);
    if (length < 0 || length > batchEnd - cursor) throw overrun(`record ${i} of ${length} bytes`);
    const recordEnd = cursor + length;
    cursor++; // record attributes: unused
    const timestampDelta = readVarlong(b, recordEnd);
    const offsetDelta = readVarint(b, recordEnd);
    if (offsetDelta < 0) throw corrupt(position, `record ${i} has offset delta ${offsetDelta}`);
    const offset = baseOffset + offsetDelta;
    const skip = offset < fromOffset;
    const key = readBytes(b, recordEnd, skip);
    const value = readBytes(b, recordEnd, skip);
    const headers = readHeaders(b, recordEnd, skip);
    if (cursor !== recordEnd) throw corrupt(position, `record ${i} declares ${length} bytes but its fields take ${cursor - recordEnd + length}`);
    if (!skip) out.push({ offset, timestamp: logAppendTime ? max : first + timestampDelta, key, value, headers });
  }
  if (cursor !== batchEnd) throw corrupt(position, `${batchEnd - cursor} bytes left after the last of ${count} records`);
  return batchEnd - position;
}

/**
 * Decodes the records of the one batch at position, skipping (but parsing past) those
 * with offset < fromOffset. Keys, values and header values are views of buf. Checks
 * the frame, not the CRC (see verifyBatch): a length that runs past its record or
 * batch is ERR_CORRUPT_BATCH, never garbage. Control batches decode as plain records.
 */
export function decodeRecords(buf: Buffer, position = 0, fromOffset = 0): LogRecord[] {
  ensureRange(buf, position, buf.length);
  const out: LogRecord[] = [];
  decodeInto(buf, position, buf.length, fromOffset, out);
  return out;
}

/**
 * Decodes consecutive batches in buf[position, end), stopping at a batch length of 0
 * (unwritten, zeroed space) or at the end. Batches wholly before fromOffset are
 * skipped by their header alone. Trailing non-zero bytes too short for a batch are
 * ERR_CORRUPT_BATCH.
 */
export function decodeBatches(buf: Buffer, position: number, end: number, fromOffset = 0): LogRecord[] {
  ensureRange(buf, position, end);
  const out: LogRecord[] = [];
  let p = position;
  while (end - p >= LOG_OVERHEAD) {
    const batchLength = readInt32(buf, p + BATCH_LENGTH_POS);
    if (batchLength === 0) return out;
    if (batchLength >= MIN_BATCH_LENGTH && batchLength <= end - p - LOG_OVERHEAD) {
      const lastOffset = readInt64(buf, p + BASE_OFFSET_POS) + readInt32(buf, p + LAST_OFFSET_DELTA_POS);
      if (lastOffset < fromOffset) {
        p += LOG_OVERHEAD + batchLength;
        continue;
      }
    }
    p += decodeInto(buf, p, end, fromOffset, out);
  }
  for (let q = p; q < end; q++) {
    if (buf[q] !== 0) throw corrupt(p, `${end - p} trailing bytes, too few for a batch`);
  }
  return out;
}
