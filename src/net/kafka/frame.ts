/**
 * Cuts a TCP byte stream into Kafka frames: int32 size, then that many bytes. Several
 * frames in one chunk and one frame spread over many chunks both happen (clients
 * pipeline requests; large produce requests span reads).
 *
 * A frame lying inside one pushed chunk is returned as a view of it (callers must not
 * reuse a chunk after pushing it); a frame spanning chunks is gathered into one new
 * Buffer, allocated only after its size was checked against maxFrameBytes. A bad size
 * leaves the stream without a frame boundary, so the failure is sticky: every later
 * push throws the same error. Not thread-safe; one splitter per connection.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import { badRequest } from './primitives.js';

/** Default limit on a frame's size field: 100 MiB, Kafka's socket.request.max.bytes. */
export const DEFAULT_MAX_KAFKA_FRAME_BYTES = 100 * 1024 * 1024;

export class KafkaFrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: CommitLogError | null = null;

  constructor(readonly maxFrameBytes = DEFAULT_MAX_KAFKA_FRAME_BYTES) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > 0x7fffffff) {
      throw invalidArgument(`maxFrameBytes must be an integer in [0, 2^31-1], got ${maxFrameBytes}`);
    }
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Returns every frame (size prefix stripped) completed by this chunk. */
  push(chunk: Buffer): Buffer[] {
    if (this.failure !== null) throw this.failure;
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.pendingBytes < 4) break;
      const size = this.peekSize();
      if (size < 0) this.fail(badRequest(`negative frame size ${size}`));
      if (size > this.maxFrameBytes) {
        this.fail(new CommitLogError(ErrorCode.FRAME_TOO_LARGE, `Kafka frame of ${size} bytes exceeds the maximum of ${this.maxFrameBytes}`));
      }
      if (this.pendingBytes < 4 + size) break;
      frames.push(this.takeFrame(size));
    }
    return frames;
  }

  private fail(err: CommitLogError): never {
    this.failure = err;
    this.pending = [];
    this.pendingBytes = 0;
    throw err;
  }

  private peekSize(): number {
    const first = this.pending[0]!;
    if (first.length >= 4) return first.readInt32BE(0);
    const head = Buffer.alloc(4);
    let n = 0;
    for (const c of this.pending) {
      n += c.copy(head, n, 0, Math.min(c.length, 4 - n));
      if (n === 4) break;
    }
    return head.readInt32BE(0);
  }

  private takeFrame(size: number): Buffer {
    const total = 4 + size;
    const first = this.pending[0]!;
    let frame: Buffer;
    if (first.length >= total) {
      frame = first.subarray(4, total);
      this.consume(total);
      return frame;
    }
    frame = Buffer.allocUnsafe(size);
    let skip = 4;
    let filled = 0;
    for (const c of this.pending) {
      const from = Math.min(skip, c.length);
      skip -= from;
      filled += c.copy(frame, filled, from, Math.min(c.length, from + size - filled));
      if (filled === size) break;
    }
    this.consume(total);
    return frame;
  }

  private consume(n: number): void {
    this.pendingBytes -= n;
    while (n > 0) {
      const c = this.pending[0]!;
      if (c.length <= n) {
        n -= c.length;
        this.pending.shift();
      } else {
        this.pending[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}
