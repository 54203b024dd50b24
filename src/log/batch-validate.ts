/**
 * Record-level validation of a produced batch, what Kafka's LogValidator does before an
 * append, in one pass over the bytes: no record objects, no Buffer views, no allocation
 * except the error thrown (and, for a compressed batch, its decompressed records).
 * `verifyBatch` (batch.ts) has already checked the frame, the CRC, magic 2, a known
 * codec and lastOffsetDelta == recordCount - 1; this checks that
 * the records inside say the same thing, so that every batch the log accepts can be
 * decoded later by `decodeBatches` and by any Kafka client.
 *
 * For each record i of the batch at `position` (grammar in batch.ts):
 *   Length          varint   >= 6 (the smallest record), ends inside the batch; the
 *                            fields below fill it exactly
 *   Attributes      int8     unused: any value
 *   TimestampDelta  varlong  at most 8 bytes, within ±2^52 (what the decoder accepts)
 *   OffsetDelta     varint   exactly i
 *   KeyLength       varint   -1 (null) or 0..bytes left in the record
 *   ValueLength     varint   same
 *   HeadersCount    varint   >= 0
 *   per header      varint key length 0..bytes left (a null key is rejected), key bytes
 *                   (not checked as UTF-8, as Kafka does not), varint value length as
 *                   for values, value bytes
 * and the records end exactly at the end of the batch after RecordCount records. A
 * varint is at most 5 bytes and 32 bits (the 5th byte <= 0x0f); non-canonical encodings
 * (padded with 0x80 bytes) are accepted, as Kafka's and kafkajs's decoders accept them.
 *
 * Batch-level rules: no control batch (Kafka's "Clients are not allowed to write control
 * records": we have no transactions, and Java, librdkafka and kafkajs consumers skip a
 * control batch's records, which our decoder returns as data); the transactional bit
 * is accepted and ignored. For CreateTime batches, FirstTimestamp + delta of every
 * record is a safe integer and MaxTimestamp is no later than the newest record (or 0,
 * librdkafka's floor); for LogAppendTime batches only MaxTimestamp (every record's
 * timestamp) must be a safe integer. docs/format.md ("Validation of produced batches")
 * says why this rule and not an exact one: kafkajs writes MaxTimestamp from the
 * explicit timestamps only.
 *
 * A compressed batch (codec 1-4) is validated the same way over its records
 * decompressed (what Kafka's LogValidator does): synchronously, at most
 * `maxDecompressedBytes` of them (compression.ts), so a zip bomb or a payload that
 * does not decompress is ERR_CORRUPT_BATCH before anything is stored. The stored batch
 * stays the compressed bytes as they came.
 *
 * Failures throw ERR_CORRUPT_BATCH naming the record, the byte (an index into `buf`,
 * or into the decompressed records, which the message then says)
 * and the reason with its numbers; `position` is the batch's. Synchronous; its module
 * state (a read cursor, the batch's bounds for messages) is set afresh by each call, so
 * any thread may use it (each worker has its own module instance).
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import {
  ATTRIBUTES_POS, BATCH_HEADER_BYTES, COMPRESSION_MASK, CONTROL_MASK, FIRST_TIMESTAMP_POS, MAX_TIMESTAMP_POS, TIMESTAMP_TYPE_MASK,
  checkCompression, decompressRecords,
} from './batch-format.js';
import type { BatchHeader } from './batch-format.js';
import { MAX_DECOMPRESSED_BYTES } from './compression.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const RECORD_LENGTH = 'record length';
/** Attributes, a 1-byte timestamp delta and offset delta, null key, null value, no headers. */
const MIN_RECORD_BYTES = 6;

// Where the last varint read ended, and the batch being validated (for messages).
let cursor = 0;
let batchPosition = 0;
let batchEnd = 0;
/** '' when byte numbers index `buf`, else what they index (a compressed batch's records). */
let where = '';

function corrupt(reason: string): CommitLogError {
  return new CommitLogError(ErrorCode.CORRUPT_BATCH, `corrupt batch at position ${batchPosition}: ${reason}`, { position: batchPosition });
}

function recordError(record: number, at: number, reason: string): CommitLogError {
  return corrupt(`record ${record} at byte ${at}${where}: ${reason}`);
}

function pastEnd(field: string, end: number): string {
  const batch = where === '' ? 'the batch' : 'the decompressed records';
  const what = field === RECORD_LENGTH ? batch : end === batchEnd ? `its record and of ${batch}` : 'its record';
  return `the end of ${what} (byte ${end}${where})`;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

// Varints of one or two bytes (-8192..8191: nearly every length and delta) are decoded
// inline where they are read, with no call and no cursor; readVarint and
// readTimestampDelta take the rest and set `cursor` past what they read.

/**
 * A zigzag varint at p (up to 5 bytes, 32 bits) that must end by `end`; sets cursor
 * past it. `header` is the index of the header it belongs to, -1 for none.
 */
function readVarint(b: Uint8Array, p: number, end: number, record: number, field: string, header = -1): number {
  let u = 0;
  for (let q = p, shift = 0; ; q++, shift += 7) {
    if (q >= end) throw recordError(record, p, `the ${fieldName(field, header)} varint runs past ${pastEnd(field, end)}`);
    const byte = b[q];
    if (shift === 28) {
      if (byte > 0x0f) {
        throw recordError(record, p, `the ${fieldName(field, header)} varint is longer than 5 bytes or over 32 bits (5th byte 0x${byte.toString(16).padStart(2, '0')})`);
      }
      u = (u | (byte << 28)) >>> 0;
      cursor = q + 1;
      break;
    }
    u |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      cursor = q + 1;
      break;
    }
  }
  return (u >>> 1) ^ -(u & 1);
}

/** The timestamp delta varlong at p; beyond 8 bytes or ±2^52 is rejected, as the decoder does (it could not be a safe number). */
function readTimestampDelta(b: Uint8Array, p: number, end: number, record: number): number {
  let u = 0;
  let q = p;
  for (let scale = 1; ; scale *= 0x80) {
    if (q >= end) throw recordError(record, p, `the timestamp delta varlong runs past ${pastEnd('', end)}`);
    if (scale > 2 ** 49) throw recordError(record, p, 'the timestamp delta varlong is longer than 8 bytes (beyond ±2^52)');
    const byte = b[q++];
    u += (byte & 0x7f) * scale;
    if (byte < 0x80) break;
  }
  if (u > MAX_SAFE) throw recordError(record, p, 'the timestamp delta varlong is beyond ±2^52');
  cursor = q;
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/**
 * Skips a length-prefixed key, value, header key or header value at p; returns the
 * byte after it. `header` is the header's index, -1 for the record's key and value.
 * Errors are built in lengthError so that this stays small enough for V8 to inline.
 */
function skipBytes(b: Uint8Array, p: number, recordEnd: number, record: number, field: string, header: number, nullable: boolean): number {
  const x = b[p];
  let length: number;
  let start: number;
  if (x < 0x80 && p < recordEnd) {
    length = (x >>> 1) ^ -(x & 1);
    start = p + 1;
  } else if (p + 1 < recordEnd && b[p + 1] < 0x80) {
    const u = (x & 0x7f) | (b[p + 1] << 7);
    length = (u >>> 1) ^ -(u & 1);
    start = p + 2;
  } else {
    length = readVarint(b, p, recordEnd, record, field, header);
    start = cursor;
  }
  if (length >= 0 && length <= recordEnd - start) return start + length;
  if (length === -1 && nullable) return start;
  throw lengthError(record, p, field, header, length, recordEnd - start, recordEnd);
}

/** Skips the header count and headers at p; returns the byte after them. */
function skipHeaders(b: Uint8Array, p: number, recordEnd: number, record: number): number {
  const count = readVarint(b, p, recordEnd, record, 'header count');
  if (count < 0) throw recordError(record, p, `header count ${count} is negative`);
  p = cursor;
  for (let j = 0; j < count; j++) {
    p = skipBytes(b, p, recordEnd, record, 'key length', j, false);
    p = skipBytes(b, p, recordEnd, record, 'value length', j, true);
  }
  return p;
}

function fieldName(field: string, header: number): string {
  return header < 0 ? field : `header ${header} ${field}`;
}

function lengthError(record: number, at: number, field: string, header: number, length: number, left: number, recordEnd: number): CommitLogError {
  const name = fieldName(field, header);
  if (length === -1) return recordError(record, at, `header ${header} has a null key`);
  if (length < 0) return recordError(record, at, `${name} ${length} is negative${header >= 0 && field === 'key length' ? '' : ' (only -1, null, is allowed)'}`);
  return recordError(record, at, `${name} ${length} runs past ${pastEnd(field, recordEnd)}: ${plural(left, 'byte')} left`);
}

function recordLengthError(record: number, at: number, length: number, left: number): CommitLogError {
  if (length < 0) return recordError(record, at, `record length ${length} is negative`);
  if (length < MIN_RECORD_BYTES) return recordError(record, at, `record length ${length} is below the ${MIN_RECORD_BYTES} bytes of the smallest record`);
  return recordError(record, at, `record length ${length} runs past ${pastEnd(RECORD_LENGTH, batchEnd)}: ${plural(left, 'byte')} left`);
}

/** An int64 field exactly (for messages about values a number cannot hold). */
function exactInt64(buf: Uint8Array, p: number): string {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigInt64(p).toString();
}

/** The batch-level rules: not a control batch, timestamps that a number holds exactly. */
function checkHeader(buf: Uint8Array, position: number, header: BatchHeader): void {
  const attributes = header.attributes;
  if ((attributes & CONTROL_MASK) !== 0) {
    throw corrupt(`attributes 0x${(attributes & 0xffff).toString(16).padStart(4, '0')} at byte ${position + ATTRIBUTES_POS} mark a control batch; producers may not write control batches`);
  }
  const createTime = (attributes & TIMESTAMP_TYPE_MASK) === 0;
  const safeMax = Number.isSafeInteger(header.maxTimestamp);
  if (!safeMax || (createTime && !Number.isSafeInteger(header.firstTimestamp))) {
    const [name, at] = safeMax ? ['FirstTimestamp', position + FIRST_TIMESTAMP_POS] : ['MaxTimestamp', position + MAX_TIMESTAMP_POS];
    throw corrupt(`${name} ${exactInt64(buf, at)} at byte ${at} is beyond ±(2^53 - 1) ms`);
  }
}

/**
 * Throws ERR_CORRUPT_BATCH when a record of the batch at `position` is malformed or
 * disagrees with the header. `header` must be what verifyBatch returned for that batch.
 * Returns the batch's real maxTimestamp: the newest record timestamp of a CreateTime
 * batch (what Kafka writes back into the header), the header's for LogAppendTime.
 *
 * One pass, one loop; one- and two-byte varints are decoded inline, which measured
 * twice as fast as a call per field (bench/validate.ts). A compressed batch's records
 * are first decompressed, at most maxDecompressedBytes of them.
 */
export function validateRecords(buf: Buffer, position: number, header: BatchHeader, maxDecompressedBytes = MAX_DECOMPRESSED_BYTES): number {
  const end = position + header.size;
  if (!(buf instanceof Uint8Array) || !Number.isSafeInteger(position) || position < 0 || end > buf.length || header.size < BATCH_HEADER_BYTES) {
    throw invalidArgument(`validateRecords needs a batch verified by verifyBatch inside buf, got position ${position}, size ${header.size}, buffer of ${buf?.length} bytes`);
  }
  batchPosition = position;
  batchEnd = end;
  where = '';
  checkHeader(buf, position, header);
  if ((header.attributes & COMPRESSION_MASK) === 0) return validateRun(buf, position + BATCH_HEADER_BYTES, end, position, header);
  const records = decompressRecords(buf, position, end, checkCompression(buf, position), maxDecompressedBytes);
  batchEnd = records.length;
  where = ' of the decompressed records';
  return validateRun(records, 0, records.length, position, header);
}

/** The records of the batch at `position` (its header given) lie in b[p, end): checks them all; returns the newest timestamp. */
function validateRun(b: Uint8Array, p: number, end: number, position: number, header: BatchHeader): number {
  const createTime = (header.attributes & TIMESTAMP_TYPE_MASK) === 0;
  const first = header.firstTimestamp;
  const count = header.recordCount;
  let newest = -Infinity;
  let newestRecord = 0;
  let newestAt = 0;
  for (let i = 0; i < count; i++) {
    if (p === end) throw recordError(i, p, `missing: the record count in the header is ${count}, but the batch ends after ${plural(i, 'record')}`);
    const start = p;
    let x = b[p];
    let length: number;
    if (x < 0x80) {
      length = (x >>> 1) ^ -(x & 1);
      p += 1;
    } else if (p + 1 < end && b[p + 1] < 0x80) {
      const u = (x & 0x7f) | (b[p + 1] << 7);
      length = (u >>> 1) ^ -(u & 1);
      p += 2;
    } else {
      length = readVarint(b, p, end, i, RECORD_LENGTH);
      p = cursor;
    }
    if (length < MIN_RECORD_BYTES || length > end - p) throw recordLengthError(i, start, length, end - p);
    const recordEnd = p + length;
    p++; // attributes: unused. The record's 6 bytes or more cover the timestamp delta's first 2.
    x = b[p];
    let delta: number;
    if (x < 0x80) {
      delta = (x >>> 1) ^ -(x & 1);
      p += 1;
    } else if (b[p + 1] < 0x80) {
      const u = (x & 0x7f) | (b[p + 1] << 7);
      delta = (u >>> 1) ^ -(u & 1);
      p += 2;
    } else {
      delta = readTimestampDelta(b, p, recordEnd, i);
      p = cursor;
    }
    const offsetAt = p;
    x = b[p];
    let offsetDelta: number;
    if (x < 0x80 && p < recordEnd) {
      offsetDelta = (x >>> 1) ^ -(x & 1);
      p += 1;
    } else {
      offsetDelta = readVarint(b, p, recordEnd, i, 'offset delta');
      p = cursor;
    }
    if (offsetDelta !== i) throw recordError(i, offsetAt, `offset delta ${offsetDelta}, expected ${i} (deltas run 0..${count - 1} in order)`);
    p = skipBytes(b, p, recordEnd, i, 'key length', -1, true);
    p = skipBytes(b, p, recordEnd, i, 'value length', -1, true);
    if (b[p] === 0 && p < recordEnd) p++; // no headers
    else p = skipHeaders(b, p, recordEnd, i);
    if (p !== recordEnd) throw recordError(i, start, `record length ${length}, but its fields end at byte ${p}, ${plural(recordEnd - p, 'byte')} before the record does`);
    const timestamp = first + delta;
    if (timestamp > newest) {
      newest = timestamp;
      newestRecord = i;
      newestAt = start;
    }
    if ((timestamp > MAX_SAFE || timestamp < -MAX_SAFE) && createTime) {
      throw recordError(i, start, `timestamp FirstTimestamp ${first} + delta ${delta} is beyond ±(2^53 - 1) ms`);
    }
  }
  if (p !== end) {
    throw recordError(count, p, `${plural(end - p, 'byte')} left after the last record: the record count in the header is ${count}, ${where === '' ? 'the batch' : 'the decompressed records'} end${where === '' ? 's' : ''} at byte ${end}`);
  }
  const max = header.maxTimestamp;
  if (!createTime) return max;
  if (max > newest && max > 0) {
    throw corrupt(`MaxTimestamp ${max} at byte ${position + MAX_TIMESTAMP_POS} is later than every record's timestamp: the newest is ${newest}, record ${newestRecord} at byte ${newestAt}${where}`);
  }
  return newest;
}
