import test from 'ava';
import fc from 'fast-check';
import { CommitLogError } from '../../../src/errors.js';
import { decodeStruct, encodeStruct, PartSink, type Message } from '../../../src/net/kafka/codec.js';
import {
  API_SPECS, decodeRequest, decodeResponse, encodeRequest, encodeResponse, flattenFrame, type RequestHeader,
} from '../../../src/net/kafka/index.js';
import { Reader, Writer } from '../../../src/net/kafka/primitives.js';
import { field, struct, structs } from '../../../src/net/kafka/schema.js';
import { expected, structArb } from './arbitrary.js';

const RUNS = 40;

// Every API, every version of its window, request and response: random values drawn
// from the table decode back to themselves and re-encode byte-identically.
for (const spec of API_SPECS) {
  for (let v = spec.minVersion; v <= spec.maxVersion; v++) {
    const flexible = v >= spec.flexibleFrom;
    test(`${spec.name} v${v} request round-trips${flexible ? ' (flexible)' : ''}`, (t) => {
      fc.assert(fc.property(structArb(spec.request, v, flexible), fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.option(fc.string({ maxLength: 8 }), { nil: null }), (body, correlationId, clientId) => {
        const header: RequestHeader = { apiKey: spec.key, apiVersion: v, correlationId, clientId };
        const bytes = encodeRequest(header, body);
        t.is(bytes.readInt32BE(0), bytes.length - 4);
        const d = decodeRequest(bytes.subarray(4));
        if (!d.supported) return t.fail('decoded as unsupported');
        t.deepEqual(d.header, header);
        t.deepEqual(d.body, expected(spec.request, v, flexible, body));
        t.deepEqual(encodeRequest(d.header, d.body), bytes);
      }), { numRuns: RUNS });
    });
    test(`${spec.name} v${v} response round-trips${flexible ? ' (flexible)' : ''}`, (t) => {
      fc.assert(fc.property(structArb(spec.response, v, flexible), fc.integer({ min: -0x80000000, max: 0x7fffffff }), (body, correlationId) => {
        const frame = encodeResponse(spec.key, v, correlationId, body);
        const bytes = flattenFrame(frame);
        t.is(frame.byteLength, bytes.length);
        t.is(bytes.readInt32BE(0), bytes.length - 4);
        const d = decodeResponse(spec.key, v, bytes.subarray(4));
        t.is(d.correlationId, correlationId);
        t.deepEqual(d.body, expected(spec.response, v, flexible, body));
        t.deepEqual(flattenFrame(encodeResponse(spec.key, v, correlationId, d.body)), bytes);
      }), { numRuns: RUNS });
    });
  }
}

const table = [
  field('a', 'int32'),
  field('s', 'string', { nullable: '1+' }),
  structs('items', [field('x', 'int16'), field('t', 'string', { v: '2+', tag: 0, default: 'none' })]),
  struct('leader', [field('id', 'int32', { default: -1 })], { v: '2+', tag: 3 }),
];

function enc(v: number, flexible: boolean, o: Message): Buffer {
  const sink = new PartSink(new Writer(4));
  encodeStruct(sink, table, v, flexible, o);
  return Buffer.concat(sink.finish() as Buffer[]);
}

test('non-flexible layout: int16 string length, int32 array count, no tag sections', (t) => {
  const b = enc(0, false, { a: 7, s: 'hi', items: [{ x: 1 }] });
  t.is(b.toString('hex'), '00000007' + '0002' + '6869' + '00000001' + '0001');
});

test('flexible layout: compact lengths, a tag section per element and at the end', (t) => {
  const b = enc(2, true, { a: 7, s: null, items: [{ x: 1 }, { x: 2, t: 'yo' }] });
  // a, s=null (0), items count 2+1, {x=1, no tags}, {x=2, one tag: 0, size 3, "yo" as compact}, top: no tags
  t.is(b.toString('hex'), '00000007' + '00' + '03' + '0001' + '00' + '0002' + '01' + '00' + '03' + '03796f' + '00');
});

test('a tagged struct is written only when it differs from its default', (t) => {
  t.is(enc(2, true, { a: 0, s: '', items: [], leader: { id: -1 } }).toString('hex'), '00000000' + '01' + '01' + '00');
  const b = enc(2, true, { a: 0, s: '', items: [], leader: { id: 5 } });
  t.is(b.toString('hex'), '00000000' + '01' + '01' + '01' + '03' + '05' + '00000005' + '00');
  t.deepEqual(decodeStruct(new Reader(b), table, 2, true).leader, { id: 5 });
});

test('unknown tags are kept in order with known ones and written back', (t) => {
  const o = { a: 1, s: 'x', items: [], leader: { id: 9 }, _unknownTags: [{ tag: 1, data: Buffer.from([0xaa]) }, { tag: 7, data: Buffer.alloc(0) }] };
  const b = enc(2, true, o);
  const d = decodeStruct(new Reader(b), table, 2, true);
  t.deepEqual(d._unknownTags, o._unknownTags);
  t.deepEqual(enc(2, true, d), b);
});

test('tags out of order or repeated are refused', (t) => {
  // a=0, s='', items=[], then 2 tags: 3 (size 0) then 1 (size 0)
  const b = Buffer.from('00000000' + '01' + '01' + '02' + '0300' + '0100', 'hex');
  const err = t.throws(() => decodeStruct(new Reader(b), table, 2, true), { instanceOf: CommitLogError });
  t.is(err!.code, 'ERR_KAFKA_BAD_REQUEST');
});

test('a known tagged field whose bytes do not match its size is refused', (t) => {
  // tag 3 (leader struct: int32 + tag section = 5 bytes) declared with size 6
  const b = Buffer.from('00000000' + '01' + '01' + '01' + '03' + '06' + '000000050000', 'hex');
  t.throws(() => decodeStruct(new Reader(b), table, 2, true), { code: 'ERR_KAFKA_BAD_REQUEST' });
});

test('null where the version does not allow it is refused both ways', (t) => {
  t.throws(() => enc(0, false, { a: 1, s: null, items: [] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => decodeStruct(new Reader(Buffer.from('00000001ffff00000000', 'hex')), table, 0, false), { code: 'ERR_KAFKA_BAD_REQUEST' });
  t.is(decodeStruct(new Reader(Buffer.from('00000001ffff00000000', 'hex')), table, 1, false).s, null);
});

test('fields the version lacks are ignored when encoding and defaulted when decoding', (t) => {
  const b = enc(0, false, { a: 1, s: '', items: [{ x: 3, t: 'ignored' }], leader: { id: 4 } });
  t.deepEqual(decodeStruct(new Reader(b), table, 0, false), { a: 1, s: '', items: [{ x: 3, t: 'none' }], leader: { id: -1 } });
});

test('values out of their type range are ERR_INVALID_ARGUMENT', (t) => {
  t.throws(() => enc(0, false, { a: 2 ** 31, s: '', items: [] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => enc(0, false, { a: 1.5, s: '', items: [] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => enc(0, false, { a: 1, s: 5, items: [] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => enc(0, false, { a: 1, s: '', items: {} }), { code: 'ERR_INVALID_ARGUMENT' });
});

test('decoding leaves trailing bytes as an error, not silently', (t) => {
  const bytes = encodeRequest({ apiKey: 12, apiVersion: 0, correlationId: 1, clientId: 'c' }, { groupId: 'g', generationId: 1, memberId: 'm' });
  t.throws(() => decodeRequest(Buffer.concat([bytes.subarray(4), Buffer.from([0])])), { code: 'ERR_KAFKA_BAD_REQUEST' });
});
