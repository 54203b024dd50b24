/**
 * File names of a partition directory (Kafka's scheme): a segment and its indexes are
 * named by the first offset they hold, zero-padded to 20 digits.
 *   00000000000000000000.log  segment      .cq  consume queue      .tix  time index
 *   *.deleted   a segment retention removed while a reader still held it (unlinked on
 *               release; leftovers are removed at open)
 *   next.*.prepared  the segment allocated ahead of a roll (removed at open)
 */
import path from 'node:path';

export const LOG_SUFFIX = '.log';
export const CQ_SUFFIX = '.cq';
export const TIX_SUFFIX = '.tix';
export const DELETED_SUFFIX = '.deleted';
export const PREPARED_SUFFIX = '.prepared';
export const CHECKPOINT_FILE = 'recovery.checkpoint';

function formatBaseOffset(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

/** The base offset a file name stands for, or -1 when the name is not ours. */
export function parseBaseOffset(fileName: string, suffix: string): number {
  if (!fileName.endsWith(suffix)) return -1;
  const stem = fileName.slice(0, -suffix.length);
  if (!/^\d{20}$/.test(stem)) return -1;
  const n = Number(stem);
  return Number.isSafeInteger(n) ? n : -1;
}

export function segmentPaths(dir: string, baseOffset: number): { log: string; cq: string; tix: string } {
  const stem = path.join(dir, formatBaseOffset(baseOffset));
  return { log: stem + LOG_SUFFIX, cq: stem + CQ_SUFFIX, tix: stem + TIX_SUFFIX };
}

export function preparedPaths(dir: string): { log: string; cq: string; tix: string } {
  const stem = path.join(dir, 'next');
  return { log: stem + LOG_SUFFIX + PREPARED_SUFFIX, cq: stem + CQ_SUFFIX + PREPARED_SUFFIX, tix: stem + TIX_SUFFIX + PREPARED_SUFFIX };
}
