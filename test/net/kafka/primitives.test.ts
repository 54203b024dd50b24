import test from 'ava';
import fc from 'fast-check';
import { Reader, Writer } from '../../../src/net/kafka/primitives.js';

function written(fn: (w: Writer) => void): Buffer {
  const w = new Writer(1);
  fn(w);
  return Buffer.from(w.cut());
}

test('varint, varlong and unsigned varint round-trip (zigzag for the signed ones)', (t) => {
  fc.assert(fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.maxSafeInteger(), fc.integer({ min: 0, max: 0xffffffff }), (a, b, c) => {
    const r = new Reader(written((w) => { w.varint(a); w.varlong(b); w.uvarint(c); }));
    return r.varint() === a && r.varlong() === b && r.uvarint() === c && r.remaining === 0;
  }));
  t.is(written((w) => w.varint(-1)).toString('hex'), '01');
  t.is(written((w) => w.varint(1)).toString('hex'), '02');
  t.is(written((w) => w.uvarint(300)).toString('hex'), 'ac02');
  t.is(written((w) => w.varlong(-Number.MAX_SAFE_INTEGER)).toString('hex'), 'fdffffffffffff1f');
});

test('over-long or over-wide varints are refused', (t) => {
  t.throws(() => new Reader(Buffer.from('ffffffff1f', 'hex')).uvarint(), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => new Reader(Buffer.from('8080808080', 'hex')).uvarint(), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => new Reader(Buffer.from('80', 'hex')).uvarint(), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => new Reader(Buffer.from('ffffffffffffffffffff01', 'hex')).varlong(), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.is(new Reader(Buffer.from('ffffffff0f', 'hex')).uvarint(), 0xffffffff);
});

test('int64 is a number within ±(2^53-1); beyond is refused, not rounded', (t) => {
  const b = written((w) => { w.int64(-1); w.int64(Number.MAX_SAFE_INTEGER); });
  const r = new Reader(b);
  t.is(r.int64(), -1);
  t.is(r.int64(), Number.MAX_SAFE_INTEGER);
  const big = Buffer.alloc(8);
  big.writeBigInt64BE(2n ** 53n);
  t.throws(() => new Reader(big).int64(), { code: 'ERR_KAFKA_BAD_REQUEST' });
  big.writeBigInt64BE(-(2n ** 63n));
  t.throws(() => new Reader(big).int64(), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => written((w) => w.int64(2 ** 53)), { code: 'ERR_INVALID_ARGUMENT' });
});

test('strings and bytes: int16/int32 or compact lengths, null as -1 or 0', (t) => {
  t.is(written((w) => w.string('ab', false)).toString('hex'), '00026162');
  t.is(written((w) => w.string('ab', true)).toString('hex'), '036162');
  t.is(written((w) => w.string(null, false)).toString('hex'), 'ffff');
  t.is(written((w) => w.string(null, true)).toString('hex'), '00');
  t.is(written((w) => w.bytes(Buffer.from([9]), false)).toString('hex'), '0000000109');
  t.is(written((w) => w.bytes(null, true)).toString('hex'), '00');
  fc.assert(fc.property(fc.option(fc.string({ unit: 'grapheme' }), { nil: null }), fc.boolean(), (s, compact) => {
    const r = new Reader(written((w) => w.string(s, compact)));
    return r.string(compact) === s && r.remaining === 0;
  }));
});

test('a length past the end is refused; a length below -1 too', (t) => {
  t.throws(() => new Reader(Buffer.from('0005616263', 'hex')).string(false), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => new Reader(Buffer.from('7fffffff', 'hex')).bytes(false), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => new Reader(Buffer.from('fffe', 'hex')).string(false), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.throws(() => new Reader(Buffer.from('7fffffff', 'hex')).arrayCount(false), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.is(new Reader(Buffer.from('ffffffff', 'hex')).arrayCount(false), -1);
  t.is(new Reader(Buffer.from('00', 'hex')).arrayCount(true), -1);
});

test('uuid, boolean, float64 and the fixed-width integers', (t) => {
  const id = '0123456789abcdef0123456789abcdef';
  const b = written((w) => { w.uuid(id); w.bool(true); w.float64(-2.5); w.int8(-1); w.int16(-2); w.int32(-3); w.uint32(0xffffffff); w.uint16(65535); });
  const r = new Reader(b);
  t.is(r.uuid(), '01234567-89ab-cdef-0123-456789abcdef');
  t.true(r.bool());
  t.is(r.float64(), -2.5);
  t.deepEqual([r.int8(), r.int16(), r.int32(), r.uint32(), r.uint16()], [-1, -2, -3, 0xffffffff, 65535]);
  t.is(r.remaining, 0);
  t.throws(() => written((w) => w.uuid('xyz')), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => written((w) => w.int16(40000)), { code: 'ERR_INVALID_ARGUMENT' });
});

test('a Writer that grows keeps earlier cut chunks intact', (t) => {
  const w = new Writer(2);
  w.int32(1);
  const first = w.cut();
  for (let i = 0; i < 100; i++) w.int32(i);
  t.is(first.readInt32BE(0), 1);
  t.is(w.cut().length, 400);
});
