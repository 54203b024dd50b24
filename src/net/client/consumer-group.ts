/**
 * A Consumer's group membership (Consumer options `group` without `partitions`): the
 * GroupMember over its own coordinator connection, turned into what the Consumer
 * does with partitions. Kafka's subscribe(); a Consumer given `partitions` is Kafka's
 * assign() and only stores committed offsets under the group, as before.
 *
 * - Assigned: the Consumer adds the partitions of its topic (each resumes at the
 *   group's committed offset, else `from`) and tells the application (onAssigned).
 * - Revoked (a rebalance, or close()): the application hears first (onRevoked), then
 *   the Consumer commits, for the partitions it gives up, the positions of the
 *   records the application is done with (those handed out before its latest next()),
 *   with this member's generation, and stops fetching them. So the next owner resumes
 *   exactly after the last record handed out and finished; only a record the
 *   application held while the rebalance came (and anything past a commit that
 *   failed) is handed out again: at least once.
 * - Lost (the coordinator dropped this member: its session passed without a heartbeat
 *   reaching it): the partitions stop without a commit (it would be refused; their new
 *   owner resumes at the last commit).
 *
 * Rebalancing is eager (every member gives up everything, then all get their new
 * assignment): Kafka's classic protocol, which every Kafka client speaks; a group
 * may mix commitlog Consumers with Kafka clients on the Kafka listener as long as they
 * share an assignor name ("range", "roundrobin").
 */
import { invalidArgument, type CommitLogError } from '../../errors.js';
import { assignorsOption, type Assignor } from '../groups/assignors.js';
import { intOption } from './client-types.js';
import type { ConnectionOptions } from './connection.js';
import { GroupMember } from './group-member.js';
import { NativeGroupTransport } from './group-transport.js';

export interface GroupOptions {
  /** How long the broker waits without a heartbeat before it drops this member; default 10000. */
  sessionTimeoutMs?: number;
  /** How long a rebalance waits for this member to rejoin (its revoke and commit included); default 30000. */
  rebalanceTimeoutMs?: number;
  /** Heartbeats are sent this often (a third of the session timeout or less); default 3000. */
  heartbeatIntervalMs?: number;
  /** Static membership (Kafka's group.instance.id): a restart within the session timeout keeps the assignment without a rebalance. */
  groupInstanceId?: string;
  /** Assignors offered, in preference order; default [range, roundrobin] (src/net/groups/assignors.ts). */
  assignors?: Assignor[];
  /** Told the partitions of each new generation (after they are added). */
  onAssigned?: (partitions: number[]) => void;
  /** Told the partitions given up, before their positions are committed; awaited. */
  onRevoked?: (partitions: number[]) => void | Promise<void>;
}

/** What the membership needs of its Consumer. */
export interface GroupHost {
  readonly topic: string;
  readonly group: string;
  /** The topic's partition count (for the leader's assignment); ERR_UNKNOWN_TOPIC. */
  partitionCount(topic: string): Promise<number>;
  /** Adds and starts the partitions (committed offset, else `from`). */
  addPartitions(partitions: number[]): Promise<void>;
  /** Commits (unless lost) the partitions' processed positions with the current generation, then stops and removes them. */
  removePartitions(partitions: number[], lost: boolean): Promise<void>;
  /** The membership stopped for good (see GroupMember). */
  failed(err: CommitLogError): void;
}

interface ResolvedGroupOptions {
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  groupInstanceId: string | null;
  assignors: Assignor[];
}

/** The options with their defaults; ERR_INVALID_ARGUMENT for a bad one (the Consumer's constructor calls this). */
export function resolveGroupOptions(options: GroupOptions): ResolvedGroupOptions {
  const sessionTimeoutMs = intOption('sessionTimeoutMs', options.sessionTimeoutMs, 10_000, 1, 0x7fffffff);
  const rebalanceTimeoutMs = intOption('rebalanceTimeoutMs', options.rebalanceTimeoutMs, 30_000, 1, 0x7fffffff);
  const heartbeatIntervalMs = intOption('heartbeatIntervalMs', options.heartbeatIntervalMs, Math.max(1, Math.min(3000, Math.floor(sessionTimeoutMs / 3))), 1, 0x7fffffff);
  if (heartbeatIntervalMs >= sessionTimeoutMs) throw invalidArgument(`heartbeatIntervalMs (${heartbeatIntervalMs}) must be below sessionTimeoutMs (${sessionTimeoutMs})`);
  const instance = options.groupInstanceId;
  if (instance !== undefined && (typeof instance !== 'string' || instance.length === 0)) throw invalidArgument('groupInstanceId must be a non-empty string');
  for (const hook of ['onAssigned', 'onRevoked'] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw invalidArgument(`${hook} must be a function`);
  }
  return { sessionTimeoutMs, rebalanceTimeoutMs, heartbeatIntervalMs, groupInstanceId: instance ?? null, assignors: assignorsOption(options.assignors) };
}

export class ConsumerGroup {
  private readonly member: GroupMember;
  private readonly transport: NativeGroupTransport;
  private firstAssignment: Promise<void>;
  private resolveFirst!: () => void;

  constructor(host: GroupHost, connection: ConnectionOptions, options: GroupOptions) {
    const { sessionTimeoutMs, rebalanceTimeoutMs, heartbeatIntervalMs, groupInstanceId, assignors } = resolveGroupOptions(options);
    this.firstAssignment = new Promise((resolve) => (this.resolveFirst = resolve));
    // A JoinGroup waits for the rebalance; its connection must not time it out first.
    this.transport = new NativeGroupTransport(connection, async (topics) => {
      const counts = new Map<string, number>();
      for (const t of topics) counts.set(t, await host.partitionCount(t));
      return counts;
    });
    const mine = (tps: { topic: string; partitions: number[] }[]): number[] =>
      tps.filter((tp) => tp.topic === host.topic).flatMap((tp) => tp.partitions).sort((a, b) => a - b);
    this.member = new GroupMember(
      {
        groupId: host.group, topics: [host.topic], assignors, sessionTimeoutMs, rebalanceTimeoutMs, heartbeatIntervalMs,
        groupInstanceId, clientId: connection.clientId,
      },
      this.transport,
      {
        onAssigned: async (tps) => {
          const partitions = mine(tps);
          await host.addPartitions(partitions);
          options.onAssigned?.(partitions);
          this.resolveFirst();
        },
        onRevoked: async (tps, lost) => {
          const partitions = mine(tps);
          if (options.onRevoked !== undefined) await options.onRevoked(partitions);
          await host.removePartitions(partitions, lost);
        },
        onError: (err) => {
          host.failed(err);
          this.resolveFirst();
        },
      },
    );
  }

  /** Joins; resolves once the first generation's partitions are added (or the membership failed). */
  start(): Promise<void> {
    this.member.start();
    return this.firstAssignment;
  }

  /** The member id and generation commits carry. */
  get identity(): { memberId: string; generationId: number; groupInstanceId: string | null } {
    return this.member.commitIdentity;
  }

  /** Revokes (the Consumer commits), leaves the group, closes the coordinator connection. */
  async close(): Promise<void> {
    this.resolveFirst();
    await this.member.close();
    await this.transport.close();
  }
}
