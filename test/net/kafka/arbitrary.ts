/**
 * fast-check arbitraries derived from the message tables themselves: a random value
 * for every field a version has (nulls where nullable, tagged fields sometimes at
 * their default, unknown tags in flexible versions), and the value the decoder must
 * return for it (fields the version lacks at their defaults).
 */
import fc from 'fast-check';
import { defaultOf, type Message } from '../../../src/net/kafka/codec.js';
import { inRange, type Field } from '../../../src/net/kafka/schema.js';

const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));
const uuid = hex(16).map((h) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`);
const bytes = fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b));

function primitive(f: Field): fc.Arbitrary<unknown> {
  switch (f.type) {
    case 'int8': return fc.integer({ min: -128, max: 127 });
    case 'int16': return fc.integer({ min: -32768, max: 32767 });
    case 'uint16': return fc.integer({ min: 0, max: 0xffff });
    case 'int32': return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'uint32': return fc.integer({ min: 0, max: 0xffffffff });
    case 'int64': return fc.oneof(fc.maxSafeInteger(), fc.constantFrom(-1, 0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER));
    case 'float64': return fc.double({ noNaN: true });
    case 'bool': return fc.boolean();
    case 'uuid': return uuid;
    case 'string': return fc.string({ maxLength: 10, unit: 'grapheme' });
    case 'bytes': case 'records': return bytes;
    default: throw new Error(`no arbitrary for ${f.type}`);
  }
}

function one(f: Field, version: number, flexible: boolean, nullable: boolean): fc.Arbitrary<unknown> {
  const base = f.type === 'struct' ? structArb(f.fields!, version, flexible, false) : primitive(f);
  return nullable || f.type === 'records' ? fc.option(base, { nil: null, freq: 4 }) : base;
}

function valueArb(f: Field, version: number, flexible: boolean): fc.Arbitrary<unknown> {
  const nullable = inRange(f.nullable, version);
  const v = f.array
    ? (() => {
      const a = fc.array(one(f, version, flexible, false), { maxLength: 3 });
      return nullable ? fc.option(a, { nil: null, freq: 4 }) : a;
    })()
    : one(f, version, flexible, nullable);
  // A tagged field often keeps its default, so both "absent" and "present" are covered.
  return f.tag !== null ? fc.oneof(fc.constant(defaultOf(f)), v) : v;
}

const unknownTags = fc.uniqueArray(fc.integer({ min: 20, max: 300 }), { maxLength: 2 })
  .chain((tags) => fc.tuple(...tags.map((tag) => bytes.map((data) => ({ tag, data })))))
  .map((list) => list.sort((a, b) => a.tag - b.tag));

export function structArb(fields: readonly Field[], version: number, flexible: boolean, withUnknownTags = true): fc.Arbitrary<Message> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of fields) if (inRange(f.versions, version) && (f.tag === null || flexible)) model[f.name] = valueArb(f, version, flexible);
  const rec = fc.record(model) as fc.Arbitrary<Message>;
  if (!flexible || !withUnknownTags) return rec;
  return fc.tuple(rec, unknownTags).map(([o, tags]) => (tags.length === 0 ? o : { ...o, _unknownTags: tags }));
}

/** What decoding the encoding of `value` must give: every table field, defaults filled in. */
export function expected(fields: readonly Field[], version: number, flexible: boolean, value: Message): Message {
  const o: Message = {};
  for (const f of fields) {
    const present = inRange(f.versions, version) && (f.tag === null || flexible) && value[f.name] !== undefined;
    const v = present ? value[f.name] : defaultOf(f);
    if (f.type === 'struct' && v !== null) {
      const norm = (x: unknown) => expected(f.fields!, version, flexible, x as Message);
      o[f.name] = f.array ? (v as unknown[]).map(norm) : present ? norm(v) : v;
    } else {
      o[f.name] = v;
    }
  }
  if (flexible && Array.isArray(value._unknownTags) && value._unknownTags.length > 0) o._unknownTags = value._unknownTags;
  return o;
}
