/**
 * Kafka error codes this broker answers with, and the one table mapping commitlog's
 * own error codes (src/errors.ts) onto them. Handlers turn a caught CommitLogError
 * into a Kafka code with kafkaErrorCode(); anything unknown is UNKNOWN_SERVER_ERROR.
 */
import { CommitLogError, ErrorCode, type ErrorCodeValue } from '../../errors.js';

export const KafkaError = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_FETCH_SIZE: 4,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  INVALID_COMMIT_OFFSET_SIZE: 28,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  POLICY_VIOLATION: 44,
  INVALID_CONFIG: 40,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  KAFKA_STORAGE_ERROR: 56,
  UNKNOWN_PRODUCER_ID: 59,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_LEADER_EPOCH: 75,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  MEMBER_ID_REQUIRED: 79,
  GROUP_MAX_SIZE_REACHED: 81,
  FENCED_INSTANCE_ID: 82,
  UNSTABLE_OFFSET_COMMIT: 88,
} as const;

export type KafkaErrorCode = (typeof KafkaError)[keyof typeof KafkaError];

/** commitlog's code -> the Kafka code a client acts on correctly. */
export const KAFKA_ERROR_FOR: Readonly<Record<ErrorCodeValue, KafkaErrorCode>> = {
  [ErrorCode.INVALID_ARGUMENT]: KafkaError.INVALID_REQUEST,
  [ErrorCode.INVALID_TOPIC]: KafkaError.INVALID_TOPIC_EXCEPTION,
  [ErrorCode.UNKNOWN_TOPIC]: KafkaError.UNKNOWN_TOPIC_OR_PARTITION,
  [ErrorCode.UNKNOWN_PARTITION]: KafkaError.UNKNOWN_TOPIC_OR_PARTITION,
  [ErrorCode.TOPIC_EXISTS]: KafkaError.TOPIC_ALREADY_EXISTS,
  [ErrorCode.RECORD_TOO_LARGE]: KafkaError.MESSAGE_TOO_LARGE,
  [ErrorCode.OFFSET_OUT_OF_RANGE]: KafkaError.OFFSET_OUT_OF_RANGE,
  // A closed log (shutdown, deleted topic) is transient for a client: it refreshes
  // metadata and retries, as after a leader move.
  [ErrorCode.LOG_CLOSED]: KafkaError.NOT_LEADER_OR_FOLLOWER,
  [ErrorCode.LOG_FAILED]: KafkaError.KAFKA_STORAGE_ERROR,
  [ErrorCode.LOG_CORRUPT]: KafkaError.KAFKA_STORAGE_ERROR,
  [ErrorCode.CORRUPT_BATCH]: KafkaError.CORRUPT_MESSAGE,
  [ErrorCode.DISK_FULL]: KafkaError.KAFKA_STORAGE_ERROR,
  [ErrorCode.LOCKED]: KafkaError.KAFKA_STORAGE_ERROR,
  [ErrorCode.IO]: KafkaError.KAFKA_STORAGE_ERROR,
  [ErrorCode.FRAME_TOO_LARGE]: KafkaError.MESSAGE_TOO_LARGE,
  [ErrorCode.BAD_FRAME]: KafkaError.INVALID_REQUEST,
  [ErrorCode.UNSUPPORTED_VERSION]: KafkaError.UNSUPPORTED_VERSION,
  [ErrorCode.DELIVERY_TIMEOUT]: KafkaError.REQUEST_TIMED_OUT,
  [ErrorCode.KAFKA_BAD_REQUEST]: KafkaError.INVALID_REQUEST,
  // Creating a topic past the fd or mapping limit: the broker cannot host it.
  [ErrorCode.LIMIT]: KafkaError.KAFKA_STORAGE_ERROR,
  [ErrorCode.UNKNOWN_MEMBER]: KafkaError.UNKNOWN_MEMBER_ID,
  [ErrorCode.ILLEGAL_GENERATION]: KafkaError.ILLEGAL_GENERATION,
  [ErrorCode.REBALANCE_IN_PROGRESS]: KafkaError.REBALANCE_IN_PROGRESS,
  [ErrorCode.MEMBER_ID_REQUIRED]: KafkaError.MEMBER_ID_REQUIRED,
  [ErrorCode.INCONSISTENT_GROUP_PROTOCOL]: KafkaError.INCONSISTENT_GROUP_PROTOCOL,
  [ErrorCode.INVALID_SESSION_TIMEOUT]: KafkaError.INVALID_SESSION_TIMEOUT,
  [ErrorCode.FENCED_INSTANCE_ID]: KafkaError.FENCED_INSTANCE_ID,
  [ErrorCode.INVALID_GROUP]: KafkaError.INVALID_GROUP_ID,
  [ErrorCode.GROUP_LIMIT]: KafkaError.GROUP_MAX_SIZE_REACHED,
  [ErrorCode.UNKNOWN_GROUP]: KafkaError.GROUP_ID_NOT_FOUND,
  [ErrorCode.GROUP_NOT_EMPTY]: KafkaError.NON_EMPTY_GROUP,
  // Shutting down: the client looks for the coordinator again (FindCoordinator) and retries.
  [ErrorCode.COORDINATOR_CLOSED]: KafkaError.NOT_COORDINATOR,
  [ErrorCode.OUT_OF_ORDER_SEQUENCE]: KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
  [ErrorCode.INVALID_PRODUCER_EPOCH]: KafkaError.INVALID_PRODUCER_EPOCH,
  [ErrorCode.UNKNOWN_PRODUCER_ID]: KafkaError.UNKNOWN_PRODUCER_ID,
  // Every client treats an unexpected InitProducerId error as fatal (no retry loop);
  // INVALID_REQUEST's text says "sent to an incompatible broker".
  [ErrorCode.TRANSACTIONS_UNSUPPORTED]: KafkaError.INVALID_REQUEST,
};

/** The Kafka error code for any thrown value (UNKNOWN_SERVER_ERROR when not ours). */
export function kafkaErrorCode(err: unknown): KafkaErrorCode {
  if (err instanceof CommitLogError) return KAFKA_ERROR_FOR[err.code] ?? KafkaError.UNKNOWN_SERVER_ERROR;
  return KafkaError.UNKNOWN_SERVER_ERROR;
}
