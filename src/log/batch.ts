/**
 * Kafka's RecordBatch v2 (magic 2) codec, byte for byte (the layout, header and
 * verification in batch-format.ts, the encoder in batch-encode.ts, the decoder in
 * batch-decode.ts; import from here): what producers build, what
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
export {
  LOG_OVERHEAD, BATCH_HEADER_BYTES, MAGIC, BASE_OFFSET_POS, BATCH_LENGTH_POS, LEADER_EPOCH_POS, MAGIC_POS, CRC_POS,
  ATTRIBUTES_POS, LAST_OFFSET_DELTA_POS, FIRST_TIMESTAMP_POS, MAX_TIMESTAMP_POS, PRODUCER_ID_POS, PRODUCER_EPOCH_POS,
  BASE_SEQUENCE_POS, RECORD_COUNT_POS, COMPRESSION_MASK, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_MASK, CONTROL_MASK,
  readMaxTimestamp, readBaseOffset, setBaseOffset, readBatchHeader, verifyBatch,
} from './batch-format.js';
export type { BatchHeader } from './batch-format.js';
export * from './batch-encode.js';
export * from './batch-decode.js';
