import test from 'ava';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, flattenFrame, type ExternalRecords } from '../../../src/net/kafka/index.js';

const batch = (n: number, fill: number) => Buffer.alloc(n, fill);

function fetchBody(records: unknown[]) {
  return {
    responses: [{
      topic: 'test',
      partitions: records.map((r, i) => ({ partitionIndex: i, errorCode: 0, highWatermark: 10, lastStableOffset: 10, logStartOffset: 0, abortedTransactions: [], records: r })),
    }],
  };
}

for (const v of [4, 11, 12]) {
  test(`Fetch v${v} response with external records: prefix, gaps of the given lengths, suffix; total known up front`, (t) => {
    const ext = (n: number, id: string): ExternalRecords => ({ external: true, byteLength: n, source: id });
    const frame = encodeResponse(1, v, 77, fetchBody([ext(100, 'a'), ext(0, 'b'), ext(3000, 'c')]));
    const inline = flattenFrame(encodeResponse(1, v, 77, fetchBody([batch(100, 1), batch(0, 2), batch(3000, 3)])));
    t.is(frame.byteLength, inline.length);
    t.is(frame.parts.filter((p) => !Buffer.isBuffer(p)).length, 3);
    t.true(Buffer.isBuffer(frame.parts[0]));
    t.true(Buffer.isBuffer(frame.parts[frame.parts.length - 1]));
    t.deepEqual(frame.parts.map((p) => Buffer.isBuffer(p)), [true, false, true, false, true, false, true]);
    const fills: Record<string, number> = { a: 1, b: 2, c: 3 };
    const flat = flattenFrame(frame, (e) => batch(e.byteLength, fills[e.source as string]!));
    t.deepEqual(flat, inline);
    const d = decodeResponse(1, v, flat.subarray(4));
    const parts = (d.body.responses as any[])[0].partitions;
    t.deepEqual(parts.map((p: any) => p.records.length), [100, 0, 3000]);
  });
}

test('external records without a resolver cannot be flattened; a request cannot carry them', (t) => {
  const frame = encodeResponse(1, 11, 1, fetchBody([{ external: true, byteLength: 5 }]));
  t.throws(() => flattenFrame(frame), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => flattenFrame(frame, () => Buffer.alloc(4)), { code: 'ERR_INVALID_ARGUMENT' });
  const body = { acks: 1, timeoutMs: 1, topicData: [{ name: 't', partitionData: [{ index: 0, records: { external: true, byteLength: 5 } }] }] };
  t.throws(() => encodeRequest({ apiKey: 0, apiVersion: 7, correlationId: 1, clientId: null }, body), { code: 'ERR_INVALID_ARGUMENT' });
});

test('Produce records are a view of the request frame, not a copy', (t) => {
  const records = batch(61, 7);
  const bytes = encodeRequest({ apiKey: 0, apiVersion: 8, correlationId: 1, clientId: 'c' }, { acks: -1, timeoutMs: 100, topicData: [{ name: 't', partitionData: [{ index: 0, records }] }] });
  const frame = bytes.subarray(4);
  const d = decodeRequest(frame) as any;
  const got: Buffer = d.body.topicData[0].partitionData[0].records;
  t.deepEqual(got, records);
  t.is(got.buffer, frame.buffer);
  t.is(got.byteOffset, frame.byteOffset + frame.length - 61);
});
