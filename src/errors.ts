/**
 * The one error class of commitlog. Every failure a user can see carries a stable
 * `code` (listed in docs/errors.md) to match on, plus whatever context applies:
 * file path, offset, position, and for failed syscalls the errno name and syscall.
 * Messages carry the numbers; codes never change meaning once released.
 */

export const ErrorCode = {
  /** An argument of the wrong type or out of its range. */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** A topic name that is empty, too long, has odd characters, or could escape the data directory. */
  INVALID_TOPIC: 'ERR_INVALID_TOPIC',
  UNKNOWN_TOPIC: 'ERR_UNKNOWN_TOPIC',
  UNKNOWN_PARTITION: 'ERR_UNKNOWN_PARTITION',
  TOPIC_EXISTS: 'ERR_TOPIC_EXISTS',
  /** A record or batch larger than the segment or the configured maximum. */
  RECORD_TOO_LARGE: 'ERR_RECORD_TOO_LARGE',
  OFFSET_OUT_OF_RANGE: 'ERR_OFFSET_OUT_OF_RANGE',
  LOG_CLOSED: 'ERR_LOG_CLOSED',
  /** A write or flush failed earlier; the log refuses appends until it is reopened. */
  LOG_FAILED: 'ERR_LOG_FAILED',
  /** Stored data fails its checks before the recovery point (not a torn tail). */
  LOG_CORRUPT: 'ERR_LOG_CORRUPT',
  /** A batch handed in (by a producer or a caller), or fetched by a Consumer, that fails its own checks. */
  CORRUPT_BATCH: 'ERR_CORRUPT_BATCH',
  /** No space left when allocating a segment or index. */
  DISK_FULL: 'ERR_DISK_FULL',
  /** Another process holds the data directory's lock. */
  LOCKED: 'ERR_LOCKED',
  /** Any other failed syscall; `errno` and `syscall` say which. */
  IO: 'ERR_IO',
  /** A protocol frame whose length exceeds the receiver's maximum frame size. */
  FRAME_TOO_LARGE: 'ERR_FRAME_TOO_LARGE',
  /** A protocol frame that cannot be parsed: bad length fields or a header that is not valid protobuf. */
  BAD_FRAME: 'ERR_BAD_FRAME',
  /** A request whose api_version the broker does not implement (sent back in the response). */
  UNSUPPORTED_VERSION: 'ERR_UNSUPPORTED_VERSION',
  /** A Producer record not acknowledged within deliveryTimeoutMs; `cause` is the last failure. It may or may not be in the log. */
  DELIVERY_TIMEOUT: 'ERR_DELIVERY_TIMEOUT',
  /** A Kafka protocol message that cannot be parsed: a length, count or varint running past its frame, or a field out of range. */
  KAFKA_BAD_REQUEST: 'ERR_KAFKA_BAD_REQUEST',
  /** The data directory needs more file descriptors or mappings than the process may have (RLIMIT_NOFILE, vm.max_map_count). */
  LIMIT: 'ERR_LIMIT',
  /** A consumer-group member id the group does not know (left, expired, or never joined). */
  UNKNOWN_MEMBER: 'ERR_UNKNOWN_MEMBER',
  /** A group request naming a generation other than the group's current one. */
  ILLEGAL_GENERATION: 'ERR_ILLEGAL_GENERATION',
  /** The group is rebalancing: the member must rejoin (JoinGroup) before it syncs, heartbeats or commits. */
  REBALANCE_IN_PROGRESS: 'ERR_REBALANCE_IN_PROGRESS',
  /** A new member's first JoinGroup (v4+): the answer carries its member id, to rejoin with. */
  MEMBER_ID_REQUIRED: 'ERR_MEMBER_ID_REQUIRED',
  /** A member whose protocol type or protocols have nothing in common with the group's members. */
  INCONSISTENT_GROUP_PROTOCOL: 'ERR_INCONSISTENT_GROUP_PROTOCOL',
  /** A session timeout outside the coordinator's [minSessionTimeoutMs, maxSessionTimeoutMs]. */
  INVALID_SESSION_TIMEOUT: 'ERR_INVALID_SESSION_TIMEOUT',
  /** A static member (group.instance.id) whose member id was replaced by a newer join of the same instance. */
  FENCED_INSTANCE_ID: 'ERR_FENCED_INSTANCE_ID',
  /** A consumer-group name that is empty or too long. */
  INVALID_GROUP: 'ERR_INVALID_GROUP',
  /** A group at its member limit, or the coordinator at its group limit. */
  GROUP_LIMIT: 'ERR_GROUP_LIMIT',
  /** A group operation on a group the coordinator does not have. */
  UNKNOWN_GROUP: 'ERR_UNKNOWN_GROUP',
  /** Deleting a group that still has members. */
  GROUP_NOT_EMPTY: 'ERR_GROUP_NOT_EMPTY',
  /** The group coordinator is closed (the broker is shutting down). */
  COORDINATOR_CLOSED: 'ERR_COORDINATOR_CLOSED',
  /** An idempotent producer's batch whose sequence does not follow its last one (a gap, or an old batch no longer remembered). */
  OUT_OF_ORDER_SEQUENCE: 'ERR_OUT_OF_ORDER_SEQUENCE',
  /** An idempotent producer's batch with an epoch older than the one the partition has seen from that producer id. */
  INVALID_PRODUCER_EPOCH: 'ERR_INVALID_PRODUCER_EPOCH',
  /** A producer id the broker cannot track (above 2^53 - 1: never one it assigned). */
  UNKNOWN_PRODUCER_ID: 'ERR_UNKNOWN_PRODUCER_ID',
  /** A transactional producer (InitProducerId with a transactional id): transactions are not supported. */
  TRANSACTIONS_UNSUPPORTED: 'ERR_TRANSACTIONS_UNSUPPORTED',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorContext {
  path?: string;
  topic?: string;
  partition?: number;
  offset?: number;
  position?: number;
  errno?: string;
  syscall?: string;
  cause?: unknown;
}

export class CommitLogError extends Error {
  readonly code: ErrorCodeValue;
  readonly path?: string;
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: number;
  readonly position?: number;
  readonly errno?: string;
  readonly syscall?: string;

  constructor(code: ErrorCodeValue, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'CommitLogError';
    this.code = code;
    if (context.path !== undefined) this.path = context.path;
    if (context.topic !== undefined) this.topic = context.topic;
    if (context.partition !== undefined) this.partition = context.partition;
    if (context.offset !== undefined) this.offset = context.offset;
    if (context.position !== undefined) this.position = context.position;
    if (context.errno !== undefined) this.errno = context.errno;
    if (context.syscall !== undefined) this.syscall = context.syscall;
  }
}

interface SystemErrorLike {
  code?: unknown;
  syscall?: unknown;
  message?: unknown;
}

/**
 * Turns an error from the addon or from node:fs into a CommitLogError: ENOSPC and
 * EDQUOT become ERR_DISK_FULL, everything else ERR_IO, keeping errno and syscall.
 */
export function ioError(err: unknown, what: string, context: ErrorContext = {}): CommitLogError {
  if (err instanceof CommitLogError) return err;
  const e = (err ?? {}) as SystemErrorLike;
  const errno = typeof e.code === 'string' ? e.code : undefined;
  const syscall = typeof e.syscall === 'string' ? e.syscall : undefined;
  const code = errno === 'ENOSPC' || errno === 'EDQUOT' ? ErrorCode.DISK_FULL : ErrorCode.IO;
  const where = context.path === undefined ? '' : ` (${context.path})`;
  const detail = typeof e.message === 'string' ? e.message : String(err);
  return new CommitLogError(code, `${what}${where}: ${detail}`, { ...context, errno, syscall, cause: err });
}

export function invalidArgument(message: string): CommitLogError {
  return new CommitLogError(ErrorCode.INVALID_ARGUMENT, message);
}
