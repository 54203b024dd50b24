/**
 * The one JavaScript walk over a run of stored batches: frame by frame, each checked
 * the same way wherever the bytes come from (a fetch payload in memory, a produce
 * request, a segment file read with pread). Its users: the broker's record counting
 * of produced and fetched payloads, the Consumer's reading of a fetch
 * (src/net/client/fetched-batches.ts), `commitlog verify` (its batch table) and
 * `commitlog dump`. Recovery and the offline scan (src/log/recovery.ts,
 * src/ops/data-dir.ts scanSegment) walk with the native scanner instead
 * (native/scan.cc), which applies the same frame rules and the CRC in C++ at memory
 * speed; test/log/batch-walker.test.ts runs both over the same damaged inputs and
 * checks they stop at the same position.
 *
 * A frame is: 8-byte base offset, 4-byte batch length, then `length` bytes, of which
 * the first 49 are the rest of the header (magic at byte 16). The walk stops, with a
 * reason, at the first of:
 *   - 'end'       fewer than 12 bytes left, or a batch length of 0 (zeros past the data)
 *   - 'short'     a batch length below 49 (no room for a header)
 *   - 'truncated' a batch length that runs past the end of the bytes
 *   - 'magic'     magic other than 2
 *   - 'offset'    (with `expect`) a base offset that does not continue the run
 *   - 'crc'       (with `verify`) verifyBatch refused the batch (CRC, counts, codec)
 * A frame that passes is handed out as its header (readBatchHeader) and position.
 */
import { CommitLogError, ErrorCode } from '../errors.js';
import { BATCH_HEADER_BYTES, BATCH_LENGTH_POS, LOG_OVERHEAD, MAGIC, MAGIC_POS, readBatchHeader, verifyBatch, type BatchHeader } from './batch.js';

/** The smallest legal batch length: a header with no records. */
export const MIN_BATCH_LENGTH = BATCH_HEADER_BYTES - LOG_OVERHEAD;

export type WalkStop = 'end' | 'short' | 'truncated' | 'magic' | 'offset' | 'crc';

/** Where bytes come from: `bytes` may return fewer than asked where the source ends. */
export interface BatchSource {
  /** Bytes [position, position + length); a view valid until the next call. */
  bytes(position: number, length: number): Buffer;
}

export interface WalkOptions {
  /** First byte to walk from; default 0. */
  from?: number;
  /** One past the last byte that may belong to a batch. */
  end: number;
  /**
   * Offset continuity: a number is the exact base offset of the first batch (each next
   * one continues the last); `{ atMost: n }` lets the first batch start at or before n
   * (a fetch answers with the batch holding n). Unset: offsets are not checked.
   */
  expect?: number | { atMost: number };
  /** Run verifyBatch (CRC32C, record count, codec) over every frame; default false. */
  verify?: boolean;
  /**
   * The bytes are batches up to `end` exactly (a fetch payload): a zero length or a
   * partial header before `end` is damage ('short' / 'truncated'), not the end of the
   * data. Default false (a segment file: zeros follow the data).
   */
  strict?: boolean;
}

/** How a walk ended: at `position`, for `stop`, with a message naming the numbers. */
export interface WalkEnd {
  position: number;
  stop: WalkStop;
  /** Empty for 'end'. */
  reason: string;
  /** The base offset the next batch had to have (-1 when offsets are not checked or none was walked). */
  nextOffset: number;
}

export interface WalkedBatch {
  position: number;
  header: BatchHeader;
  /** The whole batch: a view into the source, valid until the source's next read. */
  bytes: Buffer;
}

/** A walker over `source`; call next() until it returns null, then read `ended`. */
export class BatchWalker {
  private position: number;
  private readonly end: number;
  private expected: number;
  private atMost: number;
  private readonly verify: boolean;
  private readonly checkOffsets: boolean;
  private readonly strict: boolean;
  private done: WalkEnd | null = null;

  constructor(private readonly source: BatchSource, options: WalkOptions) {
    this.position = options.from ?? 0;
    this.end = options.end;
    this.verify = options.verify === true;
    this.strict = options.strict === true;
    const expect = options.expect;
    this.checkOffsets = expect !== undefined;
    this.expected = typeof expect === 'number' ? expect : -1;
    this.atMost = typeof expect === 'object' && expect !== null ? expect.atMost : -1;
  }

  /** How the walk ended; null while it has not. */
  get ended(): WalkEnd | null {
    return this.done;
  }

  /** Byte position of the next frame (after the walk: where it stopped). */
  get at(): number {
    return this.position;
  }

  /** The next batch, or null once the walk has stopped (see `ended`). */
  next(): WalkedBatch | null {
    if (this.done !== null) return null;
    const position = this.position;
    const left = this.end - position;
    if (left <= 0) return this.stop('end', '');
    const head = this.source.bytes(position, Math.min(left, BATCH_HEADER_BYTES));
    if (head.length < LOG_OVERHEAD) return this.strict && head.length > 0 ? this.stop('truncated', headerNeeds(head.length)) : this.stop('end', '');
    const batchLength = head.readInt32BE(BATCH_LENGTH_POS);
    if (batchLength === 0 && !this.strict) return this.stop('end', '');
    if (batchLength < MIN_BATCH_LENGTH) return this.stop('short', `batch length ${batchLength} is below the minimum ${MIN_BATCH_LENGTH}`);
    if (batchLength > left - LOG_OVERHEAD) {
      return this.stop('truncated', `truncated: batch length ${batchLength} runs past the end (${left - LOG_OVERHEAD} bytes left)`);
    }
    if (head.length < BATCH_HEADER_BYTES) {
      return this.stop('truncated', headerNeeds(head.length));
    }
    if (head[MAGIC_POS] !== MAGIC) return this.stop('magic', `magic ${(head[MAGIC_POS]! << 24) >> 24}, expected ${MAGIC}`);
    const bytes = this.source.bytes(position, LOG_OVERHEAD + batchLength);
    if (bytes.length < LOG_OVERHEAD + batchLength) {
      return this.stop('truncated', `truncated: batch length ${batchLength}, the source holds ${bytes.length - LOG_OVERHEAD} bytes of it`);
    }
    let header: BatchHeader;
    if (this.verify) {
      try {
        header = verifyBatch(bytes, 0, bytes.length);
      } catch (err) {
        return this.stop('crc', withoutPosition(err));
      }
    } else {
      header = readBatchHeader(bytes, 0);
    }
    if (this.expected >= 0 && header.baseOffset !== this.expected) {
      return this.stop('offset', `base offset ${header.baseOffset}, expected ${this.expected}`);
    }
    if (this.atMost >= 0) {
      if (header.baseOffset > this.atMost) return this.stop('offset', `base offset ${header.baseOffset}, expected at most ${this.atMost}`);
      this.atMost = -1;
    }
    if (this.checkOffsets) this.expected = header.baseOffset + header.lastOffsetDelta + 1;
    this.position = position + LOG_OVERHEAD + batchLength;
    return { position, header, bytes };
  }

  /** The walk's end as ERR_CORRUPT_BATCH (null when it simply reached the end). */
  error(): CommitLogError | null {
    const e = this.done;
    if (e === null || e.stop === 'end') return null;
    return new CommitLogError(ErrorCode.CORRUPT_BATCH, `corrupt batch at position ${e.position}: ${e.reason}`, { position: e.position });
  }

  private stop(stop: WalkStop, reason: string): null {
    this.done = { position: this.position, stop, reason, nextOffset: this.expected };
    return null;
  }
}

function headerNeeds(left: number): string {
  return `a batch header needs ${BATCH_HEADER_BYTES} bytes, only ${left} left`;
}

/** A Buffer as a BatchSource (views, no copies). */
export function bufferSource(buf: Buffer): BatchSource {
  return { bytes: (position, length) => buf.subarray(position, Math.min(buf.length, position + length)) };
}

/** Walks buf[from, end) and returns the records its whole batches hold (their headers' counts). */
export function countRecords(buf: Buffer, from = 0, end = buf.length): number {
  const walker = new BatchWalker(bufferSource(buf), { from, end });
  let records = 0;
  for (let b = walker.next(); b !== null; b = walker.next()) records += b.header.recordCount;
  return records;
}

/** A batch error's message without its `corrupt batch at position N: ` prefix (the caller names the position). */
export function withoutPosition(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^corrupt batch at position \d+: /, '');
}
