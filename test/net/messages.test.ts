import test from 'ava';
import fc from 'fast-check';
import { CommitLogError } from '../../src/errors.js';
import {
  API_VERSION,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  type RequestBody,
  type RequestHeader,
  type ResponseBody,
  type ResponseHeader,
} from '../../src/net/protocol/messages.js';

const BIG = 2 ** 40 + 12345; // above 2^32
const MAX = Number.MAX_SAFE_INTEGER;

const requests: RequestBody[] = [
  { case: 'produce', value: { topic: 'orders', partition: 3, acks: 'FLUSHED' } },
  { case: 'produce', value: { topic: 'orders', partition: 0, acks: 'NONE' } },
  { case: 'produce', value: { topic: 'orders', partition: 0, acks: 'WRITTEN' } },
  { case: 'fetch', value: { topic: 'orders', partition: 7, offset: BIG, maxBytes: 1048576, maxWaitMs: 500, minBytes: 1 } },
  { case: 'fetch', value: { topic: 't', partition: 0xffffffff, offset: MAX, maxBytes: 0xffffffff, maxWaitMs: 0, minBytes: 0 } },
  { case: 'listOffsets', value: { topic: 'orders', partition: 1, spec: 'TIMESTAMP', timestamp: 1_700_000_000_123 } },
  { case: 'listOffsets', value: { topic: 'orders', partition: 1, spec: 'EARLIEST', timestamp: -1 } },
  { case: 'listOffsets', value: { topic: 'orders', partition: 1, spec: 'LATEST', timestamp: 0 } },
  { case: 'metadata', value: { topics: [] } },
  { case: 'metadata', value: { topics: ['a', 'b', 'ünïcödé'] } },
  { case: 'createTopic', value: { name: 'orders', partitions: 12 } },
  { case: 'createTopic', value: { name: 'orders', partitions: 1, segmentBytes: BIG, retentionBytes: -1, retentionMs: 0 } },
  { case: 'deleteTopic', value: { name: 'orders' } },
  {
    case: 'offsetCommit',
    value: {
      group: 'g1',
      offsets: [
        { topic: 'orders', partition: 0, offset: BIG, metadata: 'host-1' },
        { topic: 'orders', partition: 1, offset: 0, metadata: '' },
      ],
    },
  },
  { case: 'offsetCommit', value: { group: 'g1', offsets: [] } },
  { case: 'offsetFetch', value: { group: 'g1', topic: 'orders', partitions: [0, 1, 70000] } },
];

const responses: ResponseBody[] = [
  { case: 'produce', value: { baseOffset: BIG, lastOffset: BIG + 99 } },
  { case: 'fetch', value: { highWatermark: BIG + 100, logStartOffset: 2 ** 33 } },
  { case: 'listOffsets', value: { offset: BIG } },
  { case: 'listOffsets', value: { offset: -1 } },
  {
    case: 'metadata',
    value: {
      topics: [
        {
          name: 'orders',
          partitions: [
            { partition: 0, earliestOffset: 0, latestOffset: BIG, sizeBytes: 2 ** 40, segments: 3 },
            { partition: 1, earliestOffset: 2 ** 32, latestOffset: MAX, sizeBytes: 0, segments: 1 },
          ],
        },
        { name: 'empty', partitions: [] },
      ],
    },
  },
  { case: 'metadata', value: { topics: [] } },
  { case: 'createTopic', value: {} },
  { case: 'deleteTopic', value: {} },
  { case: 'offsetCommit', value: {} },
  {
    case: 'offsetFetch',
    value: {
      offsets: [
        { partition: 0, offset: BIG, metadata: 'host-1' },
        { partition: 1, offset: -1, metadata: '' },
      ],
    },
  },
];

for (const [i, body] of requests.entries()) {
  test(`request ${body.case} #${i} round-trips exactly`, (t) => {
    const header: RequestHeader = { apiVersion: API_VERSION, correlationId: 0xfffffffe - i, clientId: `client-${i}`, body };
    const bytes = encodeRequest(header);
    t.true(bytes instanceof Uint8Array);
    t.deepEqual(decodeRequest(bytes), header);
  });
}

for (const [i, body] of responses.entries()) {
  test(`response ${body.case} #${i} round-trips exactly`, (t) => {
    const header: ResponseHeader = { correlationId: 1000 + i, errorCode: '', errorMessage: '', body };
    t.deepEqual(decodeResponse(encodeResponse(header)), header);
  });
}

test('every request and response kind is covered by the round-trip tables', (t) => {
  const kinds = ['produce', 'fetch', 'listOffsets', 'metadata', 'createTopic', 'deleteTopic', 'offsetCommit', 'offsetFetch'];
  t.deepEqual([...new Set(requests.map((b) => b.case))].sort(), [...kinds].sort());
  t.deepEqual([...new Set(responses.map((b) => b.case))].sort(), [...kinds].sort());
});

test('a fetch request has the documented bytes (proto3 canonical: defaults left off)', (t) => {
  const bytes = encodeRequest({
    apiVersion: 1,
    correlationId: 5,
    clientId: 'c',
    body: { case: 'fetch', value: { topic: 't', partition: 0, offset: 2 ** 32, maxBytes: 300, maxWaitMs: 0, minBytes: 0 } },
  });
  // 08 01: api_version=1; 10 05: correlation_id=5; 1a 01 63: client_id="c";
  // 5a 0c: field 11 (fetch), 12 bytes: 0a 01 74 topic="t", 18 80 80 80 80 10 offset=2^32,
  // 20 ac 02 max_bytes=300.
  t.is(Buffer.from(bytes).toString('hex'), '080110051a01635a0c0a017418808080801020ac02');
});

test('an error response carries code and message and no body', (t) => {
  const header: ResponseHeader = { correlationId: 9, errorCode: 'ERR_UNKNOWN_TOPIC', errorMessage: 'topic "x" does not exist' };
  const decoded = decodeResponse(encodeResponse(header));
  t.deepEqual(decoded, header);
  t.false('body' in decoded);
});

test('optional topic settings stay absent when unset and present when zero', (t) => {
  const header = (value: RequestBody['value']): RequestHeader => ({ apiVersion: 1, correlationId: 1, clientId: '', body: { case: 'createTopic', value } as RequestBody });
  const unset = decodeRequest(encodeRequest(header({ name: 'a', partitions: 1 })));
  t.deepEqual(unset.body?.value, { name: 'a', partitions: 1 });
  const zero = decodeRequest(encodeRequest(header({ name: 'a', partitions: 1, retentionMs: 0 })));
  t.deepEqual(zero.body?.value, { name: 'a', partitions: 1, retentionMs: 0 });
});

test('a request of another api version keeps its header fields and leaves the body uninterpreted', (t) => {
  const bytes = encodeRequest({ apiVersion: 3, correlationId: 77, clientId: 'future', body: requests[3]! });
  t.deepEqual(decodeRequest(bytes), { apiVersion: 3, correlationId: 77, clientId: 'future' });
  t.deepEqual(decodeRequest(new Uint8Array(0)), { apiVersion: 0, correlationId: 0, clientId: '' });
});

test('a request without a body decodes with body undefined', (t) => {
  const decoded = decodeRequest(encodeRequest({ apiVersion: 1, correlationId: 3, clientId: 'x' }));
  t.deepEqual(decoded, { apiVersion: 1, correlationId: 3, clientId: 'x' });
});

/** Protobuf varint of a non-negative bigint. */
function varint(value: bigint): number[] {
  const out: number[] = [];
  do {
    let byte = Number(value & 0x7fn);
    value >>= 7n;
    if (value > 0n) byte |= 0x80;
    out.push(byte);
  } while (value > 0n);
  return out;
}

test('bytes that are not a header are ERR_BAD_FRAME', (t) => {
  const bad: Array<[string, number[]]> = [
    ['truncated varint', [0x08, 0xff]],
    ['length past the end', [0x1a, 0x05, 0x61]],
    ['invalid wire type', [0x0f]],
    ['unknown enum value', [0x08, 0x01, 0x52, 0x02, 0x18, 0x09]],
    ['offset beyond 2^53', [0x08, 0x01, 0x5a, 1 + varint(2n ** 60n).length, 0x18, ...varint(2n ** 60n)]],
  ];
  for (const [name, bytes] of bad) {
    const err = t.throws(() => decodeRequest(Buffer.from(bytes)), { instanceOf: CommitLogError }, name);
    t.is(err?.code, 'ERR_BAD_FRAME', name);
  }
  const err = t.throws(() => decodeResponse(Buffer.from([0x5a, 1 + varint(2n ** 64n - 1n).length, 0x08, ...varint(2n ** 64n - 1n)])), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_BAD_FRAME');
  t.regex(err?.message ?? '', /fetch\.highWatermark/);
});

test('values a field cannot hold are ERR_INVALID_ARGUMENT on encode', (t) => {
  const fetch = { topic: 't', partition: 0, offset: 0, maxBytes: 0, maxWaitMs: 0, minBytes: 0 };
  const req = (body: unknown, extra: Partial<RequestHeader> = {}): RequestHeader =>
    ({ apiVersion: 1, correlationId: 0, clientId: '', body, ...extra }) as RequestHeader;
  const bad: Array<[string, RequestHeader]> = [
    ['negative offset', req({ case: 'fetch', value: { ...fetch, offset: -1 } })],
    ['offset past 2^53', req({ case: 'fetch', value: { ...fetch, offset: 2 ** 53 } })],
    ['fractional partition', req({ case: 'fetch', value: { ...fetch, partition: 1.5 } })],
    ['partition past 2^32', req({ case: 'fetch', value: { ...fetch, partition: 2 ** 32 } })],
    ['missing field', req({ case: 'fetch', value: { topic: 't' } })],
    ['topic not a string', req({ case: 'fetch', value: { ...fetch, topic: 5 } })],
    ['unknown enum name', req({ case: 'produce', value: { topic: 't', partition: 0, acks: 'ALL' } })],
    ['unknown body case', req({ case: 'compact', value: {} })],
    ['repeated field not an array', req({ case: 'metadata', value: { topics: 'a' } })],
    ['negative correlation id', req(undefined, { correlationId: -1 })],
    ['negative api version', req(undefined, { apiVersion: -1 })],
    ['fractional timestamp', req({ case: 'listOffsets', value: { topic: 't', partition: 0, spec: 'TIMESTAMP', timestamp: 0.5 } })],
  ];
  for (const [name, header] of bad) {
    const err = t.throws(() => encodeRequest(header), { instanceOf: CommitLogError }, name);
    t.is(err?.code, 'ERR_INVALID_ARGUMENT', name);
  }
  t.throws(() => encodeResponse({ correlationId: 0, errorCode: '', errorMessage: '', body: { case: 'listOffsets', value: { offset: -(2 ** 53) } } }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});

test('property: fetch and offset-commit requests with random values round-trip exactly', (t) => {
  const uint32 = fc.integer({ min: 0, max: 0xffffffff });
  const offset = fc.maxSafeNat();
  const fetch = fc.record({ topic: fc.string(), partition: uint32, offset, maxBytes: uint32, maxWaitMs: uint32, minBytes: uint32 });
  const commit = fc.record({
    group: fc.string(),
    offsets: fc.array(fc.record({ topic: fc.string(), partition: uint32, offset, metadata: fc.string() }), { maxLength: 5 }),
  });
  const body = fc.oneof(
    fetch.map((value): RequestBody => ({ case: 'fetch', value })),
    commit.map((value): RequestBody => ({ case: 'offsetCommit', value })),
  );
  fc.assert(
    fc.property(uint32, fc.string(), body, (correlationId, clientId, b) => {
      const header: RequestHeader = { apiVersion: API_VERSION, correlationId, clientId, body: b };
      return JSON.stringify(decodeRequest(encodeRequest(header))) === JSON.stringify(header);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('fuzz: random bytes decode to a header or ERR_BAD_FRAME, nothing else', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      for (const decode of [decodeRequest, decodeResponse]) {
        try {
          decode(bytes);
        } catch (err) {
          if (!(err instanceof CommitLogError) || err.code !== 'ERR_BAD_FRAME') throw err;
        }
      }
    }),
    { numRuns: 5000 },
  );
  t.pass();
});
