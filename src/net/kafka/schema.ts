/**
 * The vocabulary of the message tables: each Kafka request and response is a list of
 * Field descriptions, read by the generic engine in codec.ts. A field says its type,
 * the versions it exists in, the versions it may be null in, and (for a tagged field)
 * its tag. Versions are written as in the protocol spec: '3+' (3 and later), '0-7',
 * or '5' (that version only). Tagged fields only exist in flexible versions.
 *
 * Field names are the camelCase of the spec's names; decoded messages are plain
 * objects with those keys, so a table is also the message's documentation.
 */

export type PrimitiveType =
  | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'float64' | 'bool' | 'uuid'
  | 'string' | 'bytes'
  /** Record batches, opaque: a Buffer view on decode; a Buffer or ExternalRecords on encode. */
  | 'records';

export interface VersionRange {
  readonly min: number;
  /** Inclusive; Infinity for '+'. */
  readonly max: number;
}

export interface Field {
  readonly name: string;
  /** A primitive, 'struct' (then `fields`), or an array of either (`array` true). */
  readonly type: PrimitiveType | 'struct';
  readonly array: boolean;
  readonly fields?: readonly Field[];
  readonly versions: VersionRange;
  readonly nullable: VersionRange | null;
  readonly tag: number | null;
  readonly default?: unknown;
  /** false: never compact, even in flexible versions (the request header's client id). */
  readonly compact: boolean;
}

export interface FieldOptions {
  /** Versions the field exists in; default '0+'. */
  v?: string;
  /** Versions it may be null in. */
  nullable?: string;
  /** Tagged field number (only in flexible versions). */
  tag?: number;
  default?: unknown;
  compact?: boolean;
}

export function versions(spec: string): VersionRange {
  const m = /^(\d+)(\+|-(\d+))?$/.exec(spec);
  if (m === null) throw new Error(`bad version range '${spec}'`);
  const min = Number(m[1]);
  const max = m[2] === '+' ? Infinity : m[3] !== undefined ? Number(m[3]) : min;
  return { min, max };
}

export function inRange(r: VersionRange | null, v: number): boolean {
  return r !== null && v >= r.min && v <= r.max;
}

function make(name: string, type: Field['type'], array: boolean, o: FieldOptions, fields?: readonly Field[]): Field {
  const f: Field = {
    name,
    type,
    array,
    versions: versions(o.v ?? '0+'),
    nullable: o.nullable === undefined ? null : versions(o.nullable),
    tag: o.tag ?? null,
    compact: o.compact ?? true,
    ...(fields === undefined ? {} : { fields }),
    ...('default' in o ? { default: o.default } : {}),
  };
  return f;
}

/** One value of a primitive type. */
export function field(name: string, type: PrimitiveType, o: FieldOptions = {}): Field {
  return make(name, type, false, o);
}

/** An array of a primitive type. */
export function array(name: string, type: PrimitiveType, o: FieldOptions = {}): Field {
  return make(name, type, true, o);
}

/** An array of structs. */
export function structs(name: string, fields: readonly Field[], o: FieldOptions = {}): Field {
  return make(name, 'struct', true, o, fields);
}

/** A single nested struct (in these APIs only ever a tagged one). */
export function struct(name: string, fields: readonly Field[], o: FieldOptions = {}): Field {
  return make(name, 'struct', false, o, fields);
}

/** One API: its key, the versions this codec speaks, and both message tables. */
export interface ApiSpec {
  readonly key: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version (KIP-482), or Infinity when none is. */
  readonly flexibleFrom: number;
  readonly request: readonly Field[];
  readonly response: readonly Field[];
}

export function api(key: number, name: string, window: string, flexibleFrom: number, request: readonly Field[], response: readonly Field[]): ApiSpec {
  const r = versions(window);
  return { key, name, minVersion: r.min, maxVersion: r.max, flexibleFrom, request, response };
}

/** No flexible version in the window this codec speaks. */
export const NEVER = Infinity;
