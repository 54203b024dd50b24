import { readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import { decodeRequest, encodeRequest, type RequestHeader } from '../../../src/net/kafka/index.js';
import { fromJson } from './json.js';

// Requests real clients sent to the capture server (test/net/kafka/capture/): each
// fixture names the client, its version and the command. The decoder must read the
// exact values and the encoder must give back the exact bytes.
interface Fixture {
  label: string;
  client: string;
  command: string;
  requests: { api: string; apiKey: number; apiVersion: number; hex: string; header: unknown; body: unknown }[];
}

const dir = new URL('./fixtures/', import.meta.url);
const fixtures: Fixture[] = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Fixture);

for (const fx of fixtures) {
  for (const [i, r] of fx.requests.entries()) {
    test(`${fx.label} #${i}: ${r.api} v${r.apiVersion} from ${fx.client} decodes to its values and re-encodes byte-identically`, (t) => {
      const frame = Buffer.from(r.hex, 'hex');
      const d = decodeRequest(frame);
      if (!d.supported) return t.fail('unsupported');
      t.is(d.spec.name, r.api);
      t.deepEqual(d.header, fromJson(r.header));
      t.deepEqual(d.body, fromJson(r.body));
      const again = encodeRequest(d.header as RequestHeader, d.body);
      t.is(again.readInt32BE(0), frame.length);
      t.is(again.subarray(4).toString('hex'), r.hex);
    });
  }
}

function find(label: string, api: string): { header: any; body: any } {
  const r = fixtures.find((f) => f.label === label)!.requests.find((x) => x.api === api)!;
  const d = decodeRequest(Buffer.from(r.hex, 'hex'));
  if (!d.supported) throw new Error('unsupported');
  return { header: d.header, body: d.body };
}

test('what each client sends first: librdkafka ApiVersions v3 (flexible, names itself), kafkajs v2, kafka-python v0', (t) => {
  const rd = find('kcat-L', 'ApiVersions');
  t.deepEqual(rd.header, { apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'rdkafka' });
  t.deepEqual(rd.body, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' });
  t.like(find('kafkajs-producer', 'ApiVersions').header, { apiVersion: 2, clientId: 'capture-kafkajs' });
  t.like(find('kafka-python-producer', 'ApiVersions').header, { apiVersion: 0, clientId: 'capture-kafka-python' });
});

test('a kcat produce carries one magic-2 batch as an opaque view of the frame', (t) => {
  const { body } = find('kcat-P', 'Produce');
  t.like(body, { acks: -1, timeoutMs: 30000, transactionalId: null });
  const records: Buffer = body.topicData[0].partitionData[0].records;
  t.is(body.topicData[0].name, 'test');
  t.is(records.readInt32BE(8), records.length - 12); // batchLength
  t.is(records[16], 2); // magic
  t.is(records.readInt32BE(57), 2); // record count: "hello" and "world"
});

test('librdkafka joins with an empty member id, then with the one the broker gave', (t) => {
  const r = fixtures.find((f) => f.label === 'kcat-G')!.requests.filter((x) => x.api === 'JoinGroup');
  const [first, second] = r.map((x) => decodeRequest(Buffer.from(x.hex, 'hex')) as any);
  t.is(first.body.memberId, '');
  t.is(second.body.memberId, 'member-1');
  t.deepEqual(first.body.protocols.map((p: any) => p.name), ['range', 'roundrobin']);
  t.like(first.body, { groupId: 'capture-group', sessionTimeoutMs: 45000, rebalanceTimeoutMs: 300000, protocolType: 'consumer', groupInstanceId: null });
});

test('full fetches: session id 0, epoch -1, from every client', (t) => {
  for (const label of ['kcat-C', 'kafkajs-consumer', 'kafka-python-consumer']) {
    const { body } = find(label, 'Fetch');
    t.is(body.sessionId, 0, label);
    t.is(body.sessionEpoch, -1, label);
    t.is(body.topics[0].partitions[0].fetchOffset, 0, label);
  }
});
