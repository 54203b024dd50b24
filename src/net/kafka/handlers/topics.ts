/**
 * Kafka's topic APIs on the CommitLog: Metadata (3, v0-9), ListOffsets (2, v1-5),
 * CreateTopics (19, v0-7), DeleteTopics (20, v0-6), CreatePartitions (37, v0-3).
 *
 * One broker: every partition's leader, replica and in-sync replica is this node
 * (settings.nodeId), the controller too. Metadata with a null topic list (v0: an
 * empty one) lists every topic; a named topic that does not exist is created with
 * settings.defaultPartitions when the request allows it (v4+ allow_auto_topic_creation,
 * always before v4) and settings.autoCreateTopics is on, as Kafka's
 * auto.create.topics.enable; otherwise it is UNKNOWN_TOPIC_OR_PARTITION (3).
 * A topic being created by another request meanwhile is LEADER_NOT_AVAILABLE (5), on
 * which clients retry. Replication factors other than -1 and 1, and replica
 * assignments, cannot be honoured by one node: INVALID_REPLICATION_FACTOR (38) /
 * INVALID_REQUEST (42). CreateTopics configs are the commitlog topic settings of
 * topic-configs.ts; an unknown or unsupported one is INVALID_CONFIG (40).
 */
import { CommitLogError, ErrorCode } from '../../../errors.js';
import type { TopicConfig } from '../../../log/topic-config.js';
import { ensureTopicName, resolveTopicConfig, DEFAULT_TOPIC_CONFIG } from '../../../log/topic-config.js';
import type { Message } from '../codec.js';
import { KafkaError, kafkaErrorCode } from '../error-codes.js';
import { creationInFlight, ensureTopic, int, list, nullableStr, str, strs } from './common.js';
import { topicConfigFromKafka } from './topic-configs.js';
import type { KafkaHandler, KafkaHandlerContext } from './types.js';

export const LIST_OFFSETS = 2;
export const METADATA = 3;
export const CREATE_TOPICS = 19;
export const DELETE_TOPICS = 20;
export const CREATE_PARTITIONS = 37;

const LATEST = -1;
const EARLIEST = -2;

function topicMetadata(ctx: KafkaHandlerContext, name: string): Message {
  const node = ctx.settings.nodeId;
  if (creationInFlight(ctx.log, name)) return { errorCode: KafkaError.LEADER_NOT_AVAILABLE, name, isInternal: false, partitions: [] };
  try {
    const d = ctx.log.describeTopic(name);
    return {
      errorCode: 0,
      name,
      isInternal: false,
      partitions: d.partitions.map((p) => ({
        errorCode: 0, partitionIndex: p.partition, leaderId: node, leaderEpoch: 0, replicaNodes: [node], isrNodes: [node], offlineReplicas: [],
      })),
    };
  } catch (err) {
    return { errorCode: kafkaErrorCode(err), name, isInternal: false, partitions: [] };
  }
}

export const handleMetadata: KafkaHandler = async (ctx, request, version) => {
  const { log, settings } = ctx;
  const requested = request.topics === null || (version === 0 && list(request.topics).length === 0)
    ? null
    : list(request.topics).map((t) => str(t.name));
  const allowCreate = settings.autoCreateTopics && (version < 4 || request.allowAutoTopicCreation !== false);
  if (requested !== null && allowCreate) {
    const existing = new Set(log.listTopics());
    const missing = [...new Set(requested)].filter((n) => !existing.has(n) && validName(n));
    await Promise.all(missing.map((n) => ensureTopic(log, n, settings.defaultPartitions).catch((err: unknown) => {
      ctx.logger.warn({ topic: n, err: String(err) }, `auto-creating topic ${n} failed`);
    })));
  }
  const names = requested ?? log.listTopics();
  return {
    throttleTimeMs: 0,
    brokers: [{ nodeId: settings.nodeId, host: settings.advertisedHost, port: settings.advertisedPort, rack: null }],
    clusterId: settings.clusterId,
    controllerId: settings.nodeId,
    topics: names.map((n) => topicMetadata(ctx, n)),
    clusterAuthorizedOperations: -2147483648,
  };
};

function validName(name: string): boolean {
  try {
    ensureTopicName(name);
    return true;
  } catch {
    return false;
  }
}

/** The timestamp of the record at `offset` (-1 if it cannot be read). */
function timestampAt(ctx: KafkaHandlerContext, topic: string, partition: number, offset: number): number {
  try {
    const records = ctx.log.read(topic, partition, offset, { maxBytes: 1 });
    return records.find((r) => r.offset >= offset)?.timestamp ?? -1;
  } catch {
    return -1;
  }
}

export const handleListOffsets: KafkaHandler = (ctx, request) => {
  const { log } = ctx;
  return {
    throttleTimeMs: 0,
    topics: list(request.topics).map((t) => {
      const name = str(t.name);
      return {
        name,
        partitions: list(t.partitions).map((p) => {
          const partitionIndex = int(p.partitionIndex);
          const timestamp = int(p.timestamp);
          try {
            const hw = log.latestOffset(name, partitionIndex);
            if (timestamp === LATEST) return { partitionIndex, errorCode: 0, timestamp: -1, offset: hw, leaderEpoch: 0 };
            if (timestamp === EARLIEST) return { partitionIndex, errorCode: 0, timestamp: -1, offset: log.earliestOffset(name, partitionIndex), leaderEpoch: 0 };
            if (timestamp < 0) throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `unsupported ListOffsets timestamp ${timestamp}`);
            const found = log.offsetForTimestamp(name, partitionIndex, timestamp);
            // Nothing at or after the timestamp (that readers can see): Kafka's -1/-1.
            if (found === null || found >= hw) return { partitionIndex, errorCode: 0, timestamp: -1, offset: -1, leaderEpoch: -1 };
            return { partitionIndex, errorCode: 0, timestamp: timestampAt(ctx, name, partitionIndex, found), offset: found, leaderEpoch: 0 };
          } catch (err) {
            return { partitionIndex, errorCode: kafkaErrorCode(err), timestamp: -1, offset: -1, leaderEpoch: -1 };
          }
        }),
      };
    }),
  };
};

function failure(code: number, message: string): { errorCode: number; errorMessage: string } {
  return { errorCode: code, errorMessage: message };
}

/** Checks one CreateTopics entry; returns the settings or the error to answer. */
function plannedTopic(ctx: KafkaHandlerContext, t: Message): { config: Partial<TopicConfig> } | { errorCode: number; errorMessage: string } {
  const name = str(t.name);
  try {
    ensureTopicName(name);
  } catch (err) {
    return failure(KafkaError.INVALID_TOPIC_EXCEPTION, (err as Error).message);
  }
  if (ctx.log.listTopics().includes(name)) return failure(KafkaError.TOPIC_ALREADY_EXISTS, `topic ${name} already exists`);
  const replication = int(t.replicationFactor);
  if (replication !== -1 && replication !== 1) return failure(KafkaError.INVALID_REPLICATION_FACTOR, `replication factor ${replication}: this broker is one node, only 1 (or -1) is possible`);
  if (list(t.assignments).length > 0) return failure(KafkaError.INVALID_REQUEST, 'replica assignments are not supported on one node; give num_partitions instead');
  const numPartitions = int(t.numPartitions);
  if (numPartitions !== -1 && (numPartitions < 1 || numPartitions > 10000)) return failure(KafkaError.INVALID_PARTITIONS, `num_partitions must be in [1, 10000] or -1, got ${numPartitions}`);
  let config: Partial<TopicConfig>;
  try {
    config = topicConfigFromKafka(list(t.configs).map((c) => ({ name: str(c.name), value: nullableStr(c.value) })));
    config.partitions = numPartitions === -1 ? ctx.settings.defaultPartitions : numPartitions;
    resolveTopicConfig(config, DEFAULT_TOPIC_CONFIG);
  } catch (err) {
    return failure(KafkaError.INVALID_CONFIG, (err as Error).message);
  }
  return { config };
}

export const handleCreateTopics: KafkaHandler = async (ctx, request, version) => {
  const validateOnly = version >= 1 && request.validateOnly === true;
  const seen = new Map<string, number>();
  for (const t of list(request.topics)) seen.set(str(t.name), (seen.get(str(t.name)) ?? 0) + 1);
  const topics = await Promise.all(list(request.topics).map(async (t) => {
    const name = str(t.name);
    const base = { name, topicId: '00000000-0000-0000-0000-000000000000', numPartitions: -1, replicationFactor: -1, configs: [] as Message[] };
    if ((seen.get(name) ?? 0) > 1) return { ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `topic ${name} is named more than once` };
    const plan = plannedTopic(ctx, t);
    if ('errorCode' in plan) return { ...base, ...plan };
    const partitions = plan.config.partitions!;
    if (!validateOnly) {
      try {
        await ctx.log.createTopic(name, plan.config);
      } catch (err) {
        return { ...base, errorCode: kafkaErrorCode(err), errorMessage: (err as Error).message };
      }
    }
    return { ...base, errorCode: 0, errorMessage: null, numPartitions: partitions, replicationFactor: 1 };
  }));
  return { throttleTimeMs: 0, topics };
};

export const handleDeleteTopics: KafkaHandler = async (ctx, request, version) => {
  const names = version >= 6 ? list(request.topics).map((t) => nullableStr(t.name)) : strs(request.topicNames);
  const responses = [];
  // One at a time: deletes of one request do not race each other's offsets cleanup.
  for (const name of names) {
    const entry = { name, topicId: '00000000-0000-0000-0000-000000000000' };
    if (name === null) {
      // Topic ids are not kept: a delete by id cannot be served.
      responses.push({ ...entry, errorCode: KafkaError.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'topic ids are not supported; name the topic' });
      continue;
    }
    try {
      await ctx.log.deleteTopic(name);
      await ctx.offsets.dropTopic(name);
      responses.push({ ...entry, errorCode: 0, errorMessage: null });
    } catch (err) {
      responses.push({ ...entry, errorCode: kafkaErrorCode(err), errorMessage: (err as Error).message });
    }
  }
  return { throttleTimeMs: 0, responses };
};

export const handleCreatePartitions: KafkaHandler = async (ctx, request) => {
  const validateOnly = request.validateOnly === true;
  const results = await Promise.all(list(request.topics).map(async (t) => {
    const name = str(t.name);
    const count = int(t.count);
    try {
      if (t.assignments !== null && list(t.assignments).length > 0) {
        return { name, errorCode: KafkaError.INVALID_REQUEST, errorMessage: 'replica assignments are not supported on one node' };
      }
      const current = ctx.log.describeTopic(name).partitions.length;
      if (count <= current || count > 10000) {
        return { name, errorCode: KafkaError.INVALID_PARTITIONS, errorMessage: `topic ${name} has ${current} partitions; the new count must be in [${current + 1}, 10000], got ${count}` };
      }
      if (!validateOnly) await ctx.log.addPartitions(name, count);
      return { name, errorCode: 0, errorMessage: null };
    } catch (err) {
      const code = err instanceof CommitLogError && err.code === ErrorCode.INVALID_ARGUMENT ? KafkaError.INVALID_PARTITIONS : kafkaErrorCode(err);
      return { name, errorCode: code, errorMessage: (err as Error).message };
    }
  }));
  return { throttleTimeMs: 0, results };
};
