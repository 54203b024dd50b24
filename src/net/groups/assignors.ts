/**
 * Partition assignors: what a group's leader runs to divide the subscribed topics'
 * partitions among the members. Named and computed as Kafka's are ("range",
 * "roundrobin"), so a group mixing commitlog Consumers with Kafka clients that offer
 * the same names gets the assignment any of them would compute.
 *
 *   range       per topic, members sorted by member id; each gets a contiguous run of
 *               floor(n / m) partitions, the first n % m one more (Kafka's
 *               RangeAssignor, librdkafka's "range")
 *   roundrobin  all subscribed partitions sorted by topic then partition, dealt to the
 *               members sorted by id in turn, skipping a member not subscribed to the
 *               partition's topic (Kafka's RoundRobinAssignor, kafkajs's default)
 *
 * A custom assignor is any object with a `name` and an `assign` of the same shape.
 */
import { invalidArgument } from '../../errors.js';

export interface AssignorMember {
  memberId: string;
  /** Topics the member subscribed to. */
  topics: readonly string[];
  userData?: Buffer | null;
}

/** memberId -> topic -> partitions, sorted ascending. Every member appears, maybe with nothing. */
export type GroupAssignment = Map<string, Map<string, number[]>>;

export interface Assignor {
  readonly name: string;
  /** `partitions` gives each subscribed topic's partition count (a topic absent from it is skipped). */
  assign(members: readonly AssignorMember[], partitions: ReadonlyMap<string, number>): GroupAssignment;
}

function emptyAssignment(members: readonly AssignorMember[]): GroupAssignment {
  const out: GroupAssignment = new Map();
  for (const m of [...members].sort(byId)) out.set(m.memberId, new Map());
  return out;
}

function byId(a: AssignorMember, b: AssignorMember): number {
  return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}

function give(out: GroupAssignment, memberId: string, topic: string, partition: number): void {
  const topics = out.get(memberId)!;
  let list = topics.get(topic);
  if (list === undefined) topics.set(topic, (list = []));
  list.push(partition);
}

function subscribedTopics(members: readonly AssignorMember[], partitions: ReadonlyMap<string, number>): string[] {
  const topics = new Set<string>();
  for (const m of members) for (const t of m.topics) if ((partitions.get(t) ?? 0) > 0) topics.add(t);
  return [...topics].sort();
}

export const rangeAssignor: Assignor = {
  name: 'range',
  assign(members, partitions) {
    const out = emptyAssignment(members);
    for (const topic of subscribedTopics(members, partitions)) {
      const consumers = members.filter((m) => m.topics.includes(topic)).sort(byId);
      const n = partitions.get(topic)!;
      const per = Math.floor(n / consumers.length);
      const extra = n % consumers.length;
      consumers.forEach((m, i) => {
        const start = i * per + Math.min(i, extra);
        const length = per + (i < extra ? 1 : 0);
        for (let p = start; p < start + length; p++) give(out, m.memberId, topic, p);
      });
    }
    return out;
  },
};

export const roundRobinAssignor: Assignor = {
  name: 'roundrobin',
  assign(members, partitions) {
    const out = emptyAssignment(members);
    const sorted = [...members].sort(byId);
    if (sorted.length === 0) return out;
    let next = 0;
    for (const topic of subscribedTopics(members, partitions)) {
      const n = partitions.get(topic)!;
      for (let p = 0; p < n; p++) {
        // The next member in the circle that subscribed to this topic (at least one did).
        while (!sorted[next % sorted.length]!.topics.includes(topic)) next++;
        give(out, sorted[next % sorted.length]!.memberId, topic, p);
        next++;
      }
    }
    return out;
  },
};

export const BUILT_IN_ASSIGNORS: readonly Assignor[] = [rangeAssignor, roundRobinAssignor];

/** Checks a user's assignor list: non-empty, each with a name and an assign function, names unique. */
export function assignorsOption(value: unknown): Assignor[] {
  if (value === undefined) return [rangeAssignor, roundRobinAssignor];
  if (!Array.isArray(value) || value.length === 0) throw invalidArgument('assignors must be a non-empty array of assignors');
  const names = new Set<string>();
  for (const a of value as Assignor[]) {
    if (a === null || typeof a !== 'object' || typeof a.name !== 'string' || a.name === '' || typeof a.assign !== 'function') {
      throw invalidArgument('each assignor needs a non-empty string name and an assign(members, partitions) function');
    }
    if (names.has(a.name)) throw invalidArgument(`assignor name '${a.name}' appears twice`);
    names.add(a.name);
  }
  return [...(value as Assignor[])];
}
