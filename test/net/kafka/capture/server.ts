/**
 * Capture server for golden fixtures (not a test): listens on 127.0.0.1 at an
 * ephemeral port, prints the port on stdout, records every request frame a client
 * sends (hex, one JSON line each, to --out) and answers just enough for the client to
 * send its next request: ApiVersions from the codec's table, one broker in Metadata,
 * every topic with one partition, empty fetches, a group in which the client is the
 * only member and leader. Stops on SIGTERM/SIGINT. Used by capture.sh.
 *
 *   tsx test/net/kafka/capture/server.ts --label kcat-L --out /tmp/captures.jsonl
 */
import { appendFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import {
  KafkaFrameSplitter, apiVersionsAnswer, decodeRequest, encodeResponse, flattenFrame, type Message,
} from '../../../../src/net/kafka/index.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const label = args.get('label') ?? 'unknown';
const out = args.get('out') ?? '/tmp/kafka-captures.jsonl';
let port = 0;
let memberSeq = 0;

type Obj = Record<string, any>;

function answer(key: number, v: number, b: Obj): Message | null {
  const broker = { nodeId: 1, host: '127.0.0.1', port, rack: null };
  switch (key) {
    case 0: // Produce
      if (b.acks === 0) return null;
      return { responses: b.topicData.map((t: Obj) => ({ name: t.name, partitionResponses: t.partitionData.map((p: Obj) => ({ index: p.index, errorCode: 0, baseOffset: 0 })) })) };
    case 1: // Fetch
      return { responses: b.topics.map((t: Obj) => ({ topic: t.topic, partitions: t.partitions.map((p: Obj) => ({ partitionIndex: p.partition, errorCode: 0, highWatermark: 0, lastStableOffset: 0, logStartOffset: 0, abortedTransactions: [], records: Buffer.alloc(0) })) })) };
    case 2: // ListOffsets
      return { topics: b.topics.map((t: Obj) => ({ name: t.name, partitions: t.partitions.map((p: Obj) => ({ partitionIndex: p.partitionIndex, errorCode: 0, timestamp: -1, offset: 0 })) })) };
    case 3: { // Metadata
      const names: string[] = b.topics === null || b.topics.length === 0 ? ['test'] : b.topics.map((t: Obj) => t.name);
      return {
        brokers: [broker], clusterId: 'capture-cluster', controllerId: 1,
        topics: names.map((name) => ({ errorCode: 0, name, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 0, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] }] })),
      };
    }
    case 8: // OffsetCommit
      return { topics: b.topics.map((t: Obj) => ({ name: t.name, partitions: t.partitions.map((p: Obj) => ({ partitionIndex: p.partitionIndex, errorCode: 0 })) })) };
    case 9: { // OffsetFetch
      const parts = (topics: Obj[] | null) => (topics ?? []).map((t: Obj) => ({ name: t.name, partitions: t.partitionIndexes.map((i: number) => ({ partitionIndex: i, committedOffset: -1, metadata: '', errorCode: 0 })) }));
      return v >= 8 ? { groups: b.groups.map((g: Obj) => ({ groupId: g.groupId, topics: parts(g.topics) })) } : { topics: parts(b.topics) };
    }
    case 10: // FindCoordinator
      return v >= 4
        ? { coordinators: b.coordinatorKeys.map((k: string) => ({ key: k, nodeId: 1, host: '127.0.0.1', port, errorCode: 0 })) }
        : { errorCode: 0, nodeId: 1, host: '127.0.0.1', port };
    case 11: { // JoinGroup
      if (b.memberId === '' && v >= 4) return { errorCode: 79, memberId: `member-${++memberSeq}`, protocolName: '', leader: '' };
      const memberId = b.memberId === '' ? `member-${++memberSeq}` : b.memberId;
      const p = b.protocols[0];
      return { errorCode: 0, generationId: 1, protocolType: b.protocolType, protocolName: p.name, leader: memberId, memberId, members: [{ memberId, metadata: p.metadata }] };
    }
    case 14: { // SyncGroup
      const mine = b.assignments.find((a: Obj) => a.memberId === b.memberId);
      return { errorCode: 0, protocolType: b.protocolType, protocolName: b.protocolName, assignment: mine?.assignment ?? Buffer.alloc(0) };
    }
    case 12: return { errorCode: 0 };
    case 13: return { errorCode: 0, members: b.members.map((m: Obj) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: 0 })) };
    case 15: return { groups: b.groups.map((g: string) => ({ errorCode: 0, groupId: g, groupState: 'Empty', protocolType: 'consumer', protocolData: '', members: [] })) };
    case 16: return { errorCode: 0, groups: [{ groupId: 'g1', protocolType: 'consumer', groupState: 'Empty' }] };
    case 19: return { topics: b.topics.map((t: Obj) => ({ name: t.name, errorCode: 0, errorMessage: null, numPartitions: t.numPartitions, replicationFactor: 1, configs: [] })) };
    case 20: return { responses: (v >= 6 ? b.topics.map((t: Obj) => t.name) : b.topicNames).map((name: string) => ({ name, errorCode: 0 })) };
    case 22: return { errorCode: 0, producerId: 1000, producerEpoch: 0 };
    case 32: return { results: b.resources.map((r: Obj) => ({ errorCode: 0, errorMessage: null, resourceType: r.resourceType, resourceName: r.resourceName, configs: [{ name: 'retention.ms', value: '604800000', readOnly: false, isDefault: true, configSource: 5, isSensitive: false, synonyms: [], documentation: null }] })) };
    case 37: return { results: b.topics.map((t: Obj) => ({ name: t.name, errorCode: 0, errorMessage: null })) };
    case 60: return { errorCode: 0, clusterId: 'capture-cluster', controllerId: 1, brokers: [{ brokerId: 1, host: '127.0.0.1', port, rack: null }] };
  }
  return null;
}

const seen = new Map<string, number>();

function onFrame(sock: Socket, conn: number, frame: Buffer): void {
  const req = decodeRequest(frame);
  const { apiKey, apiVersion, correlationId, clientId } = req.header;
  const id = `${apiKey}/${apiVersion}`;
  const n = seen.get(id) ?? 0;
  seen.set(id, n + 1);
  // Keep the first two of each kind: enough for golden bytes, no flood from fetch loops.
  if (n < 2) appendFileSync(out, JSON.stringify({ label, conn, apiKey, apiVersion, clientId, hex: frame.toString('hex') }) + '\n');
  if (apiKey === 18) {
    const a = apiVersionsAnswer(apiVersion);
    sock.write(flattenFrame(encodeResponse(18, a.version, correlationId, a.body)));
    return;
  }
  if (!req.supported) {
    process.stderr.write(`unsupported ${id}, closing\n`);
    sock.destroy();
    return;
  }
  const body = answer(apiKey, apiVersion, req.body as Obj);
  if (body === null) return;
  const reply = () => { if (!sock.destroyed) sock.write(flattenFrame(encodeResponse(apiKey, apiVersion, correlationId, body))); };
  // librdkafka refuses null records (MessageSetSize -1) in a fetch answer, hence the empty
  // Buffer above. An empty fetch answered at once makes clients spin; wait as a broker would.
  if (apiKey === 1) setTimeout(reply, Math.min(500, (req.body as Obj).maxWaitMs)).unref();
  else reply();
}

let connSeq = 0;
const server = createServer((sock) => {
  const conn = ++connSeq;
  const splitter = new KafkaFrameSplitter();
  sock.on('data', (chunk) => {
    try {
      for (const f of splitter.push(chunk)) onFrame(sock, conn, f);
    } catch (err) {
      process.stderr.write(`conn ${conn}: ${String(err)}\n`);
      sock.destroy();
    }
  });
  sock.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => {
  port = (server.address() as { port: number }).port;
  process.stdout.write(`${port}\n`);
});
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(() => process.exit(0), 60_000).unref();
