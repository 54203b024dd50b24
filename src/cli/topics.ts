/**
 * `commitlog topics create|list|describe|delete`: topic administration through the
 * broker (Admin client), like kafka-topics. `list` and `describe` also work offline on
 * a data directory with --dir (read-only, no lock: usable next to a running broker,
 * whose active segments it reads with pread, so a seal meanwhile is no SIGBUS; see
 * data-dir.ts), which is also how `describe` learns sizes on disk: the protocol's
 * Metadata response carries offsets only.
 */
import { Admin } from '../net/client/admin.js';
import { FileReader, locate, scanSegment, type PartitionFiles } from '../ops/data-dir.js';
import { diskUsage } from '../ops/metrics.js';
import { formatBytes } from '../ops/progress.js';
import { CLIENT_OPTIONS, CLIENT_USAGE, Output, UsageError, clientSettings, guard, table, intFlag, parse } from './args.js';

const USAGE = `usage: commitlog topics create TOPIC [--partitions N] [--segment-bytes N]
                              [--retention-ms MS] [--retention-bytes N]
       commitlog topics list [--dir DIR]
       commitlog topics describe TOPIC [--dir DIR]
       commitlog topics delete TOPIC

  create     creates a topic (default 1 partition; the other settings default to the
             broker's: --retention-ms/--retention-bytes -1 means unlimited)
  list       prints every topic's name, one per line
  describe   prints the topic's partitions with their earliest and latest offsets
             (and, with --dir, the segments and size on disk)
  delete     deletes the topic, its data and the consumer groups' offsets for it

  --dir DIR            read a data directory offline instead of asking the broker
${CLIENT_USAGE}`;

const ACTIONS = ['create', 'list', 'describe', 'delete'] as const;
type Action = (typeof ACTIONS)[number];

const OPTIONS = {
  ...CLIENT_OPTIONS,
  partitions: { type: 'string' },
  'segment-bytes': { type: 'string' },
  'retention-ms': { type: 'string' },
  'retention-bytes': { type: 'string' },
  dir: { type: 'string' },
} as const;

const ALLOWED: Record<Action, string[]> = {
  create: ['partitions', 'segment-bytes', 'retention-ms', 'retention-bytes'],
  list: ['dir'],
  describe: ['dir'],
  delete: [],
};

export function run(args: string[]): Promise<number> {
  return guard('topics', USAGE, async () => {
    const [action, ...rest] = args;
    if (action === undefined || action === '--help' || action === '-h') {
      process.stdout.write(USAGE);
      return action === undefined ? 2 : 0;
    }
    if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}: create, list, describe or delete`);
    const a = action as Action;
    const parsed = parse(rest, OPTIONS, USAGE, a === 'list' ? { min: 0, max: 0 } : { min: 1, max: 1, names: 'TOPIC' });
    if (parsed === null) return 0;
    const { values } = parsed;
    for (const name of ['partitions', 'segment-bytes', 'retention-ms', 'retention-bytes', 'dir']) {
      if (values[name] !== undefined && !ALLOWED[a].includes(name)) throw new UsageError(`--${name} does not apply to topics ${a}`);
    }
    const topic = parsed.positionals[0] ?? '';
    const out = new Output();
    const dir = values.dir as string | undefined;
    if (dir !== undefined) {
      if (a === 'list') listOffline(out, dir);
      else describeOffline(out, dir, topic);
      await out.end();
      return 0;
    }
    const { broker } = clientSettings(values, 'topics');
    const admin = new Admin({ broker, clientId: 'commitlog-topics', retries: 2 });
    try {
      if (a === 'create') {
        await admin.createTopic(topic, {
          partitions: intFlag(values, 'partitions', 1, 10000) ?? 1,
          segmentBytes: intFlag(values, 'segment-bytes', 1),
          retentionMs: signedFlag(values, 'retention-ms'),
          retentionBytes: signedFlag(values, 'retention-bytes'),
        });
        out.push(`created topic ${topic}\n`);
      } else if (a === 'delete') {
        await admin.deleteTopic(topic);
        out.push(`deleted topic ${topic}\n`);
      } else if (a === 'list') {
        for (const name of await admin.listTopics()) out.push(`${name}\n`);
      } else {
        const d = await admin.describeTopic(topic);
        const rows = d.partitions.map((p) => {
          // Sizes when the broker reports them (a later protocol version), '-' otherwise.
          const extra = p as { sizeBytes?: number; segments?: number };
          return [String(p.partition), String(p.logStartOffset), String(p.nextOffset), String(p.nextOffset - p.logStartOffset), extra.segments === undefined ? '-' : String(extra.segments), extra.sizeBytes === undefined ? '-' : formatBytes(extra.sizeBytes)];
        });
        out.push(`topic: ${d.name} partitions: ${d.partitions.length}\n`);
        out.push(table(['PARTITION', 'EARLIEST', 'LATEST', 'RECORDS', 'SEGMENTS', 'SIZE'], rows));
        if (rows.some((r) => r[5] === '-')) process.stderr.write('(the broker does not report sizes; run `commitlog topics describe TOPIC --dir DIR` where the data directory is)\n');
      }
    } finally {
      await admin.close();
      await out.end();
    }
    return 0;
  });
}

/** An integer >= -1 (-1: unlimited). */
function signedFlag(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (v === '-1') return -1;
  return intFlag(values as never, name, 0);
}

function listOffline(out: Output, dir: string): void {
  for (const t of locate(dir).topics) out.push(`${t.name}\n`);
}

function describeOffline(out: Output, dir: string, topic: string): void {
  const located = locate(dir, { topic });
  const t = located.topics[0]!;
  const rows = t.partitions.map((p) => {
    const { earliest, latest, dataBytes } = offsetsOf(p);
    return [String(p.partition), String(earliest), String(latest), String(latest - earliest), String(p.segments.length), formatBytes(dataBytes), formatBytes(diskUsage(p.dir))];
  });
  const partitions = typeof t.config?.partitions === 'number' ? t.config.partitions : t.partitions.length;
  out.push(`topic: ${t.name} partitions: ${partitions} dir: ${t.dir}\n`);
  out.push(table(['PARTITION', 'EARLIEST', 'LATEST', 'RECORDS', 'SEGMENTS', 'SIZE', 'ON DISK'], rows));
}

/** Log start and end offsets and data bytes, from the files (the last segment is scanned). */
function offsetsOf(p: PartitionFiles): { earliest: number; latest: number; dataBytes: number } {
  if (p.segments.length === 0) return { earliest: 0, latest: 0, dataBytes: 0 };
  const last = p.segments[p.segments.length - 1]!;
  let dataBytes = p.segments.slice(0, -1).reduce((n, s) => n + s.logBytes, 0);
  let latest = last.baseOffset;
  const file = FileReader.open(last.log);
  if (file !== null) {
    try {
      const scan = scanSegment(file, last.baseOffset);
      if (scan.batches > 0) latest = scan.nextOffset;
      dataBytes += scan.dataEnd;
    } finally {
      file.close();
    }
  }
  return { earliest: p.segments[0]!.baseOffset, latest, dataBytes };
}
