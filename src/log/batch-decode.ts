/**
 * The RecordBatch v2 decoder (layout in batch-format.ts). Decoding never trusts a
 * length: anything that runs past its batch or record is ERR_CORRUPT_BATCH, never
 * garbage or a RangeError. Synchronous; its module state (a read cursor, the batch
 * being read, for messages) is set afresh by each call.
 */
import type { CommitLogError } from '../errors.js';
import type { LogRecord, RecordHeader } from './record.js';
import {
  ATTRIBUTES_POS, BASE_OFFSET_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, FIRST_TIMESTAMP_POS, LAST_OFFSET_DELTA_POS,
  LOG_OVERHEAD, MAX_TIMESTAMP_POS, MIN_BATCH_LENGTH, RECORD_COUNT_POS, TIMESTAMP_TYPE_MASK,
  checkCompression, checkFrame, corrupt, decompressRecords, ensureRange, readInt32, readInt64,
} from './batch-format.js';


// The decoder's read position and the batch it is in (for error messages).
let cursor = 0;
let batchPosition = 0;
/** '' when cursor indexes the batch's buffer, else what it indexes (a compressed batch's records). */
let where = '';

function overrun(what: string): CommitLogError {
  return corrupt(batchPosition, `${what} runs past its record or batch (at byte ${cursor}${where})`);
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
        if (byte > 0x0f) throw corrupt(batchPosition, `varint at byte ${cursor}${where} exceeds 32 bits`);
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
    if (scale > 2 ** 49) throw corrupt(batchPosition, `timestamp delta at byte ${cursor}${where} is beyond ±2^52`);
    byte = b[p++];
    u += (byte & 0x7f) * scale;
  }
  if (u > Number.MAX_SAFE_INTEGER) throw corrupt(batchPosition, `timestamp delta at byte ${cursor}${where} is beyond ±2^52`);
  cursor = p;
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/** A length-prefixed byte string as a view (null for length -1); skip = parse past it only. */
function readBytes(b: Buffer, end: number, skip: boolean): Buffer | null {
  const length = readVarint(b, end);
  if (length < 0) {
    if (length === -1) return null;
    throw corrupt(batchPosition, `negative length ${length} at byte ${cursor}${where}`);
  }
  const start = cursor;
  if (length > end - start) throw overrun(`a field of ${length} bytes`);
  cursor = start + length;
  return skip ? null : b.subarray(start, start + length);
}

function readHeaders(b: Buffer, end: number, skip: boolean): RecordHeader[] {
  const count = readVarint(b, end);
  if (count < 0) throw corrupt(batchPosition, `header count ${count} at byte ${cursor}${where}`);
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

/**
 * Decodes the batch at position (which must end by limit) into out; returns the batch
 * size. A compressed batch's records are decompressed first (bounded, compression.ts)
 * and its keys and values are views of that fresh buffer.
 */
function decodeInto(b: Buffer, position: number, limit: number, fromOffset: number, out: LogRecord[]): number {
  const batchEnd = checkFrame(b, position, limit);
  const codec = checkCompression(b, position);
  const baseOffset = readInt64(b, position + BASE_OFFSET_POS);
  const logAppendTime = (b[position + ATTRIBUTES_POS + 1] & TIMESTAMP_TYPE_MASK) !== 0;
  const first = readInt64(b, position + FIRST_TIMESTAMP_POS);
  const max = readInt64(b, position + MAX_TIMESTAMP_POS);
  const count = readInt32(b, position + RECORD_COUNT_POS);
  if (count < 0) throw corrupt(position, `record count ${count}`);
  batchPosition = position;
  let r = b;
  let end = batchEnd;
  cursor = position + BATCH_HEADER_BYTES;
  where = '';
  if (codec !== 0) {
    r = decompressRecords(b, position, batchEnd, codec);
    end = r.length;
    cursor = 0;
    where = ' of its decompressed records';
  }
  for (let i = 0; i < count; i++) {
    const length = readVarint(r, end);
    if (length < 0 || length > end - cursor) throw overrun(`record ${i} of ${length} bytes`);
    const recordEnd = cursor + length;
    cursor++; // record attributes: unused
    const timestampDelta = readVarlong(r, recordEnd);
    const offsetDelta = readVarint(r, recordEnd);
    if (offsetDelta < 0) throw corrupt(position, `record ${i} has offset delta ${offsetDelta}`);
    const offset = baseOffset + offsetDelta;
    const skip = offset < fromOffset;
    const key = readBytes(r, recordEnd, skip);
    const value = readBytes(r, recordEnd, skip);
    const headers = readHeaders(r, recordEnd, skip);
    if (cursor !== recordEnd) throw corrupt(position, `record ${i} declares ${length} bytes but its fields take ${cursor - recordEnd + length}`);
    if (!skip) out.push({ offset, timestamp: logAppendTime ? max : first + timestampDelta, key, value, headers });
  }
  if (cursor !== end) throw corrupt(position, `${end - cursor} bytes left${where} after the last of ${count} records`);
  return batchEnd - position;
}

/**
 * Decodes the records of the one batch at position, skipping (but parsing past) those
 * with offset < fromOffset. Keys, values and header values are views of buf (of the
 * decompressed records for a compressed batch: gzip, snappy, lz4, zstd). Checks
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
