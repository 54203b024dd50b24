/**
 * The record types shared by the whole project: what a user appends (ProducerRecord)
 * and what a reader gets back (LogRecord). The bytes they map to are Kafka's
 * RecordBatch v2 records; see src/log/batch.ts and docs/format.md.
 */

/** One record header. Keys are UTF-8 strings; a value may be null. Duplicate keys are allowed and keep their order. */
export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/**
 * What a user appends. key/value strings are UTF-8 encoded. headers may be an object
 * (string values are UTF-8 encoded) or a list. timestamp in ms since epoch (default:
 * the batch's timestamp = Date.now() at encode).
 */
export interface ProducerRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string | null> | RecordHeader[];
  timestamp?: number;
}

/**
 * What a reader gets: offset is absolute; key/value/header values are Buffers (views,
 * not copies, of the source buffer: they are valid only as long as the source is, e.g.
 * while a segment is held open).
 */
export interface LogRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}
