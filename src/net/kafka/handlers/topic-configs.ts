/**
 * commitlog's topic settings under Kafka's config names (DescribeConfigs, CreateTopics
 * configs). The ones commitlog has map onto TopicConfig; a few Kafka settings whose
 * only value here is fixed (cleanup.policy=delete, CreateTime timestamps, one replica)
 * are shown read-only with that value and accepted on creation only with it.
 */
import { invalidArgument } from '../../../errors.js';
import { DEFAULT_TOPIC_CONFIG, type TopicConfig } from '../../../log/topic-config.js';

/** Kafka's ConfigType values (DescribeConfigs v3+). */
export const ConfigType = { BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6, LIST: 7 } as const;
/** Kafka's ConfigSource values. */
export const ConfigSource = { TOPIC: 1, DYNAMIC_BROKER: 2, STATIC_BROKER: 4, DEFAULT: 5 } as const;

type Settable = 'retentionMs' | 'retentionBytes' | 'segmentBytes' | 'maxBatchBytes' | 'indexIntervalBytes';

/** Kafka name -> the TopicConfig field it sets. */
export const SETTABLE: ReadonlyArray<{ name: string; key: Settable; type: number; doc: string }> = [
  { name: 'retention.ms', key: 'retentionMs', type: ConfigType.LONG, doc: 'Segments whose newest record is older than this are deleted (-1: no time limit).' },
  { name: 'retention.bytes', key: 'retentionBytes', type: ConfigType.LONG, doc: 'Oldest segments are deleted while a partition is larger than this (-1: no size limit).' },
  { name: 'segment.bytes', key: 'segmentBytes', type: ConfigType.INT, doc: 'Size of a segment file.' },
  { name: 'max.message.bytes', key: 'maxBatchBytes', type: ConfigType.INT, doc: 'Largest record batch accepted.' },
  { name: 'index.interval.bytes', key: 'indexIntervalBytes', type: ConfigType.INT, doc: 'Bytes of log between two offset index entries.' },
];

/** Settings with one possible value on this broker. */
export const FIXED: ReadonlyArray<{ name: string; value: string; type: number; doc: string }> = [
  { name: 'cleanup.policy', value: 'delete', type: ConfigType.LIST, doc: 'Only delete (no compaction).' },
  { name: 'compression.type', value: 'producer', type: ConfigType.STRING, doc: 'Batches are stored as the producer compressed them.' },
  { name: 'message.timestamp.type', value: 'CreateTime', type: ConfigType.STRING, doc: 'Record timestamps are the producer\'s.' },
  { name: 'min.insync.replicas', value: '1', type: ConfigType.INT, doc: 'One node, one replica.' },
  { name: 'unclean.leader.election.enable', value: 'false', type: ConfigType.BOOLEAN, doc: 'One node: no election.' },
  { name: 'message.format.version', value: '3.0-IV1', type: ConfigType.STRING, doc: 'RecordBatch v2 (magic 2).' },
];

export interface KafkaConfigEntry {
  name: string;
  value: string;
  readOnly: boolean;
  isDefault: boolean;
  source: number;
  type: number;
  doc: string;
}

/** Every config of a topic with its settings `config`, in Kafka's names. */
export function topicConfigEntries(config: TopicConfig): KafkaConfigEntry[] {
  const out: KafkaConfigEntry[] = SETTABLE.map((s) => {
    const isDefault = config[s.key] === DEFAULT_TOPIC_CONFIG[s.key];
    return { name: s.name, value: String(config[s.key]), readOnly: false, isDefault, source: isDefault ? ConfigSource.DEFAULT : ConfigSource.TOPIC, type: s.type, doc: s.doc };
  });
  for (const f of FIXED) out.push({ name: f.name, value: f.value, readOnly: true, isDefault: true, source: ConfigSource.DEFAULT, type: f.type, doc: f.doc });
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * CreateTopics configs -> TopicConfig fields; ERR_INVALID_ARGUMENT for an unknown
 * name, a value that is not an integer, or a fixed setting with another value.
 */
export function topicConfigFromKafka(entries: ReadonlyArray<{ name: string; value: string | null }>): Partial<TopicConfig> {
  const config: Partial<TopicConfig> = {};
  for (const { name, value } of entries) {
    const settable = SETTABLE.find((s) => s.name === name);
    if (settable !== undefined) {
      if (value === null) continue; // null: the default
      const n = Number(value);
      if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw invalidArgument(`config ${name} must be an integer, got ${JSON.stringify(value)}`);
      config[settable.key] = n;
      continue;
    }
    const fixed = FIXED.find((f) => f.name === name);
    if (fixed !== undefined) {
      if (value !== null && value !== fixed.value) throw invalidArgument(`config ${name} can only be ${fixed.value} on this broker, got ${JSON.stringify(value)}`);
      continue;
    }
    throw invalidArgument(`unknown or unsupported topic config ${name}`);
  }
  return config;
}
