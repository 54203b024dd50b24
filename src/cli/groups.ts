/**
 * `commitlog groups list|describe`: consumer groups through the broker (Admin client),
 * like kafka-consumer-groups. Groups of either protocol: members of commitlog's own
 * Consumer and of Kafka clients on the Kafka listener share one coordinator, so
 * `describe` shows them all, with each partition's owner, committed offset and lag.
 */
import { Admin, type GroupDescription } from '../net/client/admin.js';
import { CLIENT_OPTIONS, CLIENT_USAGE, Output, UsageError, clientSettings, guard, table, parse } from './args.js';

const USAGE = `usage: commitlog groups list
       commitlog groups describe GROUP [--topic TOPIC]

  list       prints every group the broker knows (with members, or with committed
             offsets), its state and protocol type
  describe   prints the group's state, members and, per partition, the owning member,
             the committed offset, the log end and the lag (of TOPIC, or of every topic
             the members subscribe to or the group committed offsets for)

  --topic TOPIC        describe only this topic's partitions
${CLIENT_USAGE}`;

const OPTIONS = { ...CLIENT_OPTIONS, topic: { type: 'string' } } as const;

export function run(args: string[]): Promise<number> {
  return guard('groups', USAGE, async () => {
    const [action, ...rest] = args;
    if (action === undefined || action === '--help' || action === '-h') {
      process.stdout.write(USAGE);
      return action === undefined ? 2 : 0;
    }
    if (action !== 'list' && action !== 'describe') throw new UsageError(`unknown action ${JSON.stringify(action)}: list or describe`);
    const parsed = parse(rest, OPTIONS, USAGE, action === 'list' ? { min: 0, max: 0 } : { min: 1, max: 1, names: 'GROUP' });
    if (parsed === null) return 0;
    const { values } = parsed;
    if (action === 'list' && values.topic !== undefined) throw new UsageError('--topic does not apply to groups list');
    const { broker } = clientSettings(values, 'groups');
    const admin = new Admin({ broker, clientId: 'commitlog-groups', retries: 2 });
    const out = new Output();
    try {
      if (action === 'list') {
        const groups = await admin.listGroups();
        out.push(table(['GROUP', 'STATE', 'PROTOCOL'], groups.map((g) => [g.group, g.state, g.protocolType === '' ? '-' : g.protocolType])));
      } else {
        const d = await admin.describeGroup(parsed.positionals[0]!, values.topic as string | undefined);
        out.push(describe(d));
      }
    } finally {
      await admin.close();
      await out.end();
    }
    return 0;
  });
}

function describe(d: GroupDescription): string {
  const lines: string[] = [];
  const assignor = d.protocolName === '' ? '' : ` assignor: ${d.protocolName}`;
  lines.push(`group: ${d.group} state: ${d.state} generation: ${d.generationId}${assignor} members: ${d.members.length}\n`);
  if (d.members.length > 0) {
    lines.push('\n');
    lines.push(table(['MEMBER', 'CLIENT-ID', 'HOST', 'PARTITIONS'], d.members.map((m) => [
      m.memberId, m.clientId || '-', m.clientHost || '-',
      m.assignment.length === 0 ? '-' : m.assignment.map((tp) => `${tp.topic}:${[...tp.partitions].sort((a, b) => a - b).join(',')}`).join(' '),
    ])));
  }
  const rows = d.topics.flatMap((t) => t.partitions.map((p) => [
    t.topic, String(p.partition), p.committedOffset === null ? '-' : String(p.committedOffset), String(p.nextOffset), String(p.lag),
    p.memberId ?? '-', p.committedPastEnd ? 'committed past the log end' : p.committedBeforeStart ? 'committed before the log start' : '',
  ]));
  lines.push('\n');
  lines.push(rows.length === 0 ? 'no committed offsets and no assigned partitions\n' : table(['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'MEMBER', 'NOTE'], rows));
  return lines.join('');
}
