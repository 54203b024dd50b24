/**
 * Kafka's batch compression codecs (the low 3 bits of a RecordBatch's attributes):
 * what a compressed batch's records bytes are, and how to get them back, bounded.
 *
 *   1 gzip    RFC 1952 members (node:zlib), as Java's GZIPOutputStream, librdkafka,
 *             kafkajs and kafka-python write them
 *   2 snappy  either xerial framing (magic 82 'SNAPPY' 00, int32 version, int32
 *             compatible version, then [int32 length, raw snappy block]...: what Java's
 *             snappy-java, kafkajs-snappy and kafka-python write) or one raw snappy
 *             block (what librdkafka writes); told apart by the xerial magic
 *   3 lz4     the LZ4 frame format (magic 04 22 4d 18), as Kafka's RecordBatch v2 uses
 *             it (v0/v1 message sets' broken header checksum does not apply to v2)
 *   4 zstd    Zstandard frames (magic 28 b5 2f fd), with or without a content size
 *
 * Decompression is synchronous (the produce path validates a batch before its first
 * await) and bounded: before any output is allocated, the input's own framing gives
 * an upper bound of the output (snappy's length preambles, lz4's and zstd's block
 * headers, gzip's streaming limit), and more than `maxBytes` is refused. So a batch
 * that claims gigabytes (a zip bomb) costs a header walk, never the memory. The bound
 * is exact for gzip and snappy; for lz4 and zstd a compressed block counts as its
 * maximum (lz4: the frame's block size, at most 255 bytes per input byte; zstd: 128
 * KiB or the window), so data within one block of maxBytes may be refused. Every
 * failure is a DecompressionError with the reason; the batch layer turns it into
 * ERR_CORRUPT_BATCH naming the batch (batch-decode.ts, batch-validate.ts).
 *
 * The native codecs (snappy, lz4-napi, @toondepauw/node-zstd; docs/dependencies.md)
 * are loaded on first use, so a process that never meets a compressed batch never
 * loads them.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

export const CODEC_NONE = 0;
export const CODEC_GZIP = 1;
export const CODEC_SNAPPY = 2;
export const CODEC_LZ4 = 3;
export const CODEC_ZSTD = 4;

export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
export const COMPRESSION_NAMES: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** The default bound of one batch's decompressed records: 64 MiB. */
export const MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

/** A compressed payload that cannot be (or may not be) decompressed; `message` says why. */
export class DecompressionError extends Error {}

/** The codec's name ('codec 5' for one Kafka does not define). */
export function codecName(codec: number): string {
  return COMPRESSION_NAMES[codec] ?? `codec ${codec}`;
}

/** The codec number of a name; undefined for an unknown name. */
export function codecOf(name: string): number | undefined {
  const i = COMPRESSION_NAMES.indexOf(name as CompressionName);
  return i < 0 ? undefined : i;
}

// ---------------------------------------------------------------- the native codecs, loaded lazily

type Snappy = typeof import('snappy');
type Lz4 = typeof import('lz4-napi');
type Zstd = typeof import('@toondepauw/node-zstd');

const require = createRequire(import.meta.url);
let snappyLib: Snappy | null = null;
let lz4Lib: Lz4 | null = null;
let zstdLib: Zstd | null = null;
let zstdDecoder: InstanceType<Zstd['Decoder']> | null = null;
const zstdEncoders = new Map<number, InstanceType<Zstd['Encoder']>>();

function load<T>(name: string): T {
  try {
    return require(name) as T;
  } catch (err) {
    throw new DecompressionError(`the ${name} package does not load here (${(err as Error).message})`);
  }
}

const snappy = (): Snappy => (snappyLib ??= load<Snappy>('snappy'));
const lz4 = (): Lz4 => (lz4Lib ??= load<Lz4>('lz4-napi'));
const zstd = (): Zstd => (zstdLib ??= load<Zstd>('@toondepauw/node-zstd'));

function fail(reason: string): never {
  throw new DecompressionError(reason);
}

/** `why`: what told (the data's own sizes, or zlib stopping at the limit). */
function tooLarge(codec: string, why: string, maxBytes: number): never {
  fail(`${codec} data decompresses to more than the limit of ${maxBytes} bytes a batch's records may take (${why})`);
}

function le32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

function be32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------- decompression

/**
 * The bytes `data` (compressed with Kafka codec `codec`, 1-4) stand for, at most
 * `maxBytes` of them. Throws DecompressionError for an unknown codec, damaged data,
 * trailing garbage the codec notices, or a result that would exceed maxBytes.
 */
export function decompress(codec: number, data: Uint8Array, maxBytes = MAX_DECOMPRESSED_BYTES): Buffer {
  switch (codec) {
    case CODEC_GZIP: return gunzip(data, maxBytes);
    case CODEC_SNAPPY: return unsnappy(data, maxBytes);
    case CODEC_LZ4: return unlz4(data, maxBytes);
    case CODEC_ZSTD: return unzstd(data, maxBytes);
    default: return fail(`${codecName(codec)} is not a compression codec (1 gzip, 2 snappy, 3 lz4, 4 zstd)`);
  }
}

function gunzip(data: Uint8Array, maxBytes: number): Buffer {
  try {
    // zlib stops (and throws) as soon as the output passes maxOutputLength.
    return zlib.gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE') tooLarge('gzip', 'zlib stopped at the limit', maxBytes);
    return fail(`gzip: ${e.message}`);
  }
}

const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
const XERIAL_HEADER_BYTES = 16;

function isXerial(b: Uint8Array): boolean {
  if (b.length < XERIAL_HEADER_BYTES) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (b[i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

/** The uncompressed length in a raw snappy block's preamble (a varint of up to 32 bits). */
function snappyLength(b: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let p = start, shift = 0; p < end && shift <= 28; p++, shift += 7) {
    n += (b[p] & 0x7f) * 2 ** shift;
    if (b[p] < 0x80) return n;
  }
  return fail('snappy: the block\'s length preamble is truncated or longer than 5 bytes');
}

function rawSnappy(block: Uint8Array): Buffer {
  try {
    return snappy().uncompressSync(block, { asBuffer: true, copyOutputData: true }) as Buffer;
  } catch (err) {
    if (err instanceof DecompressionError) throw err;
    return fail(`snappy: ${(err as Error).message}`);
  }
}

function unsnappy(data: Uint8Array, maxBytes: number): Buffer {
  if (!isXerial(data)) {
    const length = snappyLength(data, 0, data.length);
    if (length > maxBytes) tooLarge('snappy', `its length preamble says ${length} bytes`, maxBytes);
    return rawSnappy(data);
  }
  // Xerial: walk the blocks' lengths and preambles first, so the total is known.
  const blocks: Array<[number, number]> = [];
  let total = 0;
  for (let p = XERIAL_HEADER_BYTES; p < data.length;) {
    if (data.length - p < 4) fail(`snappy (xerial): ${data.length - p} bytes after the last block, too few for a block length`);
    const length = be32(data, p);
    p += 4;
    if (length > data.length - p) fail(`snappy (xerial): a block of ${length} bytes runs past the data (${data.length - p} left)`);
    if (length > 0) {
      total += snappyLength(data, p, p + length);
      if (total > maxBytes) tooLarge('snappy', `its blocks' length preambles say at least ${total} bytes`, maxBytes);
      blocks.push([p, p + length]);
    }
    p += length;
  }
  if (blocks.length === 1) return rawSnappy(data.subarray(blocks[0][0], blocks[0][1]));
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const [start, end] of blocks) {
    const part = rawSnappy(data.subarray(start, end));
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/** Skippable frames of lz4 (0x184D2A50-5F) and zstd (the same range): true when the magic is one. */
function isSkippable(magic: number): boolean {
  return (magic & 0xfffffff0) === 0x184d2a50;
}

/** Where the skippable frame at `p` ends, checked against the data (the bound walks). */
function skippableFrameEnd(codec: string, b: Uint8Array, p: number): number {
  if (b.length - p < 8) fail(`${codec}: a skippable frame header is truncated`);
  const end = p + 8 + le32(b, p + 4);
  if (end > b.length) fail(`${codec}: a skippable frame runs past the data`);
  return end;
}

/** Walks LZ4 frames' headers and block sizes; returns an upper bound of the output. */
function lz4Bound(b: Uint8Array, maxBytes: number): number {
  let bound = 0;
  let p = 0;
  while (p < b.length) {
    if (b.length - p < 4) fail(`lz4: ${b.length - p} bytes after the last frame`);
    const magic = le32(b, p);
    if (isSkippable(magic)) {
      p = skippableFrameEnd('lz4', b, p);
      continue;
    }
    if (magic !== LZ4_MAGIC) fail(`lz4: frame magic 0x${magic.toString(16).padStart(8, '0')} at byte ${p}, expected 0x184d2204 (the LZ4 frame format)`);
    if (b.length - p < 7) fail('lz4: the frame header is truncated');
    const flg = b[p + 4];
    const bd = b[p + 5];
    if (flg >> 6 !== 1) fail(`lz4: frame version ${flg >> 6}, expected 1`);
    const blockChecksum = (flg & 0x10) !== 0;
    const contentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const blockMax = LZ4_BLOCK_MAX[(bd >> 4) & 7];
    if (blockMax === 0) fail(`lz4: block maximum size code ${(bd >> 4) & 7} is not one of 4-7`);
    p += 6;
    if (contentSize) {
      const size = le32(b, p) + le32(b, p + 4) * 2 ** 32;
      if (size > maxBytes) tooLarge('lz4', `its content size says ${size} bytes`, maxBytes);
      p += 8;
    }
    if ((flg & 0x01) !== 0) p += 4; // dictionary id
    p += 1; // header checksum (checked by the decoder)
    for (;;) {
      if (b.length - p < 4) fail('lz4: the data ends inside a frame (no end mark)');
      const word = le32(b, p);
      p += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      const uncompressed = word >>> 31 === 1;
      if (size > blockMax) fail(`lz4: a block of ${size} bytes, more than the frame's maximum of ${blockMax}`);
      // A compressed block's output is at most its block maximum, and at most 255 bytes
      // per input byte (a match-length byte of 255) plus a sequence's fixed part.
      bound += uncompressed ? size : Math.min(blockMax, 255 * size + 24);
      if (bound > maxBytes) tooLarge('lz4', `its blocks so far may hold ${bound} bytes`, maxBytes);
      p += size + (blockChecksum ? 4 : 0);
      if (p > b.length) fail('lz4: a block runs past the data');
    }
    if (contentChecksum) p += 4;
    if (p > b.length) fail('lz4: the content checksum is truncated');
  }
  return bound;
}

/** Decoding space for lz4, grown as needed (up to the bound) and reused; results are copied out. */
let lz4Scratch = Buffer.allocUnsafe(0);

/**
 * LZ4 frames decoded here, in JavaScript, straight into one buffer: a native call per
 * batch costs more than the decoding (its output buffer's finalizer), and writing into
 * a buffer of the bound's size makes overrunning it impossible. Blocks may be linked
 * (matches reaching into earlier blocks) or independent. The frame's own checksums
 * (header, block, content xxHash32) are not checked: the batch's CRC32C covers every
 * byte, and a malformed block (an offset before the output, a length past the input
 * or the bound) is refused.
 */
function unlz4(data: Uint8Array, maxBytes: number): Buffer {
  const bound = lz4Bound(data, maxBytes);
  if (lz4Scratch.length < bound) lz4Scratch = Buffer.allocUnsafe(Math.max(bound, Math.min(maxBytes, lz4Scratch.length * 2)));
  const out = lz4Scratch;
  let o = 0;
  let p = 0;
  while (p < data.length) {
    const magic = le32(data, p);
    if (isSkippable(magic)) {
      p += 8 + le32(data, p + 4);
      continue;
    }
    const flg = data[p + 4];
    const blockChecksum = (flg & 0x10) !== 0;
    p += 6 + ((flg & 0x08) !== 0 ? 8 : 0) + ((flg & 0x01) !== 0 ? 4 : 0) + 1;
    const frameStart = o;
    for (;;) {
      const word = le32(data, p);
      p += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      if (word >>> 31 === 1) {
        if (size > bound - o) fail('lz4: an uncompressed block runs past the output bound');
        out.set(data.subarray(p, p + size), o);
        o += size;
      } else {
        o = lz4Block(data, p, p + size, out, o, frameStart, bound);
      }
      p += size + (blockChecksum ? 4 : 0);
    }
    if ((flg & 0x04) !== 0) p += 4;
  }
  return Buffer.from(out.subarray(0, o));
}

/** Decodes one LZ4 block data[p, end) into out at o, never past limit (matches may reach back to frameStart); returns the new end of output. */
function lz4Block(data: Uint8Array, p: number, end: number, out: Buffer, o: number, frameStart: number, limit: number): number {
  for (;;) {
    if (p >= end) fail('lz4: a block ends inside a sequence');
    const token = data[p++];
    let literals = token >>> 4;
    if (literals === 15) {
      for (let x = 255; x === 255;) {
        if (p >= end) fail('lz4: a literal length runs past its block');
        x = data[p++];
        literals += x;
      }
    }
    if (literals > end - p) fail(`lz4: ${literals} literals run past their block`);
    if (literals > limit - o) fail('lz4: the literals run past the output bound');
    if (literals > 16) out.set(data.subarray(p, p + literals), o);
    else for (let k = 0; k < literals; k++) out[o + k] = data[p + k];
    p += literals;
    o += literals;
    if (p === end) return o; // the last sequence has literals only
    if (end - p < 2) fail('lz4: a match offset runs past its block');
    const offset = data[p] | (data[p + 1] << 8);
    p += 2;
    if (offset === 0 || offset > o - frameStart) fail(`lz4: match offset ${offset} reaches before the start of the output`);
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      for (let x = 255; x === 255;) {
        if (p >= end) fail('lz4: a match length runs past its block');
        x = data[p++];
        length += x;
      }
    }
    if (length > limit - o) fail('lz4: a match runs past the output bound');
    let from = o - offset;
    if (offset >= length) {
      out.copyWithin(o, from, from + length);
      o += length;
    } else {
      for (let k = 0; k < length; k++) out[o++] = out[from++];
    }
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_MAX = 128 << 10;

/** Walks zstd frames' headers and block headers; returns an upper bound of the output. */
function zstdBound(b: Uint8Array, maxBytes: number): number {
  let bound = 0;
  let p = 0;
  while (p < b.length) {
    if (b.length - p < 4) fail(`zstd: ${b.length - p} bytes after the last frame`);
    const magic = le32(b, p);
    if (isSkippable(magic)) {
      p = skippableFrameEnd('zstd', b, p);
      continue;
    }
    if (magic !== ZSTD_MAGIC) fail(`zstd: frame magic 0x${magic.toString(16).padStart(8, '0')} at byte ${p}, expected 0xfd2fb528`);
    if (b.length - p < 6) fail('zstd: the frame header is truncated');
    const fhd = b[p + 4];
    p += 5;
    const singleSegment = (fhd & 0x20) !== 0;
    if ((fhd & 0x08) !== 0) fail('zstd: the frame header\'s reserved bit is set');
    let windowSize = 0;
    if (!singleSegment) {
      const wd = b[p++];
      const base = 2 ** (10 + (wd >> 3));
      windowSize = base + (base / 8) * (wd & 7);
    }
    p += [0, 1, 2, 4][fhd & 3]; // dictionary id
    const fcsFlag = fhd >> 6;
    const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : 1 << fcsFlag;
    if (b.length - p < fcsBytes) fail('zstd: the frame header is truncated');
    let contentSize = -1;
    if (fcsBytes === 1) contentSize = b[p];
    else if (fcsBytes === 2) contentSize = (b[p] | (b[p + 1] << 8)) + 256;
    else if (fcsBytes === 4) contentSize = le32(b, p);
    else if (fcsBytes === 8) contentSize = le32(b, p) + le32(b, p + 4) * 2 ** 32;
    p += fcsBytes;
    if (contentSize > maxBytes) tooLarge('zstd', `its content size says ${contentSize} bytes`, maxBytes);
    if (singleSegment) windowSize = contentSize;
    const blockMax = Math.min(windowSize, ZSTD_BLOCK_MAX);
    for (let last = false; !last;) {
      if (b.length - p < 3) fail('zstd: the data ends inside a frame');
      const h = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
      p += 3;
      last = (h & 1) === 1;
      const type = (h >> 1) & 3;
      const size = h >>> 3;
      if (type === 3) fail('zstd: a block of the reserved type 3');
      if (type === 0) { bound += size; p += size; }
      else if (type === 1) { bound += size; p += 1; }
      else { bound += blockMax; p += size; }
      if (bound > maxBytes) tooLarge('zstd', `its blocks so far may hold ${bound} bytes`, maxBytes);
      if (p > b.length) fail('zstd: a block runs past the data');
    }
    if ((fhd & 0x04) !== 0) p += 4; // content checksum (checked by the decoder)
    if (p > b.length) fail('zstd: the content checksum is truncated');
  }
  return bound;
}

function unzstd(data: Uint8Array, maxBytes: number): Buffer {
  zstdBound(data, maxBytes);
  let out: Buffer;
  try {
    out = (zstdDecoder ??= new (zstd().Decoder)()).decodeSync(asBuffer(data));
  } catch (err) {
    if (err instanceof DecompressionError) throw err;
    return fail(`zstd: ${(err as Error).message}`);
  }
  if (out.length > maxBytes) tooLarge('zstd', `decoded ${out.length} bytes`, maxBytes);
  return out;
}

// ---------------------------------------------------------------- compression

/** Xerial block size: what snappy-java (and so Kafka's Java producer) uses. */
const XERIAL_BLOCK_BYTES = 32 * 1024;

/**
 * `data` compressed with Kafka codec `codec` (1-4), in the form Kafka's Java client
 * writes: a gzip member, xerial-framed snappy in 32 KiB blocks, an LZ4 frame of
 * independent 64 KiB blocks, a zstd frame (level 3, zstd's default).
 */
export function compress(codec: number, data: Uint8Array): Buffer {
  switch (codec) {
    case CODEC_GZIP: return zlib.gzipSync(data);
    case CODEC_SNAPPY: return xerialSnappy(data);
    case CODEC_LZ4: return lz4().compressFrameSync(asBuffer(data));
    case CODEC_ZSTD: return zstdEncoder(3).encodeSync(asBuffer(data));
    default: throw new RangeError(`${codecName(codec)} is not a compression codec (1 gzip, 2 snappy, 3 lz4, 4 zstd)`);
  }
}

function zstdEncoder(level: number): InstanceType<Zstd['Encoder']> {
  let e = zstdEncoders.get(level);
  if (e === undefined) {
    e = new (zstd().Encoder)(level);
    zstdEncoders.set(level, e);
  }
  return e;
}

/** Raw snappy, one block (what librdkafka writes). */
export function rawSnappyCompress(data: Uint8Array): Buffer {
  return snappy().compressSync(data);
}

function xerialSnappy(data: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from([...XERIAL_MAGIC, 0, 0, 0, 1, 0, 0, 0, 1])];
  for (let p = 0; p < data.length; p += XERIAL_BLOCK_BYTES) {
    const block = snappy().compressSync(data.subarray(p, Math.min(data.length, p + XERIAL_BLOCK_BYTES)));
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(block.length, 0);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}
