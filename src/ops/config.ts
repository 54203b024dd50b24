/**
 * Settings of the `commitlog` command and where they come from. Each setting has one
 * name used three ways: the flag `--NAME`, the environment variable `COMMITLOG_NAME`
 * (upper case, '-' as '_') and the key `"NAME"` of the JSON config file (`--config
 * FILE` or COMMITLOG_CONFIG). Precedence: flag > environment > config file > default.
 * docs/operations.md has the same table; a test keeps the two in step.
 *
 * Every value is checked the same way whatever its source, and a bad one is a
 * ConfigError naming that source ("COMMITLOG_PORT must be ..."), which the CLI turns
 * into exit code 2. Unknown keys in a config file are errors (a typo must not be
 * silently ignored); unknown COMMITLOG_* variables are ignored.
 */
import fs from 'node:fs';
import { DEFAULT_TOPIC_CONFIG, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES } from '../log/topic-config.js';
import { DEFAULT_PORT } from '../net/broker/server.js';
import { LOG_LEVELS } from './logger.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface SettingSpec {
  /** 'port-or-off': an integer port in [min, max] or the word `off`. */
  kind: 'string' | 'integer' | 'choice' | 'address' | 'port-or-off';
  choices?: readonly string[];
  min?: number;
  max?: number;
  default?: string | number;
  /** One line for the docs and --help. */
  help: string;
  /** Which subcommands read it. */
  usedBy: 'broker' | 'clients' | 'all';
}

const DEFAULT_BROKER_PORT = DEFAULT_PORT;
const DEFAULT_BROKER_HOST = '127.0.0.1';
/** The web console's port (src/console/); next to the broker's 7070. */
export const DEFAULT_HTTP_PORT = 7080;
/** The Kafka listener's port (src/net/kafka/listener.ts): Kafka's own. */
export const DEFAULT_KAFKA_PORT = 9092;

export const SETTINGS = {
  dir: { kind: 'string', default: './data', usedBy: 'broker', help: 'data directory (created if missing)' },
  host: { kind: 'string', default: DEFAULT_BROKER_HOST, usedBy: 'broker', help: 'address the broker listens on' },
  port: { kind: 'integer', min: 0, max: 65535, default: DEFAULT_BROKER_PORT, usedBy: 'broker', help: 'TCP port; 0 takes any free one' },
  flush: { kind: 'choice', choices: ['sync', 'async', 'os'], default: 'sync', usedBy: 'broker', help: 'sync: acknowledge after msync; async: flush in the background; os: leave it to the kernel' },
  'flush-interval-ms': { kind: 'integer', min: 1, max: 2 ** 31 - 1, default: 1000, usedBy: 'broker', help: 'async: flush at least this often' },
  'segment-bytes': { kind: 'integer', min: MIN_SEGMENT_BYTES, max: MAX_SEGMENT_BYTES, default: DEFAULT_TOPIC_CONFIG.segmentBytes, usedBy: 'broker', help: 'segment size of topics created without their own' },
  'metrics-port': { kind: 'integer', min: 0, max: 65535, usedBy: 'broker', help: 'serve Prometheus metrics over HTTP on this port (0: any free one); off when unset' },
  'http-port': { kind: 'port-or-off', min: 0, max: 65535, default: DEFAULT_HTTP_PORT, usedBy: 'broker', help: 'serve the web console and /metrics over HTTP on the broker\'s host at this port (0: any free one; off: none)' },
  'max-connections': { kind: 'integer', min: 1, max: 1_000_000, usedBy: 'broker', help: 'refuse connections beyond this many (each may hold up to 24 MiB); unlimited when unset' },
  'metrics-host': { kind: 'string', usedBy: 'broker', help: 'address of the metrics endpoint; default: the broker\'s host' },
  'kafka-port': { kind: 'port-or-off', min: 0, max: 65535, default: DEFAULT_KAFKA_PORT, usedBy: 'broker', help: 'serve the Kafka wire protocol on the broker\'s host at this port (0: any free one; off: none)' },
  'advertised-host': { kind: 'string', usedBy: 'broker', help: 'host the Kafka listener tells clients to connect to (Metadata); default: the broker\'s host' },
  'kafka-auto-create': { kind: 'choice', choices: ['on', 'off'], default: 'on', usedBy: 'broker', help: 'create unknown topics named in Kafka Metadata requests (Kafka\'s auto.create.topics.enable)' },
  'kafka-default-partitions': { kind: 'integer', min: 1, max: 10000, default: 1, usedBy: 'broker', help: 'partitions of a topic auto-created by a Kafka client (Kafka\'s num.partitions)' },
  'group-initial-rebalance-delay-ms': { kind: 'integer', min: 0, max: 300_000, default: 3000, usedBy: 'broker', help: 'how long a new consumer group waits for more members before its first assignment (Kafka\'s group.initial.rebalance.delay.ms)' },
  'group-min-session-timeout-ms': { kind: 'integer', min: 1, max: 3_600_000, default: 6000, usedBy: 'broker', help: 'smallest session timeout a group member may ask for (Kafka\'s group.min.session.timeout.ms)' },
  'log-level': { kind: 'choice', choices: LOG_LEVELS, default: 'info', usedBy: 'all', help: 'trace, debug, info, warn, error, fatal or silent' },
  broker: { kind: 'address', default: `${DEFAULT_BROKER_HOST}:${DEFAULT_BROKER_PORT}`, usedBy: 'clients', help: 'HOST:PORT of the broker a client subcommand talks to' },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;
export type SettingValue = string | number;

export function envName(name: string): string {
  return `COMMITLOG_${name.toUpperCase().replace(/-/g, '_')}`;
}

const CONFIG_ENV = 'COMMITLOG_CONFIG';

export interface ResolveOptions {
  /** Flag values as parsed (undefined: not given). `config` names the config file. */
  flags: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

/** Where each resolved value came from, for `--log-level debug` startup lines. */
export type Source = 'flag' | 'env' | 'file' | 'default';

export interface Resolved<N extends SettingName> {
  values: { [K in N]: SettingValue | undefined };
  sources: { [K in N]: Source };
  configFile: string | undefined;
}

/** Resolves `names` from flags, environment, config file and defaults (in that order). */
export function resolveSettings<N extends SettingName>(names: readonly N[], options: ResolveOptions): Resolved<N> {
  const env = options.env ?? process.env;
  const flagFile = options.flags.config;
  const configFile = typeof flagFile === 'string' ? flagFile : env[CONFIG_ENV] || undefined;
  const file = configFile === undefined ? {} : readConfigFile(configFile);
  const values = {} as Resolved<N>['values'];
  const sources = {} as Resolved<N>['sources'];
  for (const name of names) {
    const spec: SettingSpec = SETTINGS[name];
    const flag = options.flags[name];
    const fromEnv = env[envName(name)];
    let raw: unknown;
    let where: string;
    if (flag !== undefined) {
      raw = flag;
      where = `--${name}`;
      sources[name] = 'flag';
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw = fromEnv;
      where = envName(name);
      sources[name] = 'env';
    } else if (Object.hasOwn(file, name)) {
      raw = file[name];
      where = `${name} in config file ${configFile}`;
      sources[name] = 'file';
    } else {
      values[name] = spec.default;
      sources[name] = 'default';
      continue;
    }
    values[name] = checkValue(spec, raw, where);
  }
  return { values, sources, configFile };
}

function checkValue(spec: SettingSpec, raw: unknown, where: string): SettingValue {
  if (spec.kind === 'port-or-off') {
    if (typeof raw === 'string' && raw.trim() === 'off') return 'off';
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < spec.min! || n > spec.max!) {
      throw new ConfigError(`${where} must be an integer in [${spec.min}, ${spec.max}] or off, got ${JSON.stringify(raw)}`);
    }
    return n;
  }
  if (spec.kind === 'integer') {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < spec.min! || n > spec.max!) {
      throw new ConfigError(`${where} must be an integer in [${spec.min}, ${spec.max}], got ${JSON.stringify(raw)}`);
    }
    return n;
  }
  if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${where} must be a non-empty string, got ${JSON.stringify(raw)}`);
  if (spec.kind === 'choice' && !spec.choices!.includes(raw)) {
    throw new ConfigError(`${where} must be one of ${spec.choices!.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  if (spec.kind === 'address') ensureAddress(raw, where);
  return raw;
}

/** 'host:port' or '[v6]:port'; ConfigError naming `where` otherwise. */
function ensureAddress(text: string, where: string): void {
  const m = /^(?:\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(text);
  const port = m === null ? NaN : Number(m[1]);
  if (!(port >= 1 && port <= 65535)) throw new ConfigError(`${where} must be HOST:PORT with a port in [1, 65535], got ${JSON.stringify(text)}`);
}

/** The config file's settings: a JSON object whose keys are setting names. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${file} must hold a JSON object of settings`);
  for (const key of Object.keys(parsed)) {
    if (!Object.hasOwn(SETTINGS, key)) throw new ConfigError(`config file ${file}: unknown setting ${JSON.stringify(key)} (known: ${Object.keys(SETTINGS).join(', ')})`);
  }
  return parsed as Record<string, unknown>;
}

/** The settings table in Markdown (docs/operations.md holds a copy; a test compares them). */
export function settingsTable(): string {
  const rows = Object.entries(SETTINGS).map(([name, s]: [string, SettingSpec]) => {
    const def = s.default === undefined ? '(unset)' : `\`${String(s.default)}\``;
    return `| \`--${name}\` | \`${envName(name)}\` | \`"${name}"\` | ${def} | ${s.usedBy} | ${s.help} |`;
  });
  return ['| flag | environment | config file key | default | used by | meaning |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
