import { readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import fc from 'fast-check';
import { CommitLogError } from '../../../src/errors.js';
import { API_SPECS, decodeRequest, decodeResponse } from '../../../src/net/kafka/index.js';

// Malformed input may only ever produce ERR_KAFKA_BAD_REQUEST: no RangeError, no
// TypeError, no hang, no huge allocation (lengths are checked against the frame).
function onlyTyped(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof CommitLogError && err.code === 'ERR_KAFKA_BAD_REQUEST') return true;
    throw err;
  }
}

const dir = new URL('./fixtures/', import.meta.url);
const golden: Buffer[] = readdirSync(dir).filter((f) => f.endsWith('.json'))
  .flatMap((f) => (JSON.parse(readFileSync(new URL(f, dir), 'utf8')).requests as { hex: string }[]).map((r) => Buffer.from(r.hex, 'hex')));

test('random bytes decode or fail with the typed error', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => onlyTyped(() => decodeRequest(Buffer.from(b)))), { numRuns: 3000 });
  t.pass();
});

test('random bodies behind a valid header, for every API and version', (t) => {
  const header = fc.constantFrom(...API_SPECS.flatMap((s) => Array.from({ length: s.maxVersion - s.minVersion + 1 }, (_, i) => [s.key, s.minVersion + i] as const)));
  fc.assert(fc.property(header, fc.uint8Array({ maxLength: 120 }), ([key, v], body) => {
    const h = Buffer.alloc(10);
    h.writeInt16BE(key, 0);
    h.writeInt16BE(v, 2);
    h.writeInt32BE(7, 4);
    h.writeInt16BE(-1, 8);
    return onlyTyped(() => decodeRequest(Buffer.concat([h, Buffer.from(body)])))
      && onlyTyped(() => decodeResponse(key, v, Buffer.from(body)));
  }), { numRuns: 3000 });
  t.pass();
});

test('mutated real requests (bytes flipped, truncated, spliced) fail only with the typed error', (t) => {
  const mutation = fc.record({
    i: fc.nat(golden.length - 1),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    big: fc.option(fc.nat(), { nil: undefined }),
  });
  fc.assert(fc.property(mutation, ({ i, flips, cut, big }) => {
    const b = Buffer.from(golden[i]!);
    for (const [at, v] of flips) b[at % b.length] = v;
    // A length field of 2^31-1 (or a huge varint) somewhere in the frame.
    if (big !== undefined && b.length > 4) b.writeInt32BE(0x7fffffff, big % (b.length - 3));
    const frame = cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
    return onlyTyped(() => decodeRequest(frame));
  }), { numRuns: 5000 });
  t.pass();
});

test('every truncation of every real request is refused with the typed error', (t) => {
  for (const g of golden) {
    for (let n = 0; n < g.length; n++) {
      const err = t.throws(() => decodeRequest(g.subarray(0, n)));
      if (!(err instanceof CommitLogError) || err.code !== 'ERR_KAFKA_BAD_REQUEST') t.fail(`truncation to ${n}: ${String(err)}`);
    }
  }
});

test('an array count of 2^31-1 is refused without allocating', (t) => {
  // Metadata v1 (api 3, version 1, correlation 1, null client id), topics count 2^31-1, nothing after.
  const metadata = Buffer.from('0003' + '0001' + '00000001' + 'ffff' + '7fffffff', 'hex');
  const before = process.memoryUsage().arrayBuffers;
  t.throws(() => decodeRequest(metadata), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.true(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  // A bytes length of 2^31-1 in a JoinGroup protocol's metadata.
  const join = Buffer.from('000b0000000000010000' + '0001' + '67' + '00000064' + '0000' + '0008' + '636f6e73756d6572' + '00000001' + '0001' + '72' + '7fffffff', 'hex');
  t.throws(() => decodeRequest(join), { code: 'ERR_KAFKA_BAD_REQUEST' });
});
