/**
 * The structured logger of the `commitlog` command: pino, one JSON object per line on
 * stderr, or, when stderr is a terminal, the same events as one human-readable line
 * each (`12:00:01.234 INFO  listening on 127.0.0.1:7070  dir=/data flush=sync`).
 *
 * The readable form is a few lines of our own instead of pino-pretty: pino-pretty
 * runs as a transport in a worker thread (or pulls a dozen packages in-process), and
 * a broker's log volume (lifecycle events, warnings) needs neither. Both forms write
 * synchronously, so nothing logged before an exit is lost.
 *
 * A pino Logger satisfies the engine's `Logger` interface (`info(fields, message)`,
 * `warn(fields, message)`), so it is handed to CommitLog.open and startBroker as is.
 */
import { pino, type Logger as PinoLogger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type CliLogger = PinoLogger;

export interface LoggerOptions {
  level: LogLevel;
  /** The component, logged as `name` (e.g. 'broker'). */
  name?: string;
  /** Where lines go; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Human-readable lines instead of JSON; default: when the stream is a terminal. */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions): CliLogger {
  const stream = options.stream ?? process.stderr;
  const pretty = options.pretty ?? stream.isTTY === true;
  const color = pretty && stream.isTTY === true && process.env.NO_COLOR === undefined;
  const destination = pretty
    ? { write: (line: string) => void stream.write(formatLine(line, color)) }
    : stream === process.stderr
      ? pino.destination({ fd: 2, sync: true })
      : { write: (line: string) => void stream.write(line) };
  return pino(
    {
      level: options.level,
      name: options.name,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

const COLORS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '35' };
const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** One pino JSON line as `HH:MM:SS.mmm LEVEL message  key=value ...`. */
export function formatLine(line: string, color = false): string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof event.time === 'string' ? event.time.slice(11, 23) : '';
  const level = String(event.level ?? '').toUpperCase().padEnd(5);
  const shown = color ? `\x1b[${COLORS[String(event.level)] ?? '0'}m${level}\x1b[0m` : level;
  const fields = Object.entries(event)
    .filter(([k]) => !OMITTED.has(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`);
  const message = String(event.msg ?? '');
  return `${time} ${shown} ${message}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}
