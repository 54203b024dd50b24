/**
 * The Kafka wire-protocol codec: message tables (apis/), the generic engine
 * (codec.ts), headers and whole frames (messages.ts), stream framing (frame.ts),
 * the ApiVersions answer (registry.ts) and the error-code table (error-codes.ts).
 * No listener or handler lives here; see docs/kafka.md.
 */
export { Reader, Writer, MAX_SAFE_INT64 } from './primitives.js';
export { isExternal, defaults, UNKNOWN_TAGS, type ExternalRecords, type Message, type Part, type UnknownTag } from './codec.js';
export { API_SPECS, apiSpec, supportsVersion, apiVersionsAnswer, type ApiVersionsAnswer } from './registry.js';
export {
  decodeRequest, encodeRequest, encodeResponse, decodeResponse, flattenFrame,
  requestHeaderVersion, responseHeaderVersion,
  type DecodedRequest, type DecodedResponse, type EncodedFrame, type RequestHeader,
} from './messages.js';
export { KafkaFrameSplitter, DEFAULT_MAX_KAFKA_FRAME_BYTES } from './frame.js';
export { KafkaError, KAFKA_ERROR_FOR, kafkaErrorCode, type KafkaErrorCode } from './error-codes.js';
export type { ApiSpec, Field } from './schema.js';
