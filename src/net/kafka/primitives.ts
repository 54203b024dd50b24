/**
 * Kafka protocol primitives: a bounds-checked Reader over one frame and a growable
 * Writer. Everything is big-endian; varints are protobuf-style base-128, little end
 * first, with zigzag for the signed ones.
 *
 *   int8/16/32, uint32, float64, boolean (1 byte, non-zero = true), uuid (16 bytes)
 *   int64            8 bytes; read as a number, refused outside ±(2^53-1) (see docs/kafka.md)
 *   string           int16 length, then UTF-8; -1 = null
 *   compact string   uvarint length+1, then UTF-8; 0 = null
 *   bytes            int32 length, then bytes; -1 = null
 *   compact bytes    uvarint length+1; 0 = null
 *   array            int32 count (-1 = null) or compact uvarint count+1 (0 = null)
 *   tagged fields    uvarint count, then per field: uvarint tag, uvarint size, bytes
 *
 * Decoding never trusts a length: every read checks it against what is left of the
 * frame first and throws ERR_KAFKA_BAD_REQUEST otherwise, so a count of 2^31 costs
 * nothing (no allocation happens before the check). Strings and bytes read are views
 * of the frame (subarray, no copy): callers keep them only as long as the frame.
 *
 * Not thread-safe; one Reader per frame, one Writer per message.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';

export const MAX_SAFE_INT64 = Number.MAX_SAFE_INTEGER;

export function badRequest(message: string, position?: number): CommitLogError {
  const where = position === undefined ? '' : ` at byte ${position}`;
  return new CommitLogError(ErrorCode.KAFKA_BAD_REQUEST, `malformed Kafka message${where}: ${message}`, position === undefined ? {} : { position });
}

export class Reader {
  pos: number;

  constructor(readonly buf: Buffer, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Ensures n more bytes exist; returns the start position and advances past them. */
  take(n: number, what: string): number {
    if (n < 0 || n > this.end - this.pos) throw badRequest(`${what} needs ${n} bytes, ${this.end - this.pos} left`, this.pos);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  int8(): number { return this.buf.readInt8(this.take(1, 'int8')); }
  int16(): number { return this.buf.readInt16BE(this.take(2, 'int16')); }
  uint16(): number { return this.buf.readUInt16BE(this.take(2, 'uint16')); }
  int32(): number { return this.buf.readInt32BE(this.take(4, 'int32')); }
  uint32(): number { return this.buf.readUInt32BE(this.take(4, 'uint32')); }
  float64(): number { return this.buf.readDoubleBE(this.take(8, 'float64')); }
  bool(): boolean { return this.buf[this.take(1, 'boolean')] !== 0; }

  int64(): number {
    const at = this.take(8, 'int64');
    const v = this.buf.readBigInt64BE(at);
    if (v > BigInt(MAX_SAFE_INT64) || v < -BigInt(MAX_SAFE_INT64)) throw badRequest(`int64 ${v} outside ±(2^53-1)`, at);
    return Number(v);
  }

  uuid(): string {
    const at = this.take(16, 'uuid');
    const h = this.buf.toString('hex', at, at + 16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Unsigned varint of at most 32 bits (5 bytes). */
  uvarint(): number {
    const at = this.pos;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.buf[this.take(1, 'varint')]!;
      if (i === 4 && b > 0x0f) throw badRequest('unsigned varint exceeds 32 bits', at);
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value;
    }
    throw badRequest('unsigned varint longer than 5 bytes', at);
  }

  /** Zigzag varint of at most 32 bits. */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** Zigzag varlong (at most 10 bytes), refused outside ±(2^53-1). */
  varlong(): number {
    const at = this.pos;
    let u = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.take(1, 'varlong')]!;
      u |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        const v = (u & 1n) === 0n ? u >> 1n : -((u + 1n) >> 1n);
        if (v > BigInt(MAX_SAFE_INT64) || v < -BigInt(MAX_SAFE_INT64)) throw badRequest(`varlong ${v} outside ±(2^53-1)`, at);
        return Number(v);
      }
    }
    throw badRequest('varlong longer than 10 bytes', at);
  }

  /** A length prefix: int16/int32 (-1 = null) or compact uvarint (0 = null); -1 for null. */
  length(kind: 'int16' | 'int32' | 'compact'): number {
    const at = this.pos;
    const n = kind === 'int16' ? this.int16() : kind === 'int32' ? this.int32() : this.uvarint() - 1;
    if (n < -1) throw badRequest(`negative length ${n}`, at);
    return n;
  }

  /** Reads a length-prefixed byte range; returns null for a null length. */
  lengthPrefixed(kind: 'int16' | 'int32' | 'compact', what: string): Buffer | null {
    const n = this.length(kind);
    if (n === -1) return null;
    const at = this.take(n, what);
    return this.buf.subarray(at, at + n);
  }

  string(compact: boolean): string | null {
    const b = this.lengthPrefixed(compact ? 'compact' : 'int16', 'string');
    return b === null ? null : b.toString('utf8');
  }

  bytes(compact: boolean): Buffer | null {
    return this.lengthPrefixed(compact ? 'compact' : 'int32', 'bytes');
  }

  /**
   * An array count (-1 for null). Each element takes at least one byte, so a count
   * larger than what is left is refused before anything is allocated.
   */
  arrayCount(compact: boolean, minElementBytes = 1): number {
    const at = this.pos;
    const n = this.length(compact ? 'compact' : 'int32');
    if (n > 0 && n * Math.max(1, minElementBytes) > this.remaining) {
      throw badRequest(`array of ${n} elements cannot fit in the ${this.remaining} bytes left`, at);
    }
    return n;
  }
}

function checkInt(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidArgument(`${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * Appends to one growing buffer. `cut()` ends the current chunk so a caller can put
 * an external byte range (file data sent with sendfile) between two chunks.
 */
export class Writer {
  private buf: Buffer;
  private start = 0;
  pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, used + n, 256));
    // Chunks cut earlier keep views of the old buffer; only the open chunk moves.
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = used;
  }

  /** Closes the open chunk (possibly empty) and starts a new one; returns it. */
  cut(): Buffer {
    const c = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    return c;
  }

  /** The open chunk's bytes (a view). */
  current(): Buffer {
    return this.buf.subarray(this.start, this.pos);
  }

  int8(v: number): void { checkInt(v, -0x80, 0x7f, 'int8'); this.ensure(1); this.pos = this.buf.writeInt8(v, this.pos); }
  int16(v: number): void { checkInt(v, -0x8000, 0x7fff, 'int16'); this.ensure(2); this.pos = this.buf.writeInt16BE(v, this.pos); }
  uint16(v: number): void { checkInt(v, 0, 0xffff, 'uint16'); this.ensure(2); this.pos = this.buf.writeUInt16BE(v, this.pos); }
  int32(v: number): void { checkInt(v, -0x80000000, 0x7fffffff, 'int32'); this.ensure(4); this.pos = this.buf.writeInt32BE(v, this.pos); }
  uint32(v: number): void { checkInt(v, 0, 0xffffffff, 'uint32'); this.ensure(4); this.pos = this.buf.writeUInt32BE(v, this.pos); }
  int64(v: number): void {
    checkInt(v, -MAX_SAFE_INT64, MAX_SAFE_INT64, 'int64');
    this.ensure(8);
    this.pos = this.buf.writeBigInt64BE(BigInt(v), this.pos);
  }
  float64(v: number): void {
    if (typeof v !== 'number') throw invalidArgument(`float64 must be a number, got ${String(v)}`);
    this.ensure(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
  }
  bool(v: boolean): void {
    if (typeof v !== 'boolean') throw invalidArgument(`boolean expected, got ${String(v)}`);
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }
  uuid(v: string): void {
    if (typeof v !== 'string' || !UUID_RE.test(v)) throw invalidArgument(`uuid must be 32 hex digits, got ${String(v)}`);
    this.ensure(16);
    this.pos += this.buf.write(v.replace(/-/g, ''), this.pos, 16, 'hex');
  }

  uvarint(v: number): void {
    checkInt(v, 0, 0xffffffff, 'unsigned varint');
    this.ensure(5);
    while (v > 0x7f) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  varint(v: number): void {
    checkInt(v, -0x80000000, 0x7fffffff, 'varint');
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  varlong(v: number): void {
    checkInt(v, -MAX_SAFE_INT64, MAX_SAFE_INT64, 'varlong');
    let u = v >= 0 ? BigInt(v) << 1n : (BigInt(-v) << 1n) - 1n;
    this.ensure(10);
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  /** A length prefix; -1 means null (compact: 0). */
  length(kind: 'int16' | 'int32' | 'compact', n: number): void {
    if (kind === 'int16') this.int16(n);
    else if (kind === 'int32') this.int32(n);
    else this.uvarint(n + 1);
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(v: string | null, compact: boolean): void {
    if (v === null) return this.length(compact ? 'compact' : 'int16', -1);
    if (typeof v !== 'string') throw invalidArgument(`string expected, got ${String(v)}`);
    const n = Buffer.byteLength(v, 'utf8');
    if (!compact && n > 0x7fff) throw invalidArgument(`string of ${n} bytes exceeds the int16 length`);
    this.length(compact ? 'compact' : 'int16', n);
    this.ensure(n);
    this.pos += this.buf.write(v, this.pos, n, 'utf8');
  }

  bytes(v: Uint8Array | null, compact: boolean): void {
    if (v === null) return this.length(compact ? 'compact' : 'int32', -1);
    if (!(v instanceof Uint8Array)) throw invalidArgument(`bytes must be a Buffer, got ${String(v)}`);
    this.length(compact ? 'compact' : 'int32', v.length);
    this.raw(v);
  }
}
