import test from 'ava';
import fc from 'fast-check';
import { CommitLogError } from '../../src/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_PREFIX_BYTES, FrameDecoder, encodeFrame, type Frame } from '../../src/net/protocol/frame.js';

interface Spec {
  header: Buffer;
  payload: Buffer;
}

function frameBytes(spec: Spec): Buffer {
  return Buffer.concat([encodeFrame(spec.header, spec.payload.length), spec.payload]);
}

function decodeAll(chunks: Buffer[], maxFrameBytes?: number): Frame[] {
  const decoder = new FrameDecoder(maxFrameBytes === undefined ? {} : { maxFrameBytes });
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (const frame of decoder) frames.push(frame);
  }
  return frames;
}

function plain(frames: Frame[]): Array<{ header: number[]; payload: number[] }> {
  return frames.map((f) => ({ header: [...f.header], payload: [...f.payload] }));
}

const specs: Spec[] = [
  { header: Buffer.from([0x08, 0x01, 0x10, 0x2a]), payload: Buffer.from('record batch bytes') },
  { header: Buffer.alloc(0), payload: Buffer.alloc(0) },
  { header: Buffer.from([0x12, 0x03, 0x61, 0x62, 0x63]), payload: Buffer.alloc(0) },
  { header: Buffer.alloc(0), payload: Buffer.from([0, 0, 0, 0, 0, 0, 0, 9]) },
  { header: Buffer.alloc(300, 7), payload: Buffer.alloc(1000, 0xab) },
];
const stream = Buffer.concat(specs.map(frameBytes));
const expected = specs.map((s) => ({ header: [...s.header], payload: [...s.payload] }));

function codeOf(err: unknown): string | undefined {
  return err instanceof CommitLogError ? err.code : undefined;
}

test('one frame has the documented bytes', (t) => {
  const header = Buffer.from([0x08, 0x01]);
  const prefix = encodeFrame(header, 3);
  t.deepEqual([...prefix], [0, 0, 0, 9, 0, 0, 0, 2, 0x08, 0x01]);
  const frames = decodeAll([Buffer.concat([prefix, Buffer.from('abc')])]);
  t.is(frames.length, 1);
  t.deepEqual([...frames[0]!.header], [0x08, 0x01]);
  t.is(frames[0]!.payload.toString(), 'abc');
  t.is(FRAME_PREFIX_BYTES, 8);
  t.is(DEFAULT_MAX_FRAME_BYTES, 16777216);
});

test('big-endian lengths above 2^16 and 2^24 are written exactly', (t) => {
  const prefix = encodeFrame(Buffer.alloc(0x0102), 0x01020304 - 4 - 0x0102, 0xffffffff);
  t.deepEqual([...prefix.subarray(0, 8)], [0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x01, 0x02]);
});

test('frames split at every byte boundary reassemble identically', (t) => {
  for (let cut = 0; cut <= stream.length; cut++) {
    t.deepEqual(plain(decodeAll([stream.subarray(0, cut), stream.subarray(cut)])), expected, `cut at ${cut}`);
  }
  const bytes = [...stream].map((b) => Buffer.from([b]));
  t.deepEqual(plain(decodeAll(bytes)), expected, 'one byte at a time');
});

test('frames split at every pair of boundaries reassemble identically', (t) => {
  const small = Buffer.concat(specs.slice(0, 4).map(frameBytes));
  const want = expected.slice(0, 4);
  for (let a = 0; a <= small.length; a++) {
    for (let b = a; b <= small.length; b++) {
      const frames = decodeAll([small.subarray(0, a), small.subarray(a, b), small.subarray(b)]);
      if (JSON.stringify(plain(frames)) !== JSON.stringify(want)) t.fail(`cuts at ${a}, ${b}`);
    }
  }
  t.pass();
});

test('many frames in one chunk decode as views of that chunk, without copying', (t) => {
  const many: Spec[] = Array.from({ length: 1000 }, (_, i) => ({
    header: Buffer.from([i & 0xff, i >> 8]),
    payload: Buffer.alloc(i % 50, i & 0xff),
  }));
  const chunk = Buffer.concat(many.map(frameBytes));
  const decoder = new FrameDecoder();
  decoder.push(chunk);
  const frames = [...decoder];
  t.is(frames.length, 1000);
  frames.forEach((frame, i) => {
    if (!frame.header.equals(many[i]!.header) || !frame.payload.equals(many[i]!.payload)) t.fail(`frame ${i}`);
    if (frame.header.buffer !== chunk.buffer || frame.payload.buffer !== chunk.buffer) t.fail(`frame ${i} was copied`);
  });
  t.is(decoder.bufferedBytes, 0);
  t.is(decoder.next(), undefined);
});

test('a frame spanning chunks is gathered into one buffer, the next one is a view again', (t) => {
  const a = frameBytes(specs[0]!);
  const b = frameBytes(specs[4]!);
  const chunk1 = a.subarray(0, 10);
  const chunk2 = Buffer.concat([a.subarray(10), b]);
  const decoder = new FrameDecoder();
  decoder.push(chunk1);
  t.is(decoder.next(), undefined);
  t.is(decoder.bufferedBytes, 10);
  decoder.push(chunk2);
  const [first, second] = [...decoder];
  t.true(first!.payload.equals(specs[0]!.payload));
  t.true(second!.payload.equals(specs[4]!.payload));
  // Overwriting the pushed chunk shows which frame is a copy and which a view.
  chunk2.fill(0xee);
  t.true(first!.payload.equals(specs[0]!.payload));
  t.is(second!.payload[0], 0xee);
});

test('a length over the maximum is rejected from its 8-byte prefix, before any allocation', (t) => {
  const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
  const prefix = Buffer.from([0, 0, 4, 1, 0, 0, 0, 0]); // 1025
  const original = Buffer.allocUnsafe;
  let allocations = 0;
  Buffer.allocUnsafe = ((size: number) => {
    allocations++;
    return original(size);
  }) as typeof Buffer.allocUnsafe;
  try {
    decoder.push(prefix.subarray(0, 3));
    const err = t.throws(() => decoder.push(prefix.subarray(3)), { instanceOf: CommitLogError });
    t.is(err?.code, 'ERR_FRAME_TOO_LARGE');
    t.regex(err?.message ?? '', /1025 exceeds the maximum of 1024/);
  } finally {
    Buffer.allocUnsafe = original;
  }
  t.is(allocations, 0);
  t.is(decoder.bufferedBytes, 0);
  // Sticky: the stream has lost its framing.
  t.throws(() => decoder.push(Buffer.from([1])), { code: 'ERR_FRAME_TOO_LARGE' });
  t.throws(() => decoder.next(), { code: 'ERR_FRAME_TOO_LARGE' });
});

test('the default maximum is 16 MiB: 0xFFFFFFFF is refused, exactly the maximum is accepted', (t) => {
  t.throws(() => new FrameDecoder().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])), { code: 'ERR_FRAME_TOO_LARGE' });
  t.throws(() => new FrameDecoder().push(Buffer.from([0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0])), { code: 'ERR_FRAME_TOO_LARGE' });
  const decoder = new FrameDecoder({ maxFrameBytes: 12 });
  decoder.push(Buffer.concat([encodeFrame(Buffer.from([1, 2]), 6, 12), Buffer.alloc(6, 3)]));
  const frame = decoder.next();
  t.deepEqual([...frame!.payload], [3, 3, 3, 3, 3, 3]);
});

test('zero and too-short lengths and headers longer than the frame are ERR_BAD_FRAME', (t) => {
  const cases: Array<[string, number[]]> = [
    ['zero-length frame', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['length shorter than the header length field', [0, 0, 0, 3, 0, 0, 0, 0]],
    ['header longer than the frame', [0, 0, 0, 6, 0, 0, 0, 3]],
    ['header length near 2^32', [0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff]],
  ];
  for (const [name, bytes] of cases) {
    const err = t.throws(() => decodeAll([Buffer.from(bytes)]), { instanceOf: CommitLogError }, name);
    t.is(err?.code, 'ERR_BAD_FRAME', name);
  }
  // A bad frame after good ones: the good ones come out first.
  const decoder = new FrameDecoder();
  decoder.push(Buffer.concat([frameBytes(specs[0]!), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])]));
  t.truthy(decoder.next());
  t.throws(() => decoder.next(), { code: 'ERR_BAD_FRAME' });
});

test('encodeFrame refuses frames over the maximum and bad arguments', (t) => {
  t.throws(() => encodeFrame(Buffer.alloc(10), DEFAULT_MAX_FRAME_BYTES), { code: 'ERR_FRAME_TOO_LARGE' });
  t.notThrows(() => encodeFrame(Buffer.alloc(10), DEFAULT_MAX_FRAME_BYTES - 14));
  t.throws(() => encodeFrame(Buffer.alloc(10), DEFAULT_MAX_FRAME_BYTES - 13), { code: 'ERR_FRAME_TOO_LARGE' });
  t.throws(() => encodeFrame(Buffer.alloc(1), -1), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeFrame(Buffer.alloc(1), 1.5), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeFrame('x' as unknown as Uint8Array, 0), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeFrame(Buffer.alloc(1), 0, 2 ** 32), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => new FrameDecoder({ maxFrameBytes: 3 }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => new FrameDecoder().push('x' as unknown as Buffer), { code: 'ERR_INVALID_ARGUMENT' });
});

// ---- property-based fuzzing (fast-check prints the seed and the shrunk input on failure)

const FUZZ_MAX = 256;

/** Splits bytes at the given (unsorted, possibly repeated) cut points. */
function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(start, p));
    start = p;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** Feeds chunks; returns the frames and the error code that ended decoding, if any. */
function fuzzDecode(chunks: Buffer[]): { frames: Frame[]; code?: string } {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({ maxFrameBytes: FUZZ_MAX });
  try {
    for (const chunk of chunks) {
      decoder.push(chunk);
      for (const frame of decoder) frames.push(frame);
    }
  } catch (err) {
    const code = codeOf(err);
    if (code !== 'ERR_BAD_FRAME' && code !== 'ERR_FRAME_TOO_LARGE') throw err;
    return { frames, code };
  }
  return { frames };
}

const frameSpec = fc.record({
  header: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  payload: fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
});

function ensureWellFormed(frames: Frame[]): boolean {
  return frames.every((f) => 4 + f.header.length + f.payload.length <= FUZZ_MAX);
}

test('fuzz: random bytes in random chunks yield frames or ERR_BAD_FRAME / ERR_FRAME_TOO_LARGE only', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
      const { frames } = fuzzDecode(splitAt(Buffer.from(bytes), cuts));
      return ensureWellFormed(frames);
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

test('fuzz: valid frames in random chunks decode exactly', (t) => {
  fc.assert(
    fc.property(fc.array(frameSpec, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }), (list, cuts) => {
      const bytes = Buffer.concat(list.map(frameBytes));
      const result = fuzzDecode(splitAt(bytes, cuts));
      return result.code === undefined && JSON.stringify(plain(result.frames)) === JSON.stringify(plain(list));
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
);

test('fuzz: mutated valid frames yield frames or ERR_BAD_FRAME / ERR_FRAME_TOO_LARGE only', (t) => {
  fc.assert(
    fc.property(
      fc.array(frameSpec, { minLength: 1, maxLength: 8 }),
      fc.array(mutation, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (list, mutations, cuts) => {
        const bytes = [...Buffer.concat(list.map(frameBytes))];
        for (const m of mutations) {
          const at = m.at % (bytes.length + 1);
          if (m.kind === 'flip' && at < bytes.length) bytes[at] = m.value;
          else if (m.kind === 'insert') bytes.splice(at, 0, m.value);
          else if (m.kind === 'delete') bytes.splice(at, 1);
          else if (m.kind === 'truncate') bytes.length = at;
        }
        const { frames } = fuzzDecode(splitAt(Buffer.from(bytes), cuts));
        return ensureWellFormed(frames);
      },
    ),
    { numRuns: 5000 },
  );
  t.pass();
});
