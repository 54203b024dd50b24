/**
 * What every subcommand shares: flag parsing (node:util parseArgs, strict), `--help`,
 * usage errors (exit 2) versus failures (exit 1), and how an error is printed.
 *
 * Exit codes of the whole command: 0 success; 1 the operation failed (the error is on
 * stderr, with its code when it is a CommitLogError); 2 a usage error (bad flag or
 * value; the usage follows the message). `verify` also exits 1 when it found problems.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CommitLogError } from '../errors.js';
import { ConfigError, resolveSettings } from '../ops/config.js';
import { createLogger, type CliLogger, type LogLevel } from '../ops/logger.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Parses `args` against `options` (plus --help/-h). Returns null when --help was given
 * (the usage is printed on stdout); throws UsageError for anything malformed.
 */
export function parse(args: string[], options: Options, usage: string, positionals: { min: number; max: number; names?: string }): Parsed | null {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.values.help === true) {
    process.stdout.write(usage);
    return null;
  }
  const n = parsed.positionals.length;
  if (n < positionals.min) throw new UsageError(`missing ${positionals.names ?? 'argument'}`);
  if (n > positionals.max) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`);
  return { values: parsed.values as Parsed['values'], positionals: parsed.positionals };
}

/** An integer flag in [min, max]; undefined when absent. */
export function intFlag(values: Parsed['values'], name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const n = typeof text === 'string' && /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(text)}`);
  return n;
}

/** One of `choices`; undefined when absent. */
export function choiceFlag<T extends string>(values: Parsed['values'], name: string, choices: readonly T[]): T | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !choices.includes(v as T)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** The flags every client subcommand takes. */
export const CLIENT_OPTIONS = {
  broker: { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
  'timeout-ms': { type: 'string' },
} as const satisfies Options;

/**
 * How long produce and consume keep retrying an unreachable broker (the Producer's
 * deliveryTimeoutMs, the Consumer's reconnectTimeoutMs). Shorter than the clients'
 * 120 s: a shell user with a wrong address should hear about it soon.
 */
export const CLI_TIMEOUT_MS = 30_000;

export const CLIENT_USAGE = `  --broker HOST:PORT   the broker (default 127.0.0.1:7070; env COMMITLOG_BROKER)
  --config FILE        JSON config file (env COMMITLOG_CONFIG); see docs/operations.md
  --log-level LEVEL    trace, debug, info (default), warn, error, fatal or silent
  --timeout-ms MS      produce, consume: how long to keep retrying a broker that
                       cannot be reached (default 30000)
`;

/** One line for an error: the message, and the code of a CommitLogError. */
export function describeError(err: unknown): string {
  if (err instanceof CommitLogError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Runs a subcommand body: usage and config errors print the message and the usage and
 * return 2; any other error prints `commitlog NAME: message (CODE)` and returns 1.
 */
export async function guard(name: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`commitlog ${name}: ${err.message}\n\n${usage}`);
      return 2;
    }
    process.stderr.write(`commitlog ${name}: ${describeError(err)}\n`);
    return 1;
  }
}

/**
 * Writes to stdout honouring backpressure; resolves false once stdout is gone (EPIPE:
 * the reader, e.g. `head`, exited), after which the caller stops quietly.
 */
export class Output {
  private broken = false;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private readonly stream: NodeJS.WritableStream & { writableNeedDrain?: boolean };

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.stream = stream;
    // EPIPE (the reader exited) or any other write failure: stop writing, quietly.
    stream.on('error', () => {
      this.broken = true;
    });
  }

  get isBroken(): boolean {
    return this.broken;
  }

  /** Queues `chunk`; call flush() before waiting on anything else. */
  push(chunk: Buffer | string): void {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.chunks.push(b);
    this.bytes += b.length;
  }

  get pendingBytes(): number {
    return this.bytes;
  }

  /** Writes what is queued; waits while the stream's buffer is full. Resolves false when stdout is gone. */
  async flush(): Promise<boolean> {
    if (this.broken) return false;
    if (this.chunks.length > 0) {
      const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
      this.chunks.length = 0;
      this.bytes = 0;
      if (!this.stream.write(data)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.stream.removeListener('drain', done);
            this.stream.removeListener('error', done);
            this.stream.removeListener('close', done);
            resolve();
          };
          this.stream.once('drain', done);
          this.stream.once('error', done);
          this.stream.once('close', done);
        });
      }
    }
    return !this.broken;
  }

  /** Flushes and waits until the stream has handed everything to the OS. */
  async end(): Promise<void> {
    await this.flush();
    if (this.broken) return;
    await new Promise<void>((resolve) => this.stream.write('', () => resolve()));
  }
}

/** What a client subcommand resolves from --broker/--log-level, COMMITLOG_*, the config file and defaults. */
export function clientSettings(values: Parsed['values'], name: string): { broker: string; logger: CliLogger } {
  const resolved = resolveSettings(['broker', 'log-level'], { flags: values }).values;
  return { broker: resolved.broker as string, logger: createLogger({ level: resolved['log-level'] as LogLevel, name }) };
}

/** Rows under a header, columns padded to their widest cell, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`;
  return [header, ...rows].map(line).join('');
}
