/**
 * `commitlog produce TOPIC`: one record per line of stdin, sent with the Producer.
 *
 * A line is the bytes before a '\n', taken as they are (no decoding, a '\r' stays part
 * of the value), so what `consume` prints is byte for byte what went in. A last line
 * without '\n' is a record too; an empty line is a record with an empty value. With
 * --key-separator SEP the bytes before the first SEP are the key and the rest the
 * value (a line without SEP has a null key); --key KEY gives every record that key.
 *
 * --print-offsets: exactly one output line per input line, in input order, so output
 * line N speaks for input line N whatever fails:
 *   PARTITION<TAB>OFFSET   the broker acknowledged the record at that offset
 *   FAILED<TAB>CODE        it did not: CODE is the error the producer gave up with (a
 *                          CommitLogError code: ERR_IO for a lost or refused connection,
 *                          ERR_UNKNOWN_TOPIC, ...); such a record may still be in the log
 *                          (its answer was lost), delivery being at least once
 *   FAILED<TAB>ERR_NOT_SENT  read after the first failure came back: never sent
 * A line prints once its own outcome and those of all lines before it are known. After
 * the first failure nothing more is sent, but stdin is still read to its end so that
 * every line gets its line of output. Without --print-offsets reading stops at the
 * first failure instead. At most WINDOW_RECORDS lines are read and not yet printed, so
 * a large input streams in bounded memory.
 *
 * Exit: 0 once stdin ended and every record was acknowledged; 1 when any was not (the
 * first error on stderr); 2 for usage errors. When stdout goes away (EPIPE) reading
 * stops and the exit code says whether the records read so far were acknowledged.
 */
import { CommitLogError } from '../errors.js';
import type { RecordMetadata } from '../net/client/client-types.js';
import { Producer, type Acks } from '../net/client/producer.js';
import { COMPRESSION_NAMES, type CompressionName } from '../log/compression.js';
import { CLIENT_OPTIONS, CLIENT_USAGE, CLI_TIMEOUT_MS, Output, UsageError, choiceFlag, clientSettings, describeError, guard, intFlag, parse } from './args.js';

const USAGE = `usage: commitlog produce TOPIC [--partition N] [--key KEY | --key-separator SEP]
                         [--acks none|written|flushed] [--compression CODEC] [--print-offsets]
                         [--broker HOST:PORT]

Sends each line of stdin as one record (the line is the value) and exits once stdin
ended and the broker acknowledged every record.

  --partition N        send every record to partition N (default: by key hash, round
                       robin for records without a key)
  --key KEY            the key of every record
  --key-separator SEP  the text before the first SEP of a line is its key
  --acks MODE          written: acknowledged once in the log (default); flushed: once on
                       disk; none: not acknowledged
  --compression CODEC  compress each batch: none (default), gzip, snappy, lz4, zstd
  --print-offsets      print one line per input line, in input order: PARTITION<TAB>
                       OFFSET once acknowledged, FAILED<TAB>CODE when not (CODE is the
                       error code, e.g. ERR_IO for a lost connection). After the first
                       failure the remaining lines are not sent: each prints
                       FAILED<TAB>ERR_NOT_SENT, and stdin is read to its end
${CLIENT_USAGE}
Exits 0 when every record was acknowledged, 1 when any was not (the first error on
stderr; without --print-offsets reading stops there), 2 for usage errors.
`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  partition: { type: 'string' },
  key: { type: 'string' },
  'key-separator': { type: 'string' },
  acks: { type: 'string' },
  compression: { type: 'string' },
  'print-offsets': { type: 'boolean' },
} as const;

/** Lines read and not yet printed (or passed over) before reading stdin pauses. */
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
    const compression = choiceFlag<CompressionName>(values, 'compression', COMPRESSION_NAMES) ?? 'none';
    const printOffsets = values['print-offsets'] === true;
    const key = values.key as string | undefined;
    const separator = values['key-separator'] as string | undefined;
    if (key !== undefined && separator !== undefined) throw new UsageError('--key and --key-separator exclude each other');
    if (separator === '') throw new UsageError('--key-separator must not be empty');
    if (printOffsets && acks === 'none') throw new UsageError('--print-offsets needs acknowledgements: not with --acks none');
    const { broker, logger } = clientSettings(values, 'produce');
    const producer = new Producer({ broker, acks, compression, clientId: 'commitlog-produce', deliveryTimeoutMs: intFlag(values, 'timeout-ms', 1, 2 ** 31 - 1) ?? CLI_TIMEOUT_MS });
    const session = new Session(producer, topic, partition, printOffsets);
    const split = splitter(key === undefined ? null : Buffer.from(key), separator === undefined ? null : Buffer.from(separator));
    // With --print-offsets every line read gets its line of output, so stdin is read to
    // its end; without, nobody sees the lines after a failure: stop there.
    const stop = printOffsets ? () => session.outputGone : () => session.outputGone || session.failure !== undefined;
    try {
      await readLines(process.stdin, (line) => {
        session.send(split(line));
        return session.waitForRoom();
      }, stop);
    } finally {
      await session.finish();
      await producer.close().catch(() => undefined);
    }
    logger.debug({ records: session.read, failed: session.failures, notSent: session.notSent }, 'produce finished');
    if (session.failure !== undefined) {
      const skipped = session.notSent === 0 ? '' : `; the ${session.notSent} lines read after it were not sent`;
      process.stderr.write(`commitlog produce: ${session.failures + session.notSent} of ${session.read} records failed: ${describeError(session.failure)}${skipped}\n`);
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

/** What `FAILED<TAB>` is followed by for a line read after the first failure. */
const NOT_SENT = 'ERR_NOT_SENT';

/** The code printed for a failed record: a CommitLogError's code, else ERR_UNKNOWN (not expected from the producer). */
function failureCode(err: unknown): string {
  if (err instanceof CommitLogError) return err.code;
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^ERR_[A-Z0-9_]+$/.test(code) ? code : 'ERR_UNKNOWN';
}

/**
 * The lines read, their outcomes and the in-order printing of them: a line's outcome is
 * its RecordMetadata or the code it failed with; undefined while it is in flight.
 */
class Session {
  /** Lines read (each one sent, or counted in notSent). */
  read = 0;
  failures = 0;
  notSent = 0;
  /** The first failure to come back; from then on nothing is sent. */
  failure: unknown;
  /** Outcomes of the lines not printed yet: line `printed` is at index `head`, the next lines follow. */
  private readonly outcomes: (RecordMetadata | string | undefined)[] = [];
  /** Lines whose outcome was printed (or, without --print-offsets, passed over). */
  private printed = 0;
  /** Where line `printed` is in `outcomes` (the entries before it are spent). */
  private head = 0;
  private settled = 0;
  private roomWaiter: (() => void) | undefined;
  private settledWaiter: (() => void) | undefined;
  private readonly out = new Output();
  private flushing: Promise<unknown> = Promise.resolve();
  private flushQueued = false;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly partition: number | undefined,
    private readonly printOffsets: boolean,
  ) {}

  get outputGone(): boolean {
    return this.out.isBroken;
  }

  send(record: LineRecord): void {
    const line = this.read++;
    this.outcomes.push(undefined);
    if (this.failure !== undefined) {
      this.notSent++;
      this.settle(line, NOT_SENT);
      return;
    }
    const options = this.partition === undefined ? undefined : { partition: this.partition };
    this.producer.send(this.topic, record, options).then(
      (meta) => this.settle(line, meta),
      (err: unknown) => {
        this.failures++;
        this.failure ??= err;
        this.settle(line, failureCode(err));
      },
    );
  }

  /** Resolves once fewer than WINDOW_RECORDS lines are read and not yet printed. */
  waitForRoom(): Promise<void> | undefined {
    if (this.read - this.printed < WINDOW_RECORDS) return undefined;
    return new Promise((resolve) => (this.roomWaiter = resolve));
  }

  private settle(line: number, outcome: RecordMetadata | string): void {
    this.settled++;
    this.outcomes[this.head + line - this.printed] = outcome;
    this.printReady();
    if (this.roomWaiter !== undefined && this.read - this.printed < WINDOW_RECORDS / 2) {
      const wake = this.roomWaiter;
      this.roomWaiter = undefined;
      wake();
    }
    if (this.settledWaiter !== undefined && this.settled === this.read) this.settledWaiter();
  }

  /** Prints the outcomes known at the head of the input order. */
  private printReady(): void {
    const o = this.outcomes;
    while (this.head < o.length && o[this.head] !== undefined) {
      const outcome = o[this.head++]!;
      this.printed++;
      if (!this.printOffsets) continue;
      this.out.push(typeof outcome === 'string' ? `FAILED\t${outcome}\n` : `${outcome.partition}\t${outcome.offset}\n`);
    }
    if (this.head > 4096 && this.head * 2 > o.length) {
      o.splice(0, this.head);
      this.head = 0;
    }
    // One write per burst of outcomes (a batch resolves its records together).
    if (this.out.pendingBytes > 0 && !this.flushQueued) {
      this.flushQueued = true;
      this.flushing = this.flushing.then(() => {
        this.flushQueued = false;
        return this.out.flush();
      });
    }
  }

  /** Waits for every line's outcome and for stdout. */
  async finish(): Promise<void> {
    await this.producer.flush().catch(() => undefined);
    if (this.settled < this.read) await new Promise<void>((resolve) => (this.settledWaiter = resolve));
    await this.flushing;
    await this.out.end();
  }
}
