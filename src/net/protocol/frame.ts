/**
 * Framing of the broker protocol: cuts a TCP byte stream into frames and builds the
 * prefix of outgoing ones. Knows nothing of protobuf; messages.ts decodes headers.
 *
 * Wire layout of one frame (all integers big-endian, docs/protocol.md):
 *
 *   0       4             8                8+headerLength        4+length
 *   +-------+-------------+----------------+---------------------+
 *   |length | headerLength| header (proto) | payload (raw bytes) |
 *   +-------+-------------+----------------+---------------------+
 *
 *   length        u32  bytes after this field: 4 + headerLength + payload length;
 *                      at least 4, at most the receiver's maxFrameBytes
 *   headerLength  u32  at most length - 4; the payload is what remains
 *
 * The payload (record batches) is never copied into the header, so a fetch response
 * is `encodeFrame(header, n)` followed by n bytes sent with sendfile.
 *
 * Copies: a frame that lies inside one pushed chunk is returned as a subarray of it
 * (header and payload are views, so callers must not reuse a chunk after pushing it,
 * and should copy a payload they keep); only a frame that spans chunks is gathered
 * into one new buffer, allocated after its length has been checked against the
 * maximum. A bad frame leaves the stream without a frame boundary, so the decoder's
 * failure is sticky: every later call throws the same error.
 *
 * Not thread-safe; one decoder per connection.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';

/** The receiver's default limit on `length` (everything after the length field): 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** The two u32 fields before the header. */
export const FRAME_PREFIX_BYTES = 8;

const U32_MAX = 0xffffffff;

export interface Frame {
  /** The protobuf header message (RequestHeader or ResponseHeader). */
  header: Buffer;
  /** The raw payload after the header; empty when the frame has none. */
  payload: Buffer;
}

export interface FrameDecoderOptions {
  /** Largest accepted `length` field; default DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
}

/**
 * Returns the 8-byte prefix followed by the header; the caller writes `payloadLength`
 * bytes of payload right after it. Throws ERR_FRAME_TOO_LARGE when the frame would
 * exceed `maxFrameBytes` (the peer's limit, default 16 MiB).
 */
export function encodeFrame(header: Uint8Array, payloadLength: number, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  if (!(header instanceof Uint8Array)) throw invalidArgument('header must be a Uint8Array');
  if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
    throw invalidArgument(`payloadLength must be a non-negative safe integer, got ${payloadLength}`);
  }
  ensureMaxFrameBytes(maxFrameBytes);
  const length = 4 + header.byteLength + payloadLength;
  if (length > maxFrameBytes) {
    throw new CommitLogError(
      ErrorCode.FRAME_TOO_LARGE,
      `frame of ${length} bytes (header ${header.byteLength}, payload ${payloadLength}) exceeds the maximum of ${maxFrameBytes}`,
    );
  }
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + header.byteLength);
  out.writeUInt32BE(length, 0);
  out.writeUInt32BE(header.byteLength, 4);
  out.set(header, FRAME_PREFIX_BYTES);
  return out;
}

/**
 * Streaming decoder: push chunks as they arrive, then take complete frames with
 * `next()` or a `for...of` over the decoder. Throws ERR_FRAME_TOO_LARGE or
 * ERR_BAD_FRAME as soon as a frame's prefix is known to be invalid (from `push` or
 * `next`), before buffering or allocating for it.
 */
export class FrameDecoder implements Iterable<Frame> {
  readonly maxFrameBytes: number;
  private chunks: Buffer[] = [];
  /** Index of the first live chunk in `chunks` (consumed ones are dropped lazily). */
  private first = 0;
  /** Bytes of chunks[first] already consumed. */
  private skip = 0;
  private buffered = 0;
  /** `length` of the frame being assembled, once its prefix has been checked. */
  private pendingLength = -1;
  private failure: CommitLogError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    ensureMaxFrameBytes(max);
    this.maxFrameBytes = max;
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    if (!(chunk instanceof Uint8Array)) throw invalidArgument('chunk must be a Buffer');
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    this.checkPrefix();
  }

  /** The next complete frame, or undefined until more bytes arrive. */
  next(): Frame | undefined {
    if (this.failure !== undefined) throw this.failure;
    if (!this.checkPrefix()) return undefined;
    const length = this.pendingLength;
    if (this.buffered < 4 + length) return undefined;
    this.consume(4);
    const frame = this.take(length);
    this.pendingLength = -1;
    const headerLength = frame.readUInt32BE(0);
    return { header: frame.subarray(4, 4 + headerLength), payload: frame.subarray(4 + headerLength) };
  }

  *[Symbol.iterator](): Iterator<Frame> {
    for (let frame = this.next(); frame !== undefined; frame = this.next()) yield frame;
  }

  /** Validates the prefix of the next frame once its 8 bytes are in; true when valid. */
  private checkPrefix(): boolean {
    if (this.pendingLength >= 0) return true;
    if (this.buffered < FRAME_PREFIX_BYTES) return false;
    const length = this.peekU32(0);
    const headerLength = this.peekU32(4);
    if (length > this.maxFrameBytes) {
      this.fail(ErrorCode.FRAME_TOO_LARGE, `frame length ${length} exceeds the maximum of ${this.maxFrameBytes}`);
    }
    if (length < 4) this.fail(ErrorCode.BAD_FRAME, `frame length ${length} is shorter than its 4-byte header length field`);
    if (headerLength > length - 4) {
      this.fail(ErrorCode.BAD_FRAME, `header length ${headerLength} exceeds the ${length - 4} bytes left in the frame`);
    }
    this.pendingLength = length;
    return true;
  }

  private fail(code: typeof ErrorCode.BAD_FRAME | typeof ErrorCode.FRAME_TOO_LARGE, message: string): never {
    this.failure = new CommitLogError(code, message);
    // Nothing after a bad prefix can be framed; drop it so a caller that keeps the
    // decoder around does not keep the chunks alive.
    this.chunks = [];
    this.first = 0;
    this.skip = 0;
    this.buffered = 0;
    throw this.failure;
  }

  /** Reads a u32 at `at` bytes past the read position, across chunk boundaries. */
  private peekU32(at: number): number {
    const head = this.chunks[this.first]!;
    const start = this.skip + at;
    if (start + 4 <= head.byteLength) return head.readUInt32BE(start);
    let value = 0;
    for (let i = 0; i < 4; i++) value = value * 256 + this.peekByte(at + i);
    return value;
  }

  private peekByte(at: number): number {
    let pos = this.skip + at;
    for (let i = this.first; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (pos < chunk.byteLength) return chunk[pos]!;
      pos -= chunk.byteLength;
    }
    throw new Error('peekByte past the buffered bytes');
  }

  /** Advances the read position by n buffered bytes. */
  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const head = this.chunks[this.first]!;
      const left = head.byteLength - this.skip;
      if (n < left) {
        this.skip += n;
        return;
      }
      n -= left;
      this.dropHead();
    }
  }

  /** Removes and returns the next n buffered bytes: a view when they lie in one chunk. */
  private take(n: number): Buffer {
    const head = this.chunks[this.first]!;
    if (this.skip + n <= head.byteLength) {
      const view = head.subarray(this.skip, this.skip + n);
      this.consume(n);
      return view;
    }
    // n was checked against maxFrameBytes in checkPrefix before anything was buffered for it.
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.first]!;
      const count = Math.min(n - filled, chunk.byteLength - this.skip);
      chunk.copy(out, filled, this.skip, this.skip + count);
      filled += count;
      this.consume(count);
    }
    return out;
  }

  private dropHead(): void {
    this.chunks[this.first] = EMPTY;
    this.first++;
    this.skip = 0;
    // Compact once the dead prefix dominates, so the array stays proportional to
    // the live chunks without shifting it on every frame.
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 64 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}

const EMPTY = Buffer.alloc(0);

function ensureMaxFrameBytes(max: number): void {
  if (!Number.isInteger(max) || max < 4 || max > U32_MAX) {
    throw invalidArgument(`maxFrameBytes must be an integer in [4, ${U32_MAX}], got ${max}`);
  }
}
