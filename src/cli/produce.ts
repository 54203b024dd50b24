/**
 * `commitlog produce TOPIC`: one record per line of stdin, sent with the Producer.
 *
 * A line is the bytes before a '\n', taken as they are (no decoding, a '\r' stays part
 * of the value), so what `consume` prints is byte for byte what went in. A last line
 * without '\n' is a record too; an empty line is a record with an empty value. With
 * --key-separator SEP the bytes before the first SEP are the key and the rest the
 * value (a line without SEP has a null key); --key KEY gives every record that key.
 *
 * --print-offsets prints `PARTITION<TAB>OFFSET` for every acknowledged record, in input
 * order, only once the broker acknowledged it (a failed record prints nothing, and the
 * lines after it still appear as they are acknowledged). At most WINDOW_RECORDS records
 * are unacknowledged at a time, so a large input streams in bounded memory.
 *
 * Exit: 0 once stdin ended and every record was acknowledged; 1 when any failed (the
 * first error on stderr; reading stops at the first failure); 2 for usage errors.
 */
import type { RecordMetadata } from '../net/client-types.js';
import { Producer, type Acks } from '../net/producer.js';
import { CLIENT_OPTIONS, CLIENT_USAGE, Output, UsageError, choiceFlag, clientSettings, describeError, guard, intFlag, parse } from './args.js';

export const USAGE = `usage: commitlog produce TOPIC [--partition N] [--key KEY | --key-separator SEP]
                         [--acks none|written|flushed] [--print-offsets] [--broker HOST:PORT]

Sends each line of stdin as one record (the line is the value) and exits once stdin
ended and the broker acknowledged every record.

  --partition N        send every record to partition N (default: by key hash, round
                       robin for records without a key)
  --key KEY            the key of every record
  --key-separator SEP  the text before the first SEP of a line is its key
  --acks MODE          written: acknowledged once in the log (default); flushed: once on
                       disk; none: not acknowledged
  --print-offsets      print PARTITION<TAB>OFFSET for every acknowledged record, in
                       input order
${CLIENT_USAGE}`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  partition: { type: 'string' },
  key: { type: 'string' },
  'key-separator': { type: 'string' },
  acks: { type: 'string' },
  'print-offsets': { type: 'boolean' },
} as const;

/** Records sent and not yet acknowledged before reading stdin pauses. */
const WINDOW_RECORDS = 64 * 1024;
const NEWLINE = 0x0a;

export function run(args: string[]): Promise<number> {
  return guard('produce', USAGE, async () => {
    const parsed = parse(args, OPTIONS, USAGE, { min: 1, max: 1, names: 'TOPIC' });
    if (parsed === null) return 0;
    const { values } = parsed;
    const topic = parsed.positionals[0]!;
    const partition = intFlag(values, 'partition', 0, 0xffffffff);
    const acks = choiceFlag<Acks>(values, 'acks', ['none', 'written', 'flushed']) ?? 'written';
    const printOffsets = values['print-offsets'] === true;
    const key = values.key as string | undefined;
    const separator = values['key-separator'] as string | undefined;
    if (key !== undefined && separator !== undefined) throw new UsageError('--key and --key-separator exclude each other');
    if (separator === '') throw new UsageError('--key-separator must not be empty');
    if (printOffsets && acks === 'none') throw new UsageError('--print-offsets needs acknowledgements: not with --acks none');
    const { broker, logger } = clientSettings(values, 'produce');
    const producer = new Producer({ broker, acks, clientId: 'commitlog-produce' });
    const session = new Session(producer, topic, partition, printOffsets);
    const split = splitter(key === undefined ? null : Buffer.from(key), separator === undefined ? null : Buffer.from(separator));
    try {
      await readLines(process.stdin, (line) => {
        session.send(split(line));
        return session.waitForRoom();
      }, () => session.failed);
    } finally {
      await session.finish();
      await producer.close().catch(() => undefined);
    }
    logger.debug({ records: session.sent, failed: session.failures }, 'produce finished');
    if (session.failure !== undefined) {
      process.stderr.write(`commitlog produce: ${session.failures} of ${session.sent} records failed: ${describeError(session.failure)}\n`);
      return 1;
    }
    return 0;
  });
}

type LineRecord = { key: Buffer | null; value: Buffer };

/** Line -> record, per the key flags. */
function splitter(key: Buffer | null, separator: Buffer | null): (line: Buffer) => LineRecord {
  if (separator === null) return (line) => ({ key, value: line });
  return (line) => {
    const at = line.indexOf(separator);
    return at < 0 ? { key: null, value: line } : { key: line.subarray(0, at), value: line.subarray(at + separator.length) };
  };
}

/**
 * Calls `onLine` for every '\n'-terminated line of `input` (and a last unterminated
 * one), awaiting what it returns; stops early once `stop()` is true.
 */
export async function readLines(input: AsyncIterable<Buffer>, onLine: (line: Buffer) => Promise<void> | void, stop: () => boolean): Promise<void> {
  let carry: Buffer | null = null;
  for await (const chunk of input) {
    const data: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
    carry = null;
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
      const pending = onLine(data.subarray(start, nl));
      start = nl + 1;
      if (pending !== undefined) await pending;
      if (stop()) return;
    }
    if (start < data.length) carry = data.subarray(start);
  }
  if (carry !== null && carry.length > 0 && !stop()) await onLine(carry);
}

/** The records in flight and the in-order printing of their offsets. */
class Session {
  sent = 0;
  failures = 0;
  failure: unknown;
  private readonly results: (RecordMetadata | null | undefined)[] = [];
  private head = 0;
  private settled = 0;
  private roomWaiter: (() => void) | undefined;
  private readonly out = new Output();
  private flushing: Promise<unknown> = Promise.resolve();
  private flushQueued = false;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly partition: number | undefined,
    private readonly printOffsets: boolean,
  ) {}

  get failed(): boolean {
    return this.failure !== undefined || this.out.isBroken;
  }

  send(record: LineRecord): void {
    const i = this.sent++;
    this.results.push(undefined);
    const options = this.partition === undefined ? undefined : { partition: this.partition };
    this.producer.send(this.topic, record, options).then(
      (meta) => this.settle(i, meta),
      (err: unknown) => {
        this.failures++;
        this.failure ??= err;
        this.settle(i, null);
      },
    );
  }

  /** Resolves once fewer than WINDOW_RECORDS records are unacknowledged. */
  waitForRoom(): Promise<void> | undefined {
    if (this.sent - this.settled < WINDOW_RECORDS) return undefined;
    return new Promise((resolve) => (this.roomWaiter = resolve));
  }

  private settle(i: number, meta: RecordMetadata | null): void {
    this.settled++;
    this.results[i - (this.sent - this.results.length)] = meta;
    this.printReady();
    if (this.roomWaiter !== undefined && this.sent - this.settled < WINDOW_RECORDS / 2) {
      const wake = this.roomWaiter;
      this.roomWaiter = undefined;
      wake();
    }
  }

  /** Prints the acknowledged records at the head of the input order. */
  private printReady(): void {
    const r = this.results;
    while (this.head < r.length && r[this.head] !== undefined) {
      const meta = r[this.head++];
      if (meta !== null && this.printOffsets) this.out.push(`${meta!.partition}\t${meta!.offset}\n`);
    }
    if (this.head > 4096 && this.head * 2 > r.length) {
      r.splice(0, this.head);
      this.head = 0;
    }
    // One write per burst of acknowledgements (a batch resolves its records together).
    if (this.out.pendingBytes > 0 && !this.flushQueued) {
      this.flushQueued = true;
      this.flushing = this.flushing.then(() => {
        this.flushQueued = false;
        return this.out.flush();
      });
    }
  }

  /** Waits for every record's outcome and for stdout. */
  async finish(): Promise<void> {
    await this.producer.flush().catch(() => undefined);
    await this.flushing;
    await this.out.end();
  }
}
