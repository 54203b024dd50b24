/**
 * What a Consumer does with a fetch response's payload before it hands out a record:
 * check every batch, then decode the ones that passed (Kafka's check.crcs).
 *
 * A fetch payload is whole RecordBatch v2 batches, concatenated as stored, the first
 * holding the offset asked for (it may start before it). Per batch, in order:
 * - its frame: a batch length that fits the payload (a zero length is damage here:
 *   the broker never sends unwritten space), magic 2;
 * - with checkCrcs, its CRC32C (one native call per batch, verifyBatch), record count
 *   and last offset delta;
 * - its base offset, which lies outside the CRC: the first batch may start at or
 *   before the offset asked for, never after it (offsets are dense: there is no
 *   record to skip); each later one starts where the one before it ended;
 * - its records decode (lengths, varints; decodeBatches), checks or not.
 * The batches before the first that fails are delivered; the failure is reported with
 * the first offset not delivered, which is known without trusting the damaged bytes.
 *
 * Pure functions: no I/O, no state; keys and values are views of the payload.
 */
import { CommitLogError, ErrorCode } from '../../errors.js';
import { decodeBatches } from '../../log/batch.js';
import { BatchWalker, bufferSource } from '../../log/batch-walker.js';
import type { LogRecord } from '../../log/record.js';

export interface FetchedBatches {
  /** The records at or after the offset asked for, of the batches before any damage. */
  records: LogRecord[];
  /** One past the last offset of those batches; the offset asked for when there are none. */
  nextOffset: number;
  /** The first batch that failed: the first offset not delivered, and why (ERR_CORRUPT_BATCH). */
  damage?: { offset: number; reason: CommitLogError };
}

/** Checks and decodes a fetch payload for records from `fromOffset` on (see the head of this file). */
export function readFetched(payload: Buffer, fromOffset: number, checkCrcs: boolean): FetchedBatches {
  // Batch starts and the offset each one must begin at (-1: at most fromOffset).
  const walker = new BatchWalker(bufferSource(payload), { end: payload.length, expect: { atMost: fromOffset }, verify: checkCrcs, strict: true });
  const starts: number[] = [];
  const firstOffsets: number[] = [];
  let expected = -1;
  for (let b = walker.next(); b !== null; b = walker.next()) {
    starts.push(b.position);
    firstOffsets.push(expected < 0 ? fromOffset : expected);
    expected = b.header.baseOffset + b.header.lastOffsetDelta + 1;
  }
  const position = walker.at;
  const stopped = walker.error();
  let damage: FetchedBatches['damage'] = stopped === null ? undefined : { offset: expected < 0 ? fromOffset : expected, reason: stopped };
  let records: LogRecord[];
  let end = position;
  try {
    records = decodeBatches(payload, 0, end, fromOffset);
  } catch (err) {
    // A batch whose frame checked out does not decode: deliver the ones before it.
    const reason = asCorrupt(err, 0);
    const i = Math.max(0, starts.indexOf(reason.position ?? 0));
    end = starts[i]!;
    damage = { offset: firstOffsets[i]!, reason };
    expected = i === 0 ? -1 : firstOffsets[i]!;
    records = decodeBatches(payload, 0, end, fromOffset);
  }
  return { records, nextOffset: expected < 0 ? fromOffset : Math.max(fromOffset, expected), damage };
}

function damaged(position: number, reason: string): CommitLogError {
  return new CommitLogError(ErrorCode.CORRUPT_BATCH, `corrupt batch at position ${position}: ${reason}`, { position });
}

function asCorrupt(err: unknown, position: number): CommitLogError {
  if (err instanceof CommitLogError && err.code === ErrorCode.CORRUPT_BATCH) return err;
  return damaged(position, err instanceof Error ? err.message : String(err));
}
