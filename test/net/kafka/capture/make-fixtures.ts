/**
 * Turns capture.sh's JSON lines into test/net/kafka/fixtures/<label>.json: each
 * distinct request (api key, version, bytes) once, with the decoded value as the
 * expected one (reviewed by hand when generated; the test then pins it).
 *   node --import tsx test/net/kafka/capture/make-fixtures.ts /tmp/kafka-captures.jsonl
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { decodeRequest } from '../../../../src/net/kafka/index.js';
import { toJson } from '../json.js';

const CLIENTS: Record<string, { client: string; command: string }> = {
  'kcat-L': { client: 'kcat 1.7.1 (librdkafka 2.0.2, Debian)', command: 'kcat -L -b HOST:PORT' },
  'kcat-P': { client: 'kcat 1.7.1 (librdkafka 2.0.2, Debian)', command: 'printf "hello\\nworld\\n" | kcat -P -b HOST:PORT -t test -k k1' },
  'kcat-C': { client: 'kcat 1.7.1 (librdkafka 2.0.2, Debian)', command: 'kcat -C -b HOST:PORT -t test -o beginning -e' },
  'kcat-G': { client: 'kcat 1.7.1 (librdkafka 2.0.2, Debian)', command: 'kcat -G capture-group -b HOST:PORT -o beginning test' },
  'kafka-python-producer': { client: 'kafka-python 2.0.2 (Debian python3-kafka)', command: 'capture/kafka_python.py producer' },
  'kafka-python-consumer': { client: 'kafka-python 2.0.2 (Debian python3-kafka)', command: 'capture/kafka_python.py consumer' },
  'kafka-python-admin': { client: 'kafka-python 2.0.2 (Debian python3-kafka)', command: 'capture/kafka_python.py admin' },
  'confluent-producer': { client: 'confluent-kafka-python 1.7.0, librdkafka 2.0.2 (Debian)', command: 'capture/confluent.py producer (enable.idempotence)' },
  'confluent-consumer': { client: 'confluent-kafka-python 1.7.0, librdkafka 2.0.2 (Debian)', command: 'capture/confluent.py consumer' },
  'confluent-admin': { client: 'confluent-kafka-python 1.7.0, librdkafka 2.0.2 (Debian)', command: 'capture/confluent.py admin' },
  'kafkajs-producer': { client: 'kafkajs 2.2.4 (npm)', command: 'capture/kafkajs.mjs producer (idempotent)' },
  'kafkajs-consumer': { client: 'kafkajs 2.2.4 (npm)', command: 'capture/kafkajs.mjs consumer' },
  'kafkajs-admin': { client: 'kafkajs 2.2.4 (npm)', command: 'capture/kafkajs.mjs admin' },
};

const rows = readFileSync(process.argv[2] ?? '/tmp/kafka-captures.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const byLabel = new Map<string, any[]>();
for (const r of rows) {
  const list = byLabel.get(r.label) ?? [];
  if (!list.some((x) => x.hex === r.hex)) list.push(r);
  byLabel.set(r.label, list);
}
const dir = new URL('../fixtures/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [label, list] of byLabel) {
  const requests = list.map((r) => {
    const d = decodeRequest(Buffer.from(r.hex, 'hex'));
    if (!d.supported) throw new Error(`${label}: unsupported ${r.apiKey}/${r.apiVersion}`);
    return { api: d.spec.name, apiKey: r.apiKey, apiVersion: r.apiVersion, hex: r.hex, header: toJson(d.header), body: toJson(d.body) };
  });
  const meta = CLIENTS[label] ?? { client: label, command: '?' };
  const fixture = { label, ...meta, capturedWith: 'test/net/kafka/capture/capture.sh', requests };
  writeFileSync(new URL(`${label}.json`, dir), JSON.stringify(fixture, null, 1) + '\n');
}
