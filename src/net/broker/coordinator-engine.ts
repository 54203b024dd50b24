/**
 * The rebalance engine under GroupCoordinator (coordinator.ts): the coordinator's
 * settings and groups, and the transitions every public call shares: parking and
 * answering JoinGroup and SyncGroup, preparing and completing a rebalance (with the
 * initial delay), removing members, session and sync timers. coordinator.ts holds the
 * public calls (join, sync, heartbeat, leave, commit check, views, close) and their
 * checks. The state diagram and the contract are in coordinator.ts's head comment.
 */
import { ErrorCode, invalidArgument } from '../../errors.js';
import { EMPTY, joinError, metadataFor, selectProtocol, syncError, type Group, type Member } from './coordinator-group.js';
import type {
  CoordinatorEvent, CoordinatorTimers, GroupCoordinatorOptions, JoinGroupResult, RemovalReason, SyncGroupResult,
} from './coordinator-types.js';

export const DEFAULT_INITIAL_REBALANCE_DELAY_MS = 3000;
export const DEFAULT_MIN_SESSION_TIMEOUT_MS = 6000;
export const DEFAULT_MAX_SESSION_TIMEOUT_MS = 1_800_000;
export const DEFAULT_MAX_GROUP_MEMBERS = 1000;
export const DEFAULT_MAX_GROUPS = 100_000;

const realTimers: CoordinatorTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

function nonNegativeInteger(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 0) throw invalidArgument(`${name} must be a non-negative integer, got ${v}`);
  return v;
}

/** Not used on its own: GroupCoordinator is the class to construct. */
export abstract class GroupEngine {
  protected readonly groups = new Map<string, Group>();
  protected readonly timers: CoordinatorTimers;
  protected readonly observer: ((event: CoordinatorEvent) => void) | undefined;
  readonly initialRebalanceDelayMs: number;
  readonly minSessionTimeoutMs: number;
  readonly maxSessionTimeoutMs: number;
  readonly maxGroupMembers: number;
  readonly maxGroups: number;
  protected closed = false;
  protected rebalances = 0;
  protected sessionExpirations = 0;

  constructor(options: GroupCoordinatorOptions = {}) {
    this.initialRebalanceDelayMs = nonNegativeInteger('initialRebalanceDelayMs', options.initialRebalanceDelayMs, DEFAULT_INITIAL_REBALANCE_DELAY_MS);
    this.minSessionTimeoutMs = nonNegativeInteger('minSessionTimeoutMs', options.minSessionTimeoutMs, DEFAULT_MIN_SESSION_TIMEOUT_MS);
    this.maxSessionTimeoutMs = nonNegativeInteger('maxSessionTimeoutMs', options.maxSessionTimeoutMs, DEFAULT_MAX_SESSION_TIMEOUT_MS);
    if (this.maxSessionTimeoutMs < this.minSessionTimeoutMs) {
      throw invalidArgument(`maxSessionTimeoutMs (${this.maxSessionTimeoutMs}) is below minSessionTimeoutMs (${this.minSessionTimeoutMs})`);
    }
    this.maxGroupMembers = nonNegativeInteger('maxGroupMembers', options.maxGroupMembers, DEFAULT_MAX_GROUP_MEMBERS);
    this.maxGroups = nonNegativeInteger('maxGroups', options.maxGroups, DEFAULT_MAX_GROUPS);
    this.timers = options.timers ?? realTimers;
    this.observer = options.observer;
  }

  // ---- Answers ------------------------------------------------------------------

  protected currentJoin(group: Group, member: Member, withMembers: boolean): JoinGroupResult {
    this.touch(group, member);
    return {
      error: null, memberId: member.memberId, generationId: group.generationId, protocolType: group.protocolType,
      protocolName: group.protocolName, leaderId: group.leaderId ?? '',
      members: withMembers ? this.memberList(group) : [],
    };
  }

  protected parkJoin(member: Member): Promise<JoinGroupResult> {
    this.stopSession(member);
    // A second JoinGroup from the same member (a retry on a new connection) supersedes the first.
    member.joinWaiter?.(joinError(ErrorCode.REBALANCE_IN_PROGRESS, member.memberId));
    return new Promise((resolve) => { member.joinWaiter = resolve; });
  }


  // ---- Rebalance ----------------------------------------------------------------

  protected maybePrepareRebalance(group: Group, reason: string): void {
    if (group.state === 'Stable' || group.state === 'CompletingRebalance' || group.state === 'Empty') this.prepareRebalance(group, reason);
  }

  protected prepareRebalance(group: Group, reason: string): void {
    if (group.state === 'CompletingRebalance') {
      for (const m of group.members.values()) {
        m.assignment = EMPTY;
        this.answerSync(group, m, syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      }
    }
    this.clearSyncTimer(group);
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    this.rebalances++;
    this.emit({ type: 'rebalance-start', groupId: group.groupId, generationId: group.generationId, reason });
    const timeoutMs = groupRebalanceTimeout(group);
    if (wasEmpty && this.initialRebalanceDelayMs > 0) {
      const delayMs = Math.min(this.initialRebalanceDelayMs, timeoutMs);
      group.initialDelay = { remainingMs: Math.max(timeoutMs - this.initialRebalanceDelayMs, 0), newMemberAdded: false };
      group.joinTimer = this.timers.setTimeout(() => this.initialDelayStep(group), delayMs);
    } else {
      group.joinTimer = this.timers.setTimeout(() => this.completeJoin(group), timeoutMs);
    }
    this.tryCompleteJoin(group);
  }

  protected initialDelayStep(group: Group): void {
    const delay = group.initialDelay;
    if (delay === null || this.groups.get(group.groupId) !== group) return;
    if (delay.newMemberAdded && delay.remainingMs > 0) {
      const stepMs = Math.min(this.initialRebalanceDelayMs, delay.remainingMs);
      delay.remainingMs -= stepMs;
      delay.newMemberAdded = false;
      group.joinTimer = this.timers.setTimeout(() => this.initialDelayStep(group), stepMs);
      return;
    }
    this.completeJoin(group);
  }

  protected tryCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance' || group.initialDelay !== null || group.pending.size > 0) return;
    for (const m of group.members.values()) if (m.joinWaiter === null) return;
    this.completeJoin(group);
  }

  protected completeJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    if (group.joinTimer !== null) this.timers.clearTimeout(group.joinTimer);
    group.joinTimer = null;
    group.initialDelay = null;
    for (const m of [...group.members.values()]) {
      if (m.joinWaiter === null && m.groupInstanceId === null) this.removeMember(group, m, 'rebalance-timeout');
    }
    group.generationId++;
    if (group.members.size === 0) {
      group.state = 'Empty';
      group.protocolName = null;
      group.leaderId = null;
      this.emit({ type: 'rebalance-end', groupId: group.groupId, generationId: group.generationId, members: 0, state: 'Empty' });
      return;
    }
    const members = [...group.members.values()];
    group.protocolType = members[0]!.protocolType;
    group.protocolName = selectProtocol(members) ?? null;
    const leader = group.leaderId === null ? undefined : group.members.get(group.leaderId);
    if (leader === undefined || leader.joinWaiter === null) {
      group.leaderId = (members.find((m) => m.joinWaiter !== null) ?? leader ?? members[0]!).memberId;
    }
    group.state = 'CompletingRebalance';
    const generationId = group.generationId;
    for (const m of members) {
      m.assignment = EMPTY;
      group.pendingSync.add(m.memberId);
    }
    group.syncTimer = this.timers.setTimeout(() => this.expirePendingSync(group, generationId), groupRebalanceTimeout(group));
    for (const m of members) {
      const waiter = m.joinWaiter;
      if (waiter === null) continue;
      m.joinWaiter = null;
      waiter(this.currentJoin(group, m, m.memberId === group.leaderId));
    }
    this.emit({ type: 'rebalance-end', groupId: group.groupId, generationId, members: members.length, state: 'CompletingRebalance' });
  }

  protected expirePendingSync(group: Group, generationId: number): void {
    group.syncTimer = null;
    if (this.groups.get(group.groupId) !== group || group.generationId !== generationId) return;
    if (group.state !== 'CompletingRebalance' && group.state !== 'Stable') return;
    const late = [...group.pendingSync].map((id) => group.members.get(id)).filter((m): m is Member => m !== undefined);
    group.pendingSync.clear();
    for (const m of late) this.removeMember(group, m, 'sync-timeout');
    if (late.length > 0) this.afterRemoval(group, 'members did not sync in time');
  }


  protected syncAnswer(group: Group, member: Member): SyncGroupResult {
    return { error: null, assignment: member.assignment, protocolType: group.protocolType, protocolName: group.protocolName };
  }


  protected syncArrived(group: Group, member: Member): void {
    group.pendingSync.delete(member.memberId);
    if (group.pendingSync.size === 0) this.clearSyncTimer(group);
  }


  protected answerSync(group: Group, member: Member, result: SyncGroupResult): void {
    const waiter = member.syncWaiter;
    if (waiter === null) return;
    member.syncWaiter = null;
    this.touch(group, member);
    waiter(result);
  }

  protected clearSyncTimer(group: Group): void {
    if (group.syncTimer !== null) this.timers.clearTimeout(group.syncTimer);
    group.syncTimer = null;
    group.pendingSync.clear();
  }


  // ---- Removal and sessions -----------------------------------------------------

  /** Takes a member out (answering its parked requests ERR_UNKNOWN_MEMBER); the caller then calls afterRemoval. */
  protected removeMember(group: Group, member: Member, reason: RemovalReason): void {
    this.stopSession(member);
    const jw = member.joinWaiter;
    const sw = member.syncWaiter;
    member.joinWaiter = null;
    member.syncWaiter = null;
    group.members.delete(member.memberId);
    if (member.groupInstanceId !== null && group.staticMembers.get(member.groupInstanceId) === member.memberId) {
      group.staticMembers.delete(member.groupInstanceId);
    }
    group.pendingSync.delete(member.memberId);
    if (group.leaderId === member.memberId) group.leaderId = group.members.keys().next().value ?? null;
    jw?.(joinError(ErrorCode.UNKNOWN_MEMBER, member.memberId));
    sw?.(syncError(ErrorCode.UNKNOWN_MEMBER));
    this.emit({ type: 'member-removed', groupId: group.groupId, memberId: member.memberId, reason });
  }

  protected afterRemoval(group: Group, reason: string): void {
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') this.prepareRebalance(group, reason);
    else this.tryCompleteJoin(group);
  }

  /** Restarts the member's session timer; none while a request of it is parked. */
  protected touch(group: Group, member: Member): void {
    this.stopSession(member);
    if (member.joinWaiter !== null || member.syncWaiter !== null || this.closed) return;
    member.sessionTimer = this.timers.setTimeout(() => this.expireSession(group, member), member.sessionTimeoutMs);
  }

  protected stopSession(member: Member): void {
    if (member.sessionTimer !== null) this.timers.clearTimeout(member.sessionTimer);
    member.sessionTimer = null;
  }

  protected expireSession(group: Group, member: Member): void {
    member.sessionTimer = null;
    if (this.groups.get(group.groupId) !== group || group.members.get(member.memberId) !== member) return;
    if (member.joinWaiter !== null || member.syncWaiter !== null) return;
    this.sessionExpirations++;
    this.removeMember(group, member, 'session-timeout');
    this.afterRemoval(group, 'member session expired');
  }

  protected expirePending(group: Group, memberId: string): void {
    if (!group.pending.delete(memberId)) return;
    this.tryCompleteJoin(group);
  }


  protected memberList(group: Group): JoinGroupResult['members'] {
    return [...group.members.values()].map((m) => ({
      memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata: metadataFor(m, group.protocolName),
    }));
  }

  /** The group as it is now, or null when the coordinator does not have it. */

  protected dropGroup(group: Group): void {
    if (group.joinTimer !== null) this.timers.clearTimeout(group.joinTimer);
    group.joinTimer = null;
    this.clearSyncTimer(group);
    for (const t of group.pending.values()) this.timers.clearTimeout(t);
    group.pending.clear();
    group.state = 'Dead';
    this.groups.delete(group.groupId);
  }

  /** At the group limit, forgets the oldest Empty group that holds no member ids; false when there is none. */

  protected emit(event: CoordinatorEvent): void {
    if (this.observer === undefined) return;
    try {
      this.observer(event);
    } catch {
      // An observer (metrics, logs) must not break the group.
    }
  }
}

export function groupRebalanceTimeout(group: Group): number {
  let ms = 0;
  for (const m of group.members.values()) ms = Math.max(ms, m.rebalanceTimeoutMs);
  return ms;
}
