/**
 * `commitlog consume TOPIC`: prints records with the Consumer, one per line.
 *
 * Formats: `text` prints the value's bytes as stored (a null value prints as an empty
 * line), preceded by `PARTITION<TAB>OFFSET<TAB>` with --print-offsets; `json` prints
 * one JSON object per record (partition, offset, timestamp, key, value and headers;
 * bytes as UTF-8 strings, null kept as null). Records of one partition come in offset
 * order; partitions interleave as their fetches arrive.
 *
 * Stops after --max records, after --idle-exit-ms without a new record, on SIGINT or
 * SIGTERM (exit 0), or when stdout goes away (`| head`; exit 0). With --group it
 * resumes from the group's committed offsets, commits its position every second and
 * commits the final position before exiting (records printed are records consumed).
 */
import { Consumer, type ConsumerStart } from '../net/client/consumer.js';
import type { ConsumerRecord } from '../net/client/client-types.js';
import { CLIENT_OPTIONS, CLIENT_USAGE, CLI_TIMEOUT_MS, Output, UsageError, choiceFlag, clientSettings, describeError, guard, intFlag, parse } from './args.js';

const USAGE = `usage: commitlog consume TOPIC [--partition N] [--from earliest|latest|OFFSET|TIME]
                         [--group G] [--max N] [--idle-exit-ms MS] [--print-offsets]
                         [--format text|json] [--broker HOST:PORT]

Prints the topic's records on stdout, one per line, and keeps waiting for new ones
until interrupted, --max records or --idle-exit-ms without a record.

  --partition N       read only partition N (default: all)
  --from WHERE        earliest (default), latest, an offset, or an ISO-8601 time
                      (2024-05-01T12:00:00Z: the first record at or after it); partitions
                      with an offset committed by --group resume there instead
  --group G           consumer group: resume from and commit to its offsets
  --max N             exit after N records
  --idle-exit-ms MS   exit after MS without a new record
  --print-offsets     text: prefix each value with PARTITION<TAB>OFFSET<TAB>
  --format FORMAT     text (default): the value; json: one object per record with
                      partition, offset, timestamp, key, value and headers
${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  partition: { type: 'string' },
  from: { type: 'string' },
  group: { type: 'string' },
  max: { type: 'string' },
  'idle-exit-ms': { type: 'string' },
  'print-offsets': { type: 'boolean' },
  format: { type: 'string' },
} as const;

/** Output is written in chunks of about this size (and whenever the consumer waits). */
const WRITE_CHUNK_BYTES = 64 * 1024;
const COMMIT_INTERVAL_MS = 1000;
const NEWLINE = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

/** earliest | latest | an offset | an ISO-8601 time. */
export function parseFrom(text: string): ConsumerStart {
  if (text === 'earliest' || text === 'latest') return text;
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return new Date(ms);
  }
  throw new UsageError(`--from must be earliest, latest, an offset or an ISO-8601 time, got ${JSON.stringify(text)}`);
}

export function run(args: string[]): Promise<number> {
  return guard('consume', USAGE, async () => {
    const parsed = parse(args, OPTIONS, USAGE, { min: 1, max: 1, names: 'TOPIC' });
    if (parsed === null) return 0;
    const { values } = parsed;
    const topic = parsed.positionals[0]!;
    const partition = intFlag(values, 'partition', 0, 0xffffffff);
    const from = values.from === undefined ? 'earliest' : parseFrom(values.from as string);
    const group = values.group as string | undefined;
    if (group === '') throw new UsageError('--group must not be empty');
    const max = intFlag(values, 'max', 0);
    const idleExitMs = intFlag(values, 'idle-exit-ms', 1, 2 ** 31 - 1);
    const format = choiceFlag(values, 'format', ['text', 'json'] as const) ?? 'text';
    const printOffsets = values['print-offsets'] === true;
    if (printOffsets && format === 'json') throw new UsageError('--print-offsets is for --format text (json carries partition and offset)');
    const { broker, logger } = clientSettings(values, 'consume');
    const consumer = new Consumer({
      broker,
      topic,
      partitions: partition === undefined ? undefined : [partition],
      from,
      group,
      autoCommitIntervalMs: group === undefined ? 0 : COMMIT_INTERVAL_MS,
      clientId: 'commitlog-consume',
      reconnectTimeoutMs: intFlag(values, 'timeout-ms', 1, 2 ** 31 - 1) ?? CLI_TIMEOUT_MS,
      // Offset resets are reported through the command's own log.
      logger,
    });
    const write = format === 'json' ? jsonLine : printOffsets ? offsetLine : valueLine;
    const out = new Output();
    const stop = (): void => void consumer.close().catch(() => undefined);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let idle: IdleTimer | undefined;
    let flushTimer: NodeJS.Immediate | undefined;
    let count = 0;
    let failure: unknown;
    const iterator = consumer[Symbol.asyncIterator]();
    try {
      // The idle time counts from the first assignment (a group's join waits for its rebalance).
      await consumer.connect();
      if (idleExitMs !== undefined) idle = new IdleTimer(idleExitMs, stop);
      while (max === undefined || count < max) {
        const result = await iterator.next();
        if (result.done) break;
        idle?.touch();
        write(out, result.value);
        count++;
        if (out.pendingBytes >= WRITE_CHUNK_BYTES) {
          if (!(await out.flush())) break;
        } else {
          // Buffered records come back without a turn of the event loop; once the
          // consumer has to wait for the network, this writes what is there.
          flushTimer ??= setImmediate(() => {
            flushTimer = undefined;
            void out.flush();
          });
        }
      }
    } catch (err) {
      failure = err;
    } finally {
      if (flushTimer !== undefined) clearImmediate(flushTimer);
      idle?.cancel();
      await iterator.return?.();
      await out.end();
      try {
        await consumer.close();
      } catch (err) {
        failure ??= err;
      }
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
    logger.debug({ records: count }, 'consume finished');
    if (failure !== undefined) {
      process.stderr.write(`commitlog consume: ${describeError(failure)}\n`);
      return 1;
    }
    return 0;
  });
}

function valueLine(out: Output, r: ConsumerRecord): void {
  out.push(r.value ?? EMPTY);
  out.push(NEWLINE);
}

function offsetLine(out: Output, r: ConsumerRecord): void {
  out.push(`${r.partition}\t${r.offset}\t`);
  valueLine(out, r);
}

function jsonLine(out: Output, r: ConsumerRecord): void {
  const text = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'));
  out.push(`${JSON.stringify({
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: text(r.key),
    value: text(r.value),
    headers: r.headers.map((h) => ({ key: h.key, value: text(h.value) })),
  })}\n`);
}

/** Calls `onIdle` once `ms` pass without a touch(); one timer, re-armed lazily. */
class IdleTimer {
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number, private readonly onIdle: () => void) {
    this.arm(ms);
  }

  touch(): void {
    this.last = performance.now();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => {
      const quiet = performance.now() - this.last;
      if (quiet >= this.ms) {
        this.timer = undefined;
        this.onIdle();
      } else {
        this.arm(this.ms - quiet);
      }
    }, Math.max(1, Math.ceil(delay)));
  }
}
