import test from 'ava';
import {
  API_SPECS, apiVersionsAnswer, decodeResponse, encodeResponse, flattenFrame, responseHeaderVersion, requestHeaderVersion, apiSpec,
} from '../../../src/net/kafka/index.js';

const WINDOWS: Record<string, [number, number, number]> = {
  // name: [key, min, max] as advertised (KAFKA.md)
  Produce: [0, 3, 8], Fetch: [1, 4, 12], ListOffsets: [2, 1, 5], Metadata: [3, 0, 9], OffsetCommit: [8, 2, 8],
  OffsetFetch: [9, 1, 8], FindCoordinator: [10, 0, 4], JoinGroup: [11, 0, 7], Heartbeat: [12, 0, 4], LeaveGroup: [13, 0, 4],
  SyncGroup: [14, 0, 4], DescribeGroups: [15, 0, 5], ListGroups: [16, 0, 4], ApiVersions: [18, 0, 3], CreateTopics: [19, 0, 7],
  DeleteTopics: [20, 0, 6], InitProducerId: [22, 0, 4], DescribeConfigs: [32, 0, 4], CreatePartitions: [37, 0, 3], DescribeCluster: [60, 0, 1],
};

test('the advertised windows are exactly the tables, sorted by key', (t) => {
  const { body } = apiVersionsAnswer(3);
  t.deepEqual(body.apiKeys, API_SPECS.map((s) => ({ apiKey: s.key, minVersion: s.minVersion, maxVersion: s.maxVersion })));
  t.deepEqual(Object.fromEntries(API_SPECS.map((s) => [s.name, [s.key, s.minVersion, s.maxVersion]])), WINDOWS);
  const keys = (body.apiKeys as { apiKey: number }[]).map((k) => k.apiKey);
  t.deepEqual(keys, [...keys].sort((a, b) => a - b));
});

test('every advertised version can be encoded', (t) => {
  for (const k of apiVersionsAnswer(0).body.apiKeys as { apiKey: number; minVersion: number; maxVersion: number }[]) {
    for (let v = k.minVersion; v <= k.maxVersion; v++) t.notThrows(() => encodeResponse(k.apiKey, v, 1, {}), `${k.apiKey} v${v}`);
  }
});

test('ApiVersions v3: flexible body but response header v0 (no tag section after the correlation id)', (t) => {
  const a = apiVersionsAnswer(3);
  const bytes = flattenFrame(encodeResponse(18, a.version, 42, a.body));
  t.is(bytes.readInt32BE(4), 42);
  t.is(bytes.readInt16BE(8), 0); // error code follows the correlation id directly
  t.is(bytes[10], API_SPECS.length + 1); // compact array count
  t.like(decodeResponse(18, 3, bytes.subarray(4)).body, { errorCode: 0, throttleTimeMs: 0 });
});

test('an unsupported ApiVersions version gets the v0 body with error 35 and the full list', (t) => {
  const a = apiVersionsAnswer(4);
  t.is(a.version, 0);
  const bytes = flattenFrame(encodeResponse(18, a.version, 9, a.body));
  const d = decodeResponse(18, 0, bytes.subarray(4));
  t.is(d.correlationId, 9);
  t.is(d.body.errorCode, 35);
  t.is((d.body.apiKeys as unknown[]).length, API_SPECS.length);
  t.is(bytes.length, 4 + 4 + 2 + 4 + API_SPECS.length * 6);
});

test('header versions follow the first flexible version; ApiVersions responses are always v0', (t) => {
  const cases: [number, number, number, number][] = [
    // key, version, request header, response header
    [18, 2, 1, 0], [18, 3, 2, 0], [3, 8, 1, 0], [3, 9, 2, 1], [0, 8, 1, 0], [1, 11, 1, 0], [1, 12, 2, 1],
    [9, 5, 1, 0], [9, 6, 2, 1], [8, 8, 2, 1], [60, 0, 2, 1], [22, 2, 2, 1], [10, 3, 2, 1], [2, 5, 1, 0],
  ];
  for (const [key, v, req, res] of cases) {
    t.is<number, number>(requestHeaderVersion(apiSpec(key)!, v), req, `${key} v${v} request`);
    t.is<number, number>(responseHeaderVersion(apiSpec(key)!, v), res, `${key} v${v} response`);
  }
});

test('an unknown api key or version decodes as unsupported with its header', async (t) => {
  const { decodeRequest } = await import('../../../src/net/kafka/index.js');
  const h = Buffer.from('0012' + '0009' + '00000005' + '0003' + '616263', 'hex');
  t.deepEqual(decodeRequest(h), { supported: false, header: { apiKey: 18, apiVersion: 9, correlationId: 5, clientId: 'abc' } });
  const unknownKey = Buffer.from('03e7' + '0000' + '00000006' + 'ffff', 'hex');
  t.like(decodeRequest(unknownKey), { supported: false, header: { apiKey: 999, correlationId: 6, clientId: null } });
  t.throws(() => encodeResponse(0, 9, 1, {}), { code: 'ERR_UNSUPPORTED_VERSION' });
});
