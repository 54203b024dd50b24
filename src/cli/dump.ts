/**
 * `commitlog dump DIR`: prints what is on disk, offline, like kafka-dump-log: per
 * segment its files and sizes, per batch its offsets, position, size, timestamps,
 * attributes and checksum status, and with --records every record. Read-only, without
 * the directory's lock, so it also works on a directory a broker serves: files are
 * read with pread (data-dir.ts), so a segment the broker seals (truncates) meanwhile
 * ends the dump of that segment where its data ends, with a note, rather than the
 * process (a mapping would raise SIGBUS there); an active segment's last batch may be
 * caught half written.
 *
 * A batch whose frame is sound (length, magic) but fails its CRC or record count is
 * printed with `isValid: false` and the dump goes on; a broken frame ends the
 * segment's dump with the reason, as recovery would end the log there. A progress bar
 * shows on stderr when stderr is a terminal and stdout is not.
 */
import fs from 'node:fs';
import { ATTRIBUTES_POS, CONTROL_MASK, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_MASK, decodeRecords, verifyBatch } from '../log/batch.js';
import { BatchWalker } from '../log/batch-walker.js';
import type { LogRecord } from '../log/record.js';
import { FileReader, locate, tailExtent, withoutPosition, type SegmentFiles } from '../ops/data-dir.js';
import { createProgress, type Progress } from '../ops/progress.js';
import { Output, guard, intFlag, parse } from './args.js';

const USAGE = `usage: commitlog dump DIR [--topic T] [--partition N] [--records] [--indexes]

Prints the segments of a data directory (or of one partition's directory, or one .log
file) offline: per batch its offsets, position, size, timestamps and checksum status.
Safe next to a running broker (files are read, not mapped; the active segment's last
batch may then be caught half written).

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
  const file = FileReader.open(s.log);
  if (file === null) return true;
  try {
    out.push(`Dumping ${s.log}\n`);
    out.push(`segment baseOffset: ${s.baseOffset} fileBytes: ${file.size} cq: ${sizeOf(s.cq)} tix: ${sizeOf(s.tix)}\n`);
    let batches = 0;
    let records = 0;
    const walker = new BatchWalker(file, { end: file.size });
    for (let b = walker.next(); b !== null; b = walker.next()) {
      const { header: h, bytes: data, position: pos } = b;
      let problem = '';
      try {
        verifyBatch(data, 0, h.size);
      } catch (err) {
        problem = withoutPosition(err);
      }
      out.push(
        `baseOffset: ${h.baseOffset} lastOffset: ${h.baseOffset + h.lastOffsetDelta} count: ${h.recordCount} position: ${pos} size: ${h.size}` +
          ` firstTimestamp: ${h.firstTimestamp} maxTimestamp: ${h.maxTimestamp} (${iso(h.maxTimestamp)}) ${attributes(data)}` +
          ` producerId: ${h.producerId} crc: 0x${h.crc.toString(16).padStart(8, '0')} isValid: ${problem === ''}${problem === '' ? '' : ` (${problem})`}\n`,
      );
      if (withRecords) {
        for (const line of recordLines(data, pos)) out.push(line);
      }
      batches++;
      records += h.recordCount;
      if (out.pendingBytes >= FLUSH_BYTES) {
        bar.update(before + pos + h.size, s.log);
        if (!(await out.flush())) return false;
      }
    }
    const pos = walker.at;
    const stop = walker.ended!;
    const end = stop.stop === 'end' ? 'end of data' : `unreadable batch (${stop.reason})`;
    const extent = pos < file.size ? tailExtent(file, pos, file.size) : pos;
    const tail = end === 'end of data' && extent > pos ? `; ${extent - pos} non-zero bytes follow (torn write)` : '';
    out.push(`${end} at position ${pos}: ${batches} batches, ${records} records${tail}\n`);
    const now = file.currentSize();
    if (now < file.size) out.push(`the file shrank from ${file.size} to ${now} bytes while it was read (a broker sealed the segment)\n`);
    out.push('\n');
    return true;
  } finally {
    file.close();
  }
}

function attributes(batch: Buffer): string {
  const a = batch.readInt16BE(ATTRIBUTES_POS);
  const codec = ['none', 'gzip', 'snappy', 'lz4', 'zstd'][a & 7] ?? String(a & 7);
  return `compression: ${codec} timestampType: ${a & TIMESTAMP_TYPE_MASK ? 'LogAppendTime' : 'CreateTime'} transactional: ${(a & TRANSACTIONAL_MASK) !== 0} control: ${(a & CONTROL_MASK) !== 0}`;
}

/** The records of `batch` (a whole batch, found at file position `pos`), one line each. */
function recordLines(batch: Buffer, pos: number): string[] {
  let records: LogRecord[];
  try {
    records = decodeRecords(batch, 0);
  } catch (err) {
    // The decoder counts bytes from the batch's start; the dump speaks in file positions.
    const why = withoutPosition(err).replace(/\(at byte (\d+)\)/, (_, at: string) => `(at byte ${pos + Number(at)})`);
    return [`| records cannot be decoded: ${why}\n`];
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
  const cq = FileReader.open(s.cq);
  if (cq !== null) {
    try {
      out.push(`Dumping ${s.cq}\n`);
      for (let at = 0; at + 12 <= cq.size; at += 12) {
        const e = cq.bytes(at, 12);
        if (e.length < 12) break; // trimmed by a seal meanwhile
        const size = e.readUInt32LE(8);
        if (size === 0) break;
        out.push(`relativeOffset: ${e.readUInt32LE(0)} offset: ${s.baseOffset + e.readUInt32LE(0)} position: ${e.readUInt32LE(4)} size: ${size}\n`);
      }
      out.push('\n');
    } finally {
      cq.close();
    }
  }
  const tix = FileReader.open(s.tix);
  if (tix !== null) {
    try {
      out.push(`Dumping ${s.tix}\n`);
      for (let at = 0; at + 16 <= tix.size; at += 16) {
        const e = tix.bytes(at, 32); // this entry and the next
        const zero = (i: number): boolean => e.length < i + 16 || (e.readDoubleLE(i) === 0 && e.readUInt32LE(i + 8) === 0 && e.readUInt32LE(i + 12) === 0);
        // An all-zero first entry is real only when a second one follows (see TimeIndex).
        if (zero(0) && (at > 0 || zero(16))) break;
        out.push(`maxTimestamp: ${e.readDoubleLE(0)} relativeOffset: ${e.readUInt32LE(8)} offset: ${s.baseOffset + e.readUInt32LE(8)} position: ${e.readUInt32LE(12)}\n`);
      }
      out.push('\n');
    } finally {
      tix.close();
    }
  }
}
