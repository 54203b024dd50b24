/**
 * The Kafka listener's dispatch table: API key -> handler. Each area's file exports
 * its handlers; this file is only the list of registrations (one line each), and the
 * ApiVersions answer is derived from it, so the broker advertises exactly the APIs it
 * serves (registry.ts apiVersionsAnswer with the table's keys).
 */
import { CommitLogError, ErrorCode } from '../../../errors.js';
import type { Message } from '../codec.js';
import { apiVersionsAnswer } from '../registry.js';
import {
  DESCRIBE_GROUPS, HEARTBEAT, JOIN_GROUP, LEAVE_GROUP, LIST_GROUPS, SYNC_GROUP,
  handleDescribeGroups, handleHeartbeat, handleJoinGroup, handleLeaveGroup, handleListGroups, handleSyncGroup,
  type GroupHandlerContext,
} from './groups.js';
import type { KafkaHandler, KafkaHandlerContext } from './types.js';
import { DESCRIBE_CLUSTER, DESCRIBE_CONFIGS, handleDescribeCluster, handleDescribeConfigs } from './admin.js';
import { FETCH, PRODUCE, handleFetch, handleProduce } from './data.js';
import { INIT_PRODUCER_ID, handleInitProducerId } from './producer-id.js';
import { FIND_COORDINATOR, OFFSET_COMMIT, OFFSET_FETCH, handleFindCoordinator, handleOffsetCommit, handleOffsetFetch } from './offsets.js';
import {
  CREATE_PARTITIONS, CREATE_TOPICS, DELETE_TOPICS, LIST_OFFSETS, METADATA,
  handleCreatePartitions, handleCreateTopics, handleDeleteTopics, handleListOffsets, handleMetadata,
} from './topics.js';

export type { KafkaHandler, KafkaHandlerContext, KafkaSettings } from './types.js';

export const API_VERSIONS = 18;

/** ApiVersions (18): every served key with its window (unsupported versions are answered by the listener). */
const handleApiVersions: KafkaHandler = (_ctx, _request, version) => apiVersionsAnswer(version, KAFKA_HANDLERS.keys()).body;

/** A group handler of groups.ts, given the coordinator (COORDINATOR_NOT_AVAILABLE without one). */
function group(fn: (ctx: GroupHandlerContext, version: number, body: Message) => Message | Promise<Message>): KafkaHandler {
  return (ctx: KafkaHandlerContext, request, version) => {
    if (ctx.coordinator === undefined) throw new CommitLogError(ErrorCode.COORDINATOR_CLOSED, 'this listener has no group coordinator');
    return fn({ coordinator: ctx.coordinator, offsets: ctx.offsets, clientId: ctx.clientId, clientHost: ctx.clientHost }, version, request);
  };
}

export const KAFKA_HANDLERS: Map<number, KafkaHandler> = new Map<number, KafkaHandler>([
  [API_VERSIONS, handleApiVersions],
  [PRODUCE, handleProduce],
  [FETCH, handleFetch],
  [LIST_OFFSETS, handleListOffsets],
  [METADATA, handleMetadata],
  [OFFSET_COMMIT, handleOffsetCommit],
  [OFFSET_FETCH, handleOffsetFetch],
  [FIND_COORDINATOR, handleFindCoordinator],
  [CREATE_TOPICS, handleCreateTopics],
  [DELETE_TOPICS, handleDeleteTopics],
  [CREATE_PARTITIONS, handleCreatePartitions],
  [DESCRIBE_CONFIGS, handleDescribeConfigs],
  [DESCRIBE_CLUSTER, handleDescribeCluster],
  [INIT_PRODUCER_ID, handleInitProducerId],
  [JOIN_GROUP, group(handleJoinGroup)],
  [SYNC_GROUP, group(handleSyncGroup)],
  [HEARTBEAT, group(handleHeartbeat)],
  [LEAVE_GROUP, group(handleLeaveGroup)],
  [DESCRIBE_GROUPS, group(handleDescribeGroups)],
  [LIST_GROUPS, group(handleListGroups)],
]);
