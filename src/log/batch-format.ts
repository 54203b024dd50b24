/**
 * Kafka's RecordBatch v2 (magic 2): the layout, the header, verification and the
 * fixed-width field helpers shared by the encoder (batch-encode.ts) and the decoder
 * (batch-decode.ts). batch.ts re-exports all three: import from there. All integers are big-endian; docs/format.md
 * has the same table with a worked example.
 *
 * RecordBatch =>
 *   pos size field                type    in CRC
 *    0   8   BaseOffset           int64   no   first offset; assigned in place by the log
 *    8   4   BatchLength          int32   no   bytes after this field (size - LOG_OVERHEAD)
 *   12   4   PartitionLeaderEpoch int32   no   the log stamps its recovery epoch here in place (recovery.md)
 *   16   1   Magic                int8    no   2
 *   17   4   CRC                  uint32  no   CRC32C of [Attributes, end of batch)
 *   21   2   Attributes           int16   yes  bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
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
import { DecompressionError, MAX_DECOMPRESSED_BYTES, codecName, decompress } from './compression.js';

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
/** The highest compression codec Kafka defines (4, zstd). */
export const MAX_CODEC = 4;

/** The smallest legal BatchLength: a header with no records. */
export const MIN_BATCH_LENGTH = BATCH_HEADER_BYTES - LOG_OVERHEAD;
export const MAX_BATCH_LENGTH = 0x7fffffff;
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

// ---------------------------------------------------------------- fixed-width fields

export function readInt16(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16)) >> 16;
}

export function readInt32(b: Uint8Array, p: number): number {
  return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
}

export function readUInt32(b: Uint8Array, p: number): number {
  return readInt32(b, p) >>> 0;
}

/** Exact for safe integers; two 32-bit reads beat readBigInt64BE (no BigInt allocation). */
export function readInt64(b: Uint8Array, p: number): number {
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

export function writeInt64(b: Buffer, p: number, n: number): void {
  const hi = Math.floor(n / TWO_POW_32);
  b.writeInt32BE(hi, p);
  b.writeUInt32BE(n - hi * TWO_POW_32, p + 4);
}

// ---------------------------------------------------------------- argument checks

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}


export function ensureInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}


/** Sets the base offset in place; it lies outside the CRC, which stays valid. */
export function setBaseOffset(buf: Buffer, position: number, baseOffset: number): void {
  ensureInteger('baseOffset', baseOffset, 0, Number.MAX_SAFE_INTEGER);
  ensureInteger('position', position, 0, buf.length - LOG_OVERHEAD);
  writeInt64(buf, position + BASE_OFFSET_POS, baseOffset);
}

// ---------------------------------------------------------------- header and verification

export function corrupt(position: number, reason: string): CommitLogError {
  return new CommitLogError(ErrorCode.CORRUPT_BATCH, `corrupt batch at position ${position}: ${reason}`, { position });
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

export function ensureRange(buf: Uint8Array, position: number, end: number): void {
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
export function checkFrame(buf: Uint8Array, position: number, end: number): number {
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

/** The batch's compression codec (0 none, 1-4 Kafka's codecs, compression.ts); 5-7 are ERR_CORRUPT_BATCH. */
export function checkCompression(buf: Uint8Array, position: number): number {
  const codec = buf[position + ATTRIBUTES_POS + 1] & COMPRESSION_MASK;
  if (codec > MAX_CODEC) {
    throw corrupt(position, `compression codec ${codec} in the attributes at byte ${position + ATTRIBUTES_POS} is not one of Kafka's (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)`);
  }
  return codec;
}

/**
 * The records bytes of the compressed batch at position (codec 1-4, from
 * checkCompression; the batch ends at batchEnd), decompressed, at most maxBytes of
 * them: a fresh Buffer. Damaged data or too much of it is ERR_CORRUPT_BATCH.
 */
export function decompressRecords(buf: Uint8Array, position: number, batchEnd: number, codec: number, maxBytes = MAX_DECOMPRESSED_BYTES): Buffer {
  try {
    return decompress(codec, buf.subarray(position + BATCH_HEADER_BYTES, batchEnd), maxBytes);
  } catch (err) {
    if (err instanceof DecompressionError) throw corrupt(position, `its ${codecName(codec)}-compressed records do not decompress: ${err.message}`);
    throw err;
  }
}

/**
 * Checks one batch in buf[position, end): length, magic 2, CRC32C, a known codec (0-4),
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
