/**
 * Cluster and config descriptions: DescribeConfigs (32, v0-4) and DescribeCluster
 * (60, v0-1). One node: DescribeCluster lists it as the only broker and the
 * controller. DescribeConfigs answers topics (resource type 2) with commitlog's topic
 * settings under Kafka's names (topic-configs.ts) and this broker (type 4, name = its
 * node id) with the settings that shape what clients see; other resource types get
 * INVALID_REQUEST.
 */
import type { Message } from '../codec.js';
import { KafkaError, kafkaErrorCode } from '../error-codes.js';
import { int, list, str } from './common.js';
import { ConfigSource, ConfigType, topicConfigEntries, type KafkaConfigEntry } from './topic-configs.js';
import type { KafkaHandler, KafkaHandlerContext } from './types.js';

export const DESCRIBE_CONFIGS = 32;
export const DESCRIBE_CLUSTER = 60;

const TOPIC = 2;
const BROKER = 4;

function brokerEntries(ctx: KafkaHandlerContext): KafkaConfigEntry[] {
  const s = ctx.settings;
  const entry = (name: string, value: string, type: number, doc: string): KafkaConfigEntry => ({
    name, value, readOnly: true, isDefault: false, source: ConfigSource.STATIC_BROKER, type, doc,
  });
  return [
    entry('advertised.listeners', `PLAINTEXT://${s.advertisedHost}:${s.advertisedPort}`, ConfigType.STRING, 'Where clients connect.'),
    entry('auto.create.topics.enable', String(s.autoCreateTopics), ConfigType.BOOLEAN, 'Metadata requests create unknown topics.'),
    entry('broker.id', String(s.nodeId), ConfigType.INT, 'This node.'),
    entry('default.replication.factor', '1', ConfigType.INT, 'One node.'),
    entry('num.partitions', String(s.defaultPartitions), ConfigType.INT, 'Partitions of an auto-created topic.'),
    entry('offsets.topic.replication.factor', '1', ConfigType.SHORT, 'One node.'),
  ];
}

function configsOf(ctx: KafkaHandlerContext, type: number, name: string): KafkaConfigEntry[] {
  if (type === TOPIC) return topicConfigEntries(ctx.log.describeTopic(name).config);
  return brokerEntries(ctx);
}

export const handleDescribeConfigs: KafkaHandler = (ctx, request, version) => {
  const includeSynonyms = version >= 1 && request.includeSynonyms === true;
  const includeDocs = version >= 3 && request.includeDocumentation === true;
  const results = list(request.resources).map((r) => {
    const resourceType = int(r.resourceType);
    const resourceName = str(r.resourceName);
    const base = { resourceType, resourceName };
    if (resourceType !== TOPIC && resourceType !== BROKER) {
      return { ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `resource type ${resourceType} is not supported (topics 2 and brokers 4 are)`, configs: [] };
    }
    if (resourceType === BROKER && resourceName !== '' && resourceName !== String(ctx.settings.nodeId)) {
      return { ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `unknown broker ${resourceName}; this is broker ${ctx.settings.nodeId}`, configs: [] };
    }
    let entries: KafkaConfigEntry[];
    try {
      entries = configsOf(ctx, resourceType, resourceName);
    } catch (err) {
      return { ...base, errorCode: kafkaErrorCode(err), errorMessage: (err as Error).message, configs: [] };
    }
    const keys = Array.isArray(r.configurationKeys) ? new Set((r.configurationKeys as unknown[]).map(str)) : null;
    const configs: Message[] = entries.filter((e) => keys === null || keys.size === 0 || keys.has(e.name)).map((e) => ({
      name: e.name,
      value: e.value,
      readOnly: e.readOnly,
      isDefault: e.isDefault,
      configSource: e.source,
      isSensitive: false,
      synonyms: includeSynonyms ? [{ name: e.name, value: e.value, source: e.source }] : [],
      configType: e.type,
      documentation: includeDocs ? e.doc : null,
    }));
    return { ...base, errorCode: 0, errorMessage: null, configs };
  });
  return { throttleTimeMs: 0, results };
};

export const handleDescribeCluster: KafkaHandler = (ctx, request, version) => {
  const s = ctx.settings;
  const endpointType = version >= 1 ? int(request.endpointType, 1) : 1;
  // Endpoint type 2 asks for controllers (KIP-919): this node is that too.
  if (endpointType !== 1 && endpointType !== 2) {
    return { throttleTimeMs: 0, errorCode: KafkaError.UNSUPPORTED_VERSION, errorMessage: `unknown endpoint type ${endpointType}`, endpointType, clusterId: s.clusterId, controllerId: -1, brokers: [] };
  }
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    errorMessage: null,
    endpointType,
    clusterId: s.clusterId,
    controllerId: s.nodeId,
    brokers: [{ brokerId: s.nodeId, host: s.advertisedHost, port: s.advertisedPort, rack: null }],
    clusterAuthorizedOperations: -2147483648,
  };
};
