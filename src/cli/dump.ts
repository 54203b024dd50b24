/**
 * `commitlog dump DIR`: prints what is on disk, offline, like kafka-dump-log: per
 * segment its files and sizes, per batch its offsets, position, size, timestamps,
 * attributes and checksum status, and with --records every record. Read-only (the
 * files are mapped read-only), so it also works on a directory a broker serves (the
 * active segments may then grow while they are read).
 *
 * A batch whose frame is sound (length, magic) but fails its CRC or record count is
 * printed with `isValid: false` and the dump goes on; a broken frame ends the
 * segment's dump with the reason, as recovery would end the log there. A progress bar
 * shows on stderr when stderr is a terminal and stdout is not.
 */
import fs from 'node:fs';
import { ATTRIBUTES_POS, BATCH_HEADER_BYTES, BATCH_LENGTH_POS, CONTROL_MASK, LOG_OVERHEAD, MAGIC, MAGIC_POS, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_MASK, decodeRecords, readBatchHeader, verifyBatch } from '../log/batch.js';
import type { LogRecord } from '../log/record.js';
import { locate, mapFile, TAIL_ZERO_RUN, type SegmentFiles } from '../ops/data-dir.js';
import { createProgress, type Progress } from '../ops/progress.js';
import * as native from '../native.js';
import { Output, guard, intFlag, parse } from './args.js';

export const USAGE = `usage: commitlog dump DIR [--topic T] [--partition N] [--records] [--indexes]

Prints the segments of a data directory (or of one partition's directory, or one .log
file) offline: per batch its offsets, position, size, timestamps and checksum status.

  --topic T        only this topic
  --partition N    only this partition
  --records        also print every record (offset, timestamp, key, value, headers)
  --indexes        also print every consume-queue and time-index entry
`;

const OPTIONS = {
  topic: { type: 'string' },
  partition: { type: 'string' },
  records: { type: 'boolean' },
  indexes: { type: 'boolean' },
} as const;

const FLUSH_BYTES = 256 * 1024;

export function run(args: string[]): Promise<number> {
  return guard('dump', USAGE, async () => {
    const parsed = parse(args, OPTIONS, USAGE, { min: 1, max: 1, names: 'DIR' });
    if (parsed === null) return 0;
    const located = locate(parsed.positionals[0]!, { topic: parsed.values.topic as string | undefined, partition: intFlag(parsed.values, 'partition', 0) });
    const withRecords = parsed.values.records === true;
    const withIndexes = parsed.values.indexes === true;
    const segments = located.topics.flatMap((t) => t.partitions.flatMap((p) => p.segments));
    const total = segments.reduce((n, s) => n + s.logBytes, 0);
    // On a terminal the dump itself shows progress; the bar is for output sent elsewhere.
    const bar = createProgress('dump', total, { enabled: process.stdout.isTTY !== true });
    const out = new Output();
    let done = 0;
    try {
      for (const s of segments) {
        if (!(await dumpSegment(out, s, withRecords, bar, done))) return 0;
        if (withIndexes) dumpIndexes(out, s);
        done += s.logBytes;
        bar.update(done, s.log);
        if (!(await out.flush())) return 0;
      }
    } finally {
      bar.done();
      await out.end();
    }
    return 0;
  });
}

/** Dumps one segment; false once stdout is gone. */
async function dumpSegment(out: Output, s: SegmentFiles, withRecords: boolean, bar: Progress, before: number): Promise<boolean> {
  const mapped = mapFile(s.log);
  if (mapped === null) return true;
  try {
    const data = mapped.data;
    out.push(`Dumping ${s.log}\n`);
    out.push(`segment baseOffset: ${s.baseOffset} fileBytes: ${data.length} cq: ${sizeOf(s.cq)} tix: ${sizeOf(s.tix)}\n`);
    let pos = 0;
    let batches = 0;
    let records = 0;
    let end = 'end of data';
    while (pos + LOG_OVERHEAD <= data.length) {
      const batchLength = data.readInt32BE(pos + BATCH_LENGTH_POS);
      if (batchLength === 0) break;
      const frameOk = batchLength >= BATCH_HEADER_BYTES - LOG_OVERHEAD && pos + LOG_OVERHEAD + batchLength <= data.length && data[pos + MAGIC_POS] === MAGIC;
      if (!frameOk) {
        end = frameProblem(data, pos);
        break;
      }
      const h = readBatchHeader(data, pos);
      let problem = '';
      try {
        verifyBatch(data, pos, pos + h.size);
      } catch (err) {
        problem = (err as Error).message.replace(/^corrupt batch at position \d+: /, '');
      }
      out.push(
        `baseOffset: ${h.baseOffset} lastOffset: ${h.baseOffset + h.lastOffsetDelta} count: ${h.recordCount} position: ${pos} size: ${h.size}` +
          ` firstTimestamp: ${h.firstTimestamp} maxTimestamp: ${h.maxTimestamp} (${iso(h.maxTimestamp)}) ${attributes(data, pos)}` +
          ` producerId: ${h.producerId} crc: 0x${h.crc.toString(16).padStart(8, '0')} isValid: ${problem === ''}${problem === '' ? '' : ` (${problem})`}\n`,
      );
      if (withRecords) {
        for (const line of recordLines(data, pos)) out.push(line);
      }
      batches++;
      records += h.recordCount;
      pos += h.size;
      if (out.pendingBytes >= FLUSH_BYTES) {
        bar.update(before + pos, s.log);
        if (!(await out.flush())) return false;
      }
    }
    const extent = pos < data.length ? native.dataExtent(data, pos, data.length, TAIL_ZERO_RUN) : pos;
    const tail = end === 'end of data' && extent > pos ? `; ${extent - pos} non-zero bytes follow (torn write)` : '';
    out.push(`${end} at position ${pos}: ${batches} batches, ${records} records${tail}\n\n`);
    return true;
  } finally {
    mapped.close();
  }
}

function frameProblem(data: Buffer, pos: number): string {
  try {
    verifyBatch(data, pos, data.length);
    return 'unreadable batch';
  } catch (err) {
    return `unreadable batch (${(err as Error).message.replace(/^corrupt batch at position \d+: /, '')})`;
  }
}

function attributes(data: Buffer, pos: number): string {
  const a = data.readInt16BE(pos + ATTRIBUTES_POS);
  const codec = ['none', 'gzip', 'snappy', 'lz4', 'zstd'][a & 7] ?? String(a & 7);
  return `compression: ${codec} timestampType: ${a & TIMESTAMP_TYPE_MASK ? 'LogAppendTime' : 'CreateTime'} transactional: ${(a & TRANSACTIONAL_MASK) !== 0} control: ${(a & CONTROL_MASK) !== 0}`;
}

function recordLines(data: Buffer, pos: number): string[] {
  let records: LogRecord[];
  try {
    records = decodeRecords(data, pos);
  } catch (err) {
    return [`| records cannot be decoded: ${(err as Error).message}\n`];
  }
  return records.map((r) => {
    const headers = r.headers.map((h) => `${JSON.stringify(h.key)}: ${show(h.value)}`).join(', ');
    return `| offset: ${r.offset} timestamp: ${r.timestamp} keySize: ${r.key?.length ?? -1} valueSize: ${r.value?.length ?? -1} key: ${show(r.key)} value: ${show(r.value)} headers: {${headers}}\n`;
  });
}

function show(b: Buffer | null): string {
  return b === null ? 'null' : JSON.stringify(b.toString('utf8'));
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : 'invalid';
}

function sizeOf(file: string): string {
  try {
    return `${fs.statSync(file).size} bytes`;
  } catch {
    return 'missing';
  }
}

function dumpIndexes(out: Output, s: SegmentFiles): void {
  const cq = mapFile(s.cq);
  if (cq !== null) {
    try {
      out.push(`Dumping ${s.cq}\n`);
      for (let at = 0; at + 12 <= cq.data.length; at += 12) {
        const size = cq.data.readUInt32LE(at + 8);
        if (size === 0) break;
        out.push(`relativeOffset: ${cq.data.readUInt32LE(at)} offset: ${s.baseOffset + cq.data.readUInt32LE(at)} position: ${cq.data.readUInt32LE(at + 4)} size: ${size}\n`);
      }
      out.push('\n');
    } finally {
      cq.close();
    }
  }
  const tix = mapFile(s.tix);
  if (tix !== null) {
    try {
      out.push(`Dumping ${s.tix}\n`);
      for (let at = 0; at + 16 <= tix.data.length; at += 16) {
        const ts = tix.data.readDoubleLE(at);
        const rel = tix.data.readUInt32LE(at + 8);
        const position = tix.data.readUInt32LE(at + 12);
        const zero = (a: number): boolean => a + 16 > tix.data.length || (tix.data.readDoubleLE(a) === 0 && tix.data.readUInt32LE(a + 8) === 0 && tix.data.readUInt32LE(a + 12) === 0);
        // An all-zero first entry is real only when a second one follows (see TimeIndex).
        if (zero(at) && (at > 0 || zero(at + 16))) break;
        out.push(`maxTimestamp: ${ts} relativeOffset: ${rel} offset: ${s.baseOffset + rel} position: ${position}\n`);
      }
      out.push('\n');
    } finally {
      tix.close();
    }
  }
}
