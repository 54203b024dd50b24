/**
 * Every API this codec speaks, by key, and the ApiVersions answer derived from the
 * same tables: a version is advertised only because its table exists, so the broker
 * can never offer a version the codec cannot encode.
 */
import { adminApis } from './apis/admin.js';
import { coreApis, ApiVersions } from './apis/core.js';
import { groupApis } from './apis/groups.js';
import type { Message } from './codec.js';
import type { ApiSpec } from './schema.js';

export const API_SPECS: readonly ApiSpec[] = [...coreApis, ...groupApis, ...adminApis].sort((a, b) => a.key - b.key);

const byKey = new Map<number, ApiSpec>(API_SPECS.map((s) => [s.key, s]));

export function apiSpec(key: number): ApiSpec | undefined {
  return byKey.get(key);
}

export function supportsVersion(key: number, version: number): boolean {
  const s = byKey.get(key);
  return s !== undefined && version >= s.minVersion && version <= s.maxVersion;
}

/** Kafka's UNSUPPORTED_VERSION error code. */
const UNSUPPORTED_VERSION = 35;

export interface ApiVersionsAnswer {
  /** The version to encode the body in: the request's, or 0 when it is not supported. */
  version: number;
  body: Message;
}

/**
 * The ApiVersions response for a request of `requestVersion`: the full list of keys
 * and windows; for a version above the codec's (a newer client) the v0 body with
 * error 35, which clients answer by retrying with a version from the list. The
 * response header is v0 in every case. `served` limits the list to the keys a
 * listener has handlers for (ApiVersions itself is always listed), so a broker never
 * advertises an API it does not answer; without it every key of the codec is listed.
 */
export function apiVersionsAnswer(requestVersion: number, served?: Iterable<number>): ApiVersionsAnswer {
  const keep = served === undefined ? null : new Set(served);
  const apiKeys = API_SPECS.filter((s) => keep === null || s.key === ApiVersions.key || keep.has(s.key))
    .map((s) => ({ apiKey: s.key, minVersion: s.minVersion, maxVersion: s.maxVersion }));
  const supported = requestVersion >= ApiVersions.minVersion && requestVersion <= ApiVersions.maxVersion;
  return supported
    ? { version: requestVersion, body: { errorCode: 0, apiKeys, throttleTimeMs: 0 } }
    : { version: 0, body: { errorCode: UNSUPPORTED_VERSION, apiKeys } };
}
