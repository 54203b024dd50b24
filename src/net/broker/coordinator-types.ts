/**
 * Public shapes of the group coordinator (coordinator.ts): requests, results, options,
 * observer events. No wire format: a Kafka handler (or a native-protocol handler)
 * turns its decoded request into these and the results back into its own answer.
 *
 * Errors are values, not exceptions: every result carries `error`, null on success or
 * one of commitlog's stable codes (src/errors.ts), which src/net/kafka/error-codes.ts
 * maps to Kafka's (ERR_UNKNOWN_MEMBER -> 25, ERR_ILLEGAL_GENERATION -> 22, ...).
 */
import type { ErrorCodeValue } from '../../errors.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export type GroupError = ErrorCodeValue;

/** One protocol a member supports (for consumers: an assignor name and its subscription bytes). */
export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinGroupRequest {
  groupId: string;
  /** '' for a member joining for the first time. */
  memberId: string;
  /** group.instance.id of a static member (JoinGroup v5+); null or absent for a dynamic one. */
  groupInstanceId?: string | null;
  clientId?: string;
  clientHost?: string;
  sessionTimeoutMs: number;
  /** How long a rebalance waits for this member to rejoin; absent or negative = sessionTimeoutMs (JoinGroup v0). */
  rebalanceTimeoutMs?: number;
  protocolType: string;
  protocols: readonly GroupProtocol[];
  /**
   * JoinGroup v4+ (KIP-394): a dynamic member joining with an empty member id gets
   * its id back with ERR_MEMBER_ID_REQUIRED and must join again with it.
   */
  requireKnownMemberId?: boolean;
}

export interface JoinedMember {
  memberId: string;
  groupInstanceId: string | null;
  /** The member's metadata for the chosen protocol. */
  metadata: Buffer;
}

export interface JoinGroupResult {
  error: GroupError | null;
  /** The member's id: the one assigned to a new member (also with ERR_MEMBER_ID_REQUIRED), else the request's. */
  memberId: string;
  /** -1 on error. */
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  /** '' on error. */
  leaderId: string;
  /** Every member with its metadata, for the leader only; [] for the others. */
  members: JoinedMember[];
}

export interface SyncGroupRequest {
  groupId: string;
  memberId: string;
  generationId: number;
  groupInstanceId?: string | null;
  /** The leader's assignment per member; followers send []. */
  assignments: readonly { memberId: string; assignment: Buffer }[];
}

export interface SyncGroupResult {
  error: GroupError | null;
  /** This member's assignment; empty bytes on error or when the leader left it out. */
  assignment: Buffer;
  protocolType: string | null;
  protocolName: string | null;
}

export interface HeartbeatRequest {
  groupId: string;
  memberId: string;
  generationId: number;
  groupInstanceId?: string | null;
}

export interface LeavingMember {
  memberId: string;
  groupInstanceId?: string | null;
}

export interface LeaveGroupResult {
  /** A group-level error (the coordinator closed); member errors are per member. */
  error: GroupError | null;
  members: { memberId: string; groupInstanceId: string | null; error: GroupError | null }[];
}

export interface DescribedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** Metadata for the group's chosen protocol (empty before one is chosen). */
  metadata: Buffer;
  /** The assignment from the last completed SyncGroup (empty before and during a rebalance). */
  assignment: Buffer;
}

export interface GroupDescription {
  groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string;
  /** The chosen protocol of the current generation, '' when none. */
  protocolName: string;
  leaderId: string;
  members: DescribedMember[];
}

export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: GroupState;
}

export type RemovalReason = 'leave' | 'session-timeout' | 'rebalance-timeout' | 'sync-timeout';

export type CoordinatorEvent =
  | { type: 'rebalance-start'; groupId: string; generationId: number; reason: string }
  | { type: 'rebalance-end'; groupId: string; generationId: number; members: number; state: GroupState }
  | { type: 'member-removed'; groupId: string; memberId: string; reason: RemovalReason }
  | { type: 'group-deleted'; groupId: string };

/** Timer functions, injectable so tests drive time themselves. */
export interface CoordinatorTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface GroupCoordinatorOptions {
  /** How long a new (Empty) group waits for more members before its first generation; Kafka's group.initial.rebalance.delay.ms. Default 3000; 0 completes as soon as every known member joined. */
  initialRebalanceDelayMs?: number;
  /** Kafka's group.min.session.timeout.ms. Default 6000. */
  minSessionTimeoutMs?: number;
  /** Kafka's group.max.session.timeout.ms. Default 1800000. */
  maxSessionTimeoutMs?: number;
  /** Members (joined or holding a fresh member id) per group; Kafka's group.max.size. Default 1000. */
  maxGroupMembers?: number;
  /** Groups held in memory; at the limit the oldest Empty group is forgotten (its offsets stay in the offsets store). Default 100000. */
  maxGroups?: number;
  timers?: CoordinatorTimers;
  observer?: (event: CoordinatorEvent) => void;
}

export interface CoordinatorStats {
  groups: number;
  members: number;
  /** Rebalances started since the coordinator was created. */
  rebalances: number;
  /** Members removed because their session timed out. */
  sessionExpirations: number;
}
