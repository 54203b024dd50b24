/**
 * Committed offsets and the coordinator lookup: OffsetCommit (8, v2-8), OffsetFetch
 * (9, v1-8) and FindCoordinator (10, v0-4).
 *
 * Offsets live in the broker's one durable OffsetsStore, the same the native protocol
 * uses: a group's offsets are one thing whichever protocol wrote them, so a Kafka
 * client resumes where a commitlog Consumer of the same group stopped, and the
 * reverse. Metadata strings round-trip; nothing committed reads as offset -1.
 *
 * OffsetCommit: the group coordinator's generation check first (groups.ts, Kafka's
 * rules: a simple consumer's commit with generation -1 into a group with no members is
 * stored); then per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition the log
 * does not have, OFFSET_OUT_OF_RANGE for an offset below 0 or past the partition's
 * high watermark (as the native protocol refuses it: no consumer can have read
 * there), OFFSET_METADATA_TOO_LARGE past 4096 bytes of metadata. The accepted
 * partitions are stored together and answered once durable.
 *
 * FindCoordinator: this node for every group (key type 0) and transactional id (1);
 * v4 answers each of the batched keys.
 */
import { MAX_GROUP_NAME_LENGTH, type OffsetCommitEntry } from '../../../index/offsets-store.js';
import type { Message } from '../codec.js';
import { KafkaError, kafkaErrorCode } from '../error-codes.js';
import { int, ints, list, nullableStr, str, strs } from './common.js';
import { offsetCommitError } from './groups.js';
import type { KafkaHandler, KafkaHandlerContext } from './types.js';

export const OFFSET_COMMIT = 8;
export const OFFSET_FETCH = 9;
export const FIND_COORDINATOR = 10;

const OFFSET_METADATA_TOO_LARGE = 12;
const MAX_METADATA_BYTES = 4096;

function validGroup(group: string): boolean {
  return group.length > 0 && group.length <= MAX_GROUP_NAME_LENGTH;
}

export const handleOffsetCommit: KafkaHandler = async (ctx, request, version) => {
  const groupId = str(request.groupId);
  const topics = list(request.topics);
  let groupCode: number = validGroup(groupId) ? KafkaError.NONE : KafkaError.INVALID_GROUP_ID;
  if (groupCode === KafkaError.NONE) groupCode = offsetCommitError(ctx.coordinator, version, request);
  const entries: OffsetCommitEntry[] = [];
  const codes = topics.map((t) => {
    const topic = str(t.name);
    return list(t.partitions).map((p) => {
      if (groupCode !== KafkaError.NONE) return groupCode;
      const partition = int(p.partitionIndex);
      const offset = int(p.committedOffset);
      const metadata = nullableStr(p.committedMetadata) ?? '';
      let hw: number;
      try {
        hw = ctx.log.latestOffset(topic, partition);
      } catch (err) {
        return kafkaErrorCode(err);
      }
      if (offset < 0 || offset > hw) return KafkaError.OFFSET_OUT_OF_RANGE;
      if (Buffer.byteLength(metadata) > MAX_METADATA_BYTES) return OFFSET_METADATA_TOO_LARGE;
      entries.push({ topic, partition, offset, metadata });
      return -100; // stored below
    });
  });
  let storeCode: number = KafkaError.NONE;
  if (entries.length > 0) {
    try {
      await ctx.offsets.commit(groupId, entries);
    } catch (err) {
      storeCode = kafkaErrorCode(err);
      ctx.logger.warn({ group: groupId, err: String(err) }, `storing committed offsets of group ${groupId} failed`);
    }
  }
  return {
    throttleTimeMs: 0,
    topics: topics.map((t, i) => ({
      name: str(t.name),
      partitions: list(t.partitions).map((p, j) => ({ partitionIndex: int(p.partitionIndex), errorCode: codes[i][j] === -100 ? storeCode : codes[i][j] })),
    })),
  };
};

/** One group's committed offsets for OffsetFetch: the named topics' partitions, or (null) every committed one. */
function fetchGroup(ctx: KafkaHandlerContext, groupId: string, topics: Message[] | null): { errorCode: number; topics: Message[] } {
  if (!validGroup(groupId)) return { errorCode: KafkaError.INVALID_GROUP_ID, topics: [] };
  const partitionEntry = (partitionIndex: number, offset: number, metadata: string | null, errorCode = 0): Message => ({
    partitionIndex, committedOffset: offset, committedLeaderEpoch: -1, metadata, errorCode,
  });
  try {
    if (topics === null) {
      const described = ctx.offsets.describe(groupId);
      const all = described === null ? [] : Object.entries(described.topics);
      return {
        errorCode: 0,
        topics: all.map(([name, partitions]) => ({
          name,
          partitions: Object.entries(partitions).map(([p, c]) => partitionEntry(Number(p), c.offset, c.metadata)),
        })),
      };
    }
    return {
      errorCode: 0,
      topics: topics.map((t) => {
        const name = str(t.name);
        const indexes = ints(t.partitionIndexes);
        try {
          return { name, partitions: ctx.offsets.fetch(groupId, name, indexes).map((c) => partitionEntry(c.partition, c.offset, c.metadata)) };
        } catch (err) {
          return { name, partitions: indexes.map((p) => partitionEntry(p, -1, '', kafkaErrorCode(err))) };
        }
      }),
    };
  } catch (err) {
    return { errorCode: kafkaErrorCode(err), topics: [] };
  }
}

export const handleOffsetFetch: KafkaHandler = (ctx, request, version) => {
  if (version >= 8) {
    return {
      throttleTimeMs: 0,
      groups: list(request.groups).map((g) => {
        const groupId = str(g.groupId);
        const r = fetchGroup(ctx, groupId, g.topics === null ? null : list(g.topics));
        return { groupId, topics: r.topics, errorCode: r.errorCode };
      }),
    };
  }
  const r = fetchGroup(ctx, str(request.groupId), request.topics === null ? null : list(request.topics));
  // Before v2 there is no top-level error: it goes on every partition.
  if (version < 2 && r.errorCode !== 0) {
    for (const t of list(request.topics)) {
      r.topics.push({ name: str(t.name), partitions: ints(t.partitionIndexes).map((p) => ({ partitionIndex: p, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: r.errorCode })) });
    }
  }
  return { throttleTimeMs: 0, topics: r.topics, errorCode: r.errorCode };
};

export const handleFindCoordinator: KafkaHandler = (ctx, request, version) => {
  const { nodeId, advertisedHost: host, advertisedPort: port } = ctx.settings;
  const keyType = int(request.keyType, 0);
  const known = keyType === 0 || keyType === 1;
  const errorCode = known ? (ctx.coordinator === undefined && keyType === 0 ? KafkaError.COORDINATOR_NOT_AVAILABLE : 0) : KafkaError.INVALID_REQUEST;
  const errorMessage = errorCode === 0 ? null : known ? 'no group coordinator' : `unknown key type ${keyType}`;
  if (version >= 4) {
    return {
      throttleTimeMs: 0,
      coordinators: strs(request.coordinatorKeys).map((key) => ({ key, nodeId: errorCode === 0 ? nodeId : -1, host: errorCode === 0 ? host : '', port: errorCode === 0 ? port : -1, errorCode, errorMessage })),
    };
  }
  return { throttleTimeMs: 0, errorCode, errorMessage, nodeId: errorCode === 0 ? nodeId : -1, host: errorCode === 0 ? host : '', port: errorCode === 0 ? port : -1 };
};
