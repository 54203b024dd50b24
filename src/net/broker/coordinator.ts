/**
 * The group coordinator of the broker core: Kafka's classic consumer-group protocol
 * on one node, with no wire format of its own. Both listeners call it; Kafka's
 * JoinGroup/SyncGroup/Heartbeat/LeaveGroup handlers are thin translations.
 *
 * States (per group):
 *
 *   Empty --join--> PreparingRebalance --all joined / rebalance timeout--> CompletingRebalance
 *     ^                 ^        |                                          |  leader's SyncGroup
 *     |  last member    |        +--no member left--> Empty                 v
 *     +---- gone -------+---- join of a new member, leader rejoin, leave, expiry ---- Stable
 *   deleteGroup (Empty only) -> Dead
 *
 * - JoinGroup responses are parked until every known member has rejoined (and every
 *   member id handed out with ERR_MEMBER_ID_REQUIRED has been used or expired), or the
 *   rebalance timeout (the largest of the members') passed; members that did not
 *   rejoin by then are removed, except static ones. A new group first waits
 *   initialRebalanceDelayMs, again (up to the rebalance timeout) while new members
 *   keep arriving: Kafka's InitialDelayedJoin.
 * - The leader (the first member, or another when it leaves) gets every member's
 *   metadata and computes the assignment; SyncGroup of the followers waits for the
 *   leader's. A member the leader left out gets empty bytes. A rebalance starting
 *   while SyncGroups wait answers them ERR_REBALANCE_IN_PROGRESS. Members that do not
 *   send SyncGroup within the rebalance timeout are removed.
 * - Every member has a session timer, restarted by each Heartbeat, SyncGroup, commit
 *   and answered JoinGroup, and stopped while one of its requests is parked. When it
 *   fires the member is removed and the group rebalances.
 * - Static members (group.instance.id): a known instance joining with an empty member
 *   id replaces its old member id; the old id is fenced (ERR_FENCED_INSTANCE_ID). In a
 *   Stable group, with unchanged protocols, this needs no rebalance.
 *
 * Concurrency: everything runs on the JS thread, event-driven (no polling); parked
 * requests are Promises resolved by a later call or a timer. close() answers every
 * parked request ERR_COORDINATOR_CLOSED and stops every timer.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode } from '../../errors.js';
import { MAX_GROUP_NAME_LENGTH } from '../../index/offsets-store.js';
import { GroupEngine } from './coordinator-engine.js';
import {
  EMPTY, copyProtocols, isFenced, joinError, metadataFor, newGroup, sameProtocols, supportsProtocols, syncError,
  type Group, type Member,
} from './coordinator-group.js';
import type {
  CoordinatorStats, GroupDescription, GroupError, GroupListing, GroupState, HeartbeatRequest, JoinGroupRequest,
  JoinGroupResult, LeaveGroupResult, LeavingMember, SyncGroupRequest, SyncGroupResult,
} from './coordinator-types.js';

export * from './coordinator-types.js';
export {
  DEFAULT_INITIAL_REBALANCE_DELAY_MS, DEFAULT_MAX_GROUP_MEMBERS, DEFAULT_MAX_GROUPS, DEFAULT_MAX_SESSION_TIMEOUT_MS,
  DEFAULT_MIN_SESSION_TIMEOUT_MS,
} from './coordinator-engine.js';

/** Kafka's member ids are client id + '-' + UUID; a hostile client id is cut to this. */
const MAX_ID_PREFIX = 128;

/** The group coordinator; construct with GroupCoordinatorOptions (validated: ERR_INVALID_ARGUMENT). */
export class GroupCoordinator extends GroupEngine {
  // ---- JoinGroup ----------------------------------------------------------------

  join(req: JoinGroupRequest): Promise<JoinGroupResult> {
    const memberId = req.memberId ?? '';
    if (this.closed) return Promise.resolve(joinError(ErrorCode.COORDINATOR_CLOSED, memberId));
    if (!validGroupId(req.groupId)) return Promise.resolve(joinError(ErrorCode.INVALID_GROUP, memberId));
    if (!Number.isInteger(req.sessionTimeoutMs) || req.sessionTimeoutMs < this.minSessionTimeoutMs || req.sessionTimeoutMs > this.maxSessionTimeoutMs) {
      return Promise.resolve(joinError(ErrorCode.INVALID_SESSION_TIMEOUT, memberId));
    }
    let group = this.groups.get(req.groupId);
    if (memberId !== '') {
      if (group === undefined) return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER, memberId));
      return this.joinKnown(group, req);
    }
    if (group === undefined) {
      if (!supportsProtocols(newGroup(req.groupId), req, null)) return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ''));
      if (!this.makeRoomForGroup()) return Promise.resolve(joinError(ErrorCode.GROUP_LIMIT, ''));
      group = newGroup(req.groupId);
      this.groups.set(req.groupId, group);
    }
    return this.joinNew(group, req);
  }

  private joinNew(group: Group, req: JoinGroupRequest): Promise<JoinGroupResult> {
    if (!supportsProtocols(group, req, null)) return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ''));
    const instanceId = req.groupInstanceId ?? null;
    const old = instanceId === null ? undefined : group.members.get(group.staticMembers.get(instanceId) ?? '');
    if (old === undefined && group.members.size + group.pending.size >= this.maxGroupMembers) {
      return Promise.resolve(joinError(ErrorCode.GROUP_LIMIT, ''));
    }
    const memberId = `${(instanceId ?? req.clientId ?? '').slice(0, MAX_ID_PREFIX) || 'member'}-${randomUUID()}`;
    if (old !== undefined) return this.replaceStatic(group, old, memberId, req);
    if (instanceId === null && req.requireKnownMemberId === true) {
      // The id is held (and counts towards the group's size) until it joins or a session passes.
      group.pending.set(memberId, this.timers.setTimeout(() => this.expirePending(group, memberId), req.sessionTimeoutMs));
      return Promise.resolve(joinError(ErrorCode.MEMBER_ID_REQUIRED, memberId));
    }
    return this.addMember(group, memberId, req);
  }

  private joinKnown(group: Group, req: JoinGroupRequest): Promise<JoinGroupResult> {
    const { memberId } = req;
    const pendingTimer = group.pending.get(memberId);
    if (pendingTimer !== undefined) {
      this.timers.clearTimeout(pendingTimer);
      group.pending.delete(memberId);
      if (!supportsProtocols(group, req, null)) {
        this.tryCompleteJoin(group);
        return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, memberId));
      }
      return this.addMember(group, memberId, req);
    }
    if (isFenced(group, memberId, req.groupInstanceId)) return Promise.resolve(joinError(ErrorCode.FENCED_INSTANCE_ID, memberId));
    const member = group.members.get(memberId);
    if (member === undefined) return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER, memberId));
    if (!supportsProtocols(group, req, memberId)) return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, memberId));
    const unchanged = sameProtocols(member, req.protocols);
    switch (group.state) {
      case 'PreparingRebalance':
        return this.updateMember(group, member, req, 'member rejoined');
      case 'CompletingRebalance':
        // It lost its JoinGroup answer: the same answer again.
        if (unchanged) return Promise.resolve(this.currentJoin(group, member, member.memberId === group.leaderId));
        return this.updateMember(group, member, req, 'member changed its protocols');
      case 'Stable':
        if (unchanged && member.memberId !== group.leaderId) return Promise.resolve(this.currentJoin(group, member, false));
        return this.updateMember(group, member, req, unchanged ? 'leader rejoined' : 'member changed its protocols');
      default:
        return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER, memberId));
    }
  }

  private addMember(group: Group, memberId: string, req: JoinGroupRequest): Promise<JoinGroupResult> {
    const member: Member = {
      memberId,
      groupInstanceId: req.groupInstanceId ?? null,
      clientId: req.clientId ?? '',
      clientHost: req.clientHost ?? '',
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: rebalanceTimeout(req),
      protocolType: req.protocolType,
      protocols: copyProtocols(req.protocols),
      assignment: EMPTY,
      joinWaiter: null,
      syncWaiter: null,
      sessionTimer: null,
    };
    group.members.set(memberId, member);
    if (member.groupInstanceId !== null) group.staticMembers.set(member.groupInstanceId, memberId);
    group.leaderId ??= memberId;
    if (group.initialDelay !== null) group.initialDelay.newMemberAdded = true;
    const parked = this.parkJoin(member);
    this.maybePrepareRebalance(group, 'new member joined');
    this.tryCompleteJoin(group);
    return parked;
  }

  private updateMember(group: Group, member: Member, req: JoinGroupRequest, reason: string): Promise<JoinGroupResult> {
    member.protocolType = req.protocolType;
    member.protocols = copyProtocols(req.protocols);
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.rebalanceTimeoutMs = rebalanceTimeout(req);
    if (req.clientId !== undefined) member.clientId = req.clientId;
    if (req.clientHost !== undefined) member.clientHost = req.clientHost;
    const parked = this.parkJoin(member);
    this.maybePrepareRebalance(group, reason);
    this.tryCompleteJoin(group);
    return parked;
  }

  /** A known group.instance.id joining afresh: the new member id takes the old one's place. */
  private replaceStatic(group: Group, old: Member, memberId: string, req: JoinGroupRequest): Promise<JoinGroupResult> {
    const unchanged = sameProtocols(old, req.protocols) && old.protocolType === req.protocolType;
    const leaderBefore = group.leaderId ?? '';
    this.stopSession(old);
    const fenced = joinError(ErrorCode.FENCED_INSTANCE_ID, old.memberId);
    old.joinWaiter?.(fenced);
    old.syncWaiter?.(syncError(ErrorCode.FENCED_INSTANCE_ID));
    const member: Member = {
      ...old, memberId, clientId: req.clientId ?? old.clientId, clientHost: req.clientHost ?? old.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeout(req),
      joinWaiter: null, syncWaiter: null, sessionTimer: null,
    };
    // Same place in join order, so the leader's view of the group does not reshuffle.
    const entries = [...group.members.entries()].map(([id, m]): [string, Member] => (id === old.memberId ? [memberId, member] : [id, m]));
    group.members.clear();
    for (const [id, m] of entries) group.members.set(id, m);
    group.staticMembers.set(member.groupInstanceId!, memberId);
    if (group.leaderId === old.memberId) group.leaderId = memberId;
    if (group.pendingSync.delete(old.memberId)) group.pendingSync.add(memberId);
    if (group.state === 'Stable' && unchanged) {
      // No rebalance: it keeps its assignment and syncs for it. The leader id answered
      // is the one before the swap, so a rejoining leader does not recompute (Kafka does the same).
      this.touch(group, member);
      return Promise.resolve({
        error: null, memberId, generationId: group.generationId, protocolType: group.protocolType,
        protocolName: group.protocolName, leaderId: leaderBefore, members: [],
      });
    }
    member.protocolType = req.protocolType;
    member.protocols = copyProtocols(req.protocols);
    const parked = this.parkJoin(member);
    this.maybePrepareRebalance(group, 'static member rejoined');
    this.tryCompleteJoin(group);
    return parked;
  }

  // ---- SyncGroup ----------------------------------------------------------------

  sync(req: SyncGroupRequest): Promise<SyncGroupResult> {
    if (this.closed) return Promise.resolve(syncError(ErrorCode.COORDINATOR_CLOSED));
    const group = this.groups.get(req.groupId);
    if (group === undefined) return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER));
    if (isFenced(group, req.memberId, req.groupInstanceId)) return Promise.resolve(syncError(ErrorCode.FENCED_INSTANCE_ID));
    const member = group.members.get(req.memberId);
    if (member === undefined) return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER));
    if (req.generationId !== group.generationId) return Promise.resolve(syncError(ErrorCode.ILLEGAL_GENERATION));
    switch (group.state) {
      case 'PreparingRebalance':
        return Promise.resolve(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      case 'CompletingRebalance': {
        this.syncArrived(group, member);
        this.stopSession(member);
        member.syncWaiter?.(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
        const parked = new Promise<SyncGroupResult>((resolve) => { member.syncWaiter = resolve; });
        if (member.memberId === group.leaderId) this.applyAssignment(group, req.assignments);
        return parked;
      }
      case 'Stable':
        this.syncArrived(group, member);
        this.touch(group, member);
        return Promise.resolve(this.syncAnswer(group, member));
      default:
        return Promise.resolve(syncError(ErrorCode.UNKNOWN_MEMBER));
    }
  }

  private applyAssignment(group: Group, assignments: SyncGroupRequest['assignments']): void {
    const byMember = new Map<string, Buffer>();
    for (const a of assignments) byMember.set(a.memberId, a.assignment);
    for (const m of group.members.values()) {
      const a = byMember.get(m.memberId);
      m.assignment = a === undefined ? EMPTY : Buffer.from(a);
    }
    group.state = 'Stable';
    for (const m of group.members.values()) this.answerSync(group, m, this.syncAnswer(group, m));
  }

  // ---- Heartbeat, commits, leave ------------------------------------------------

  heartbeat(req: HeartbeatRequest): { error: GroupError | null } {
    const error = this.checkMember(req.groupId, req.memberId, req.generationId, req.groupInstanceId);
    if (typeof error === 'string') return { error };
    const [group, member] = error;
    this.touch(group, member);
    return { error: group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : null };
  }

  /**
   * May this OffsetCommit be stored? Kafka's rules: generation < 0 into a group with
   * no members (or no group) is a simple consumer's commit, allowed; otherwise the
   * member must be known and on the current generation, and not between its
   * JoinGroup and the leader's assignment (ERR_REBALANCE_IN_PROGRESS). Commits while
   * the group prepares a rebalance are allowed, so members commit before they rejoin.
   */
  validateCommit(groupId: string, memberId: string, generationId: number, groupInstanceId?: string | null): GroupError | null {
    if (this.closed) return ErrorCode.COORDINATOR_CLOSED;
    const group = this.groups.get(groupId);
    if (group === undefined) return generationId < 0 ? null : ErrorCode.ILLEGAL_GENERATION;
    if (isFenced(group, memberId, groupInstanceId)) return ErrorCode.FENCED_INSTANCE_ID;
    if (generationId < 0 && group.state === 'Empty') return null;
    const checked = this.checkMember(groupId, memberId, generationId, groupInstanceId);
    if (typeof checked === 'string') return checked;
    const [, member] = checked;
    if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    this.touch(group, member);
    return null;
  }

  private checkMember(groupId: string, memberId: string, generationId: number, groupInstanceId: string | null | undefined): GroupError | [Group, Member] {
    if (this.closed) return ErrorCode.COORDINATOR_CLOSED;
    const group = this.groups.get(groupId);
    if (group === undefined) return ErrorCode.UNKNOWN_MEMBER;
    if (isFenced(group, memberId, groupInstanceId)) return ErrorCode.FENCED_INSTANCE_ID;
    const member = group.members.get(memberId);
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    return [group, member];
  }

  /** LeaveGroup for one or several members (v3+ batches them); a static member may leave by instance id alone. */
  leave(groupId: string, leaving: readonly LeavingMember[]): LeaveGroupResult {
    if (this.closed) return { error: ErrorCode.COORDINATOR_CLOSED, members: [] };
    const group = this.groups.get(groupId);
    const results: LeaveGroupResult['members'] = [];
    let removed = 0;
    for (const l of leaving) {
      const instanceId = l.groupInstanceId ?? null;
      const answer = (error: GroupError | null) => results.push({ memberId: l.memberId, groupInstanceId: instanceId, error });
      if (group === undefined) { answer(ErrorCode.UNKNOWN_MEMBER); continue; }
      let member: Member | undefined;
      if (instanceId !== null) {
        const current = group.staticMembers.get(instanceId);
        if (current === undefined) { answer(ErrorCode.UNKNOWN_MEMBER); continue; }
        if (l.memberId !== '' && l.memberId !== current) { answer(ErrorCode.FENCED_INSTANCE_ID); continue; }
        member = group.members.get(current);
      } else {
        const pendingTimer = group.pending.get(l.memberId);
        if (pendingTimer !== undefined) {
          this.timers.clearTimeout(pendingTimer);
          group.pending.delete(l.memberId);
          removed++;
          answer(null);
          continue;
        }
        member = group.members.get(l.memberId);
      }
      if (member === undefined) { answer(ErrorCode.UNKNOWN_MEMBER); continue; }
      this.removeMember(group, member, 'leave');
      removed++;
      answer(null);
    }
    if (group !== undefined && removed > 0) this.afterRemoval(group, 'member left');
    return { error: null, members: results };
  }

  // ---- Views and lifecycle ------------------------------------------------------

  describeGroup(groupId: string): GroupDescription | null {
    const group = this.groups.get(groupId);
    if (group === undefined) return null;
    return {
      groupId, state: group.state, generationId: group.generationId, protocolType: group.protocolType ?? '',
      protocolName: group.protocolName ?? '', leaderId: group.leaderId ?? '',
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs, rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        metadata: metadataFor(m, group.protocolName), assignment: m.assignment,
      })),
    };
  }

  /** Every group held, optionally only those in the given states. */
  listGroups(states?: readonly GroupState[]): GroupListing[] {
    const out: GroupListing[] = [];
    for (const g of this.groups.values()) {
      if (states !== undefined && states.length > 0 && !states.includes(g.state)) continue;
      out.push({ groupId: g.groupId, protocolType: g.protocolType ?? '', state: g.state });
    }
    return out;
  }

  /** Forgets an Empty group (Kafka's DeleteGroups: the group goes Dead). Its offsets are the caller's to drop. */
  deleteGroup(groupId: string): GroupError | null {
    if (this.closed) return ErrorCode.COORDINATOR_CLOSED;
    const group = this.groups.get(groupId);
    if (group === undefined) return ErrorCode.UNKNOWN_GROUP;
    if (group.state !== 'Empty') return ErrorCode.GROUP_NOT_EMPTY;
    this.dropGroup(group);
    this.emit({ type: 'group-deleted', groupId });
    return null;
  }

  stats(): CoordinatorStats {
    let members = 0;
    for (const g of this.groups.values()) members += g.members.size;
    return { groups: this.groups.size, members, rebalances: this.rebalances, sessionExpirations: this.sessionExpirations };
  }

  /** Answers every parked request ERR_COORDINATOR_CLOSED, stops every timer; later calls answer the same. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const group of [...this.groups.values()]) {
      for (const m of group.members.values()) {
        this.stopSession(m);
        const jw = m.joinWaiter;
        const sw = m.syncWaiter;
        m.joinWaiter = null;
        m.syncWaiter = null;
        jw?.(joinError(ErrorCode.COORDINATOR_CLOSED, m.memberId));
        sw?.(syncError(ErrorCode.COORDINATOR_CLOSED));
      }
      this.dropGroup(group);
    }
  }

  private makeRoomForGroup(): boolean {
    if (this.groups.size < this.maxGroups) return true;
    for (const g of this.groups.values()) {
      if (g.state === 'Empty' && g.members.size === 0 && g.pending.size === 0) {
        this.dropGroup(g);
        return true;
      }
    }
    return false;
  }

}

function validGroupId(groupId: unknown): groupId is string {
  return typeof groupId === 'string' && groupId.length > 0 && groupId.length <= MAX_GROUP_NAME_LENGTH;
}

function rebalanceTimeout(req: JoinGroupRequest): number {
  const ms = req.rebalanceTimeoutMs;
  return ms === undefined || !Number.isInteger(ms) || ms <= 0 ? req.sessionTimeoutMs : ms;
}
