/**
 * The console API's errors: every failure leaves as `{ "error": { "code", "message" } }`
 * with an HTTP status, never a stack trace. Codes are commitlog's own (src/errors.ts)
 * where the broker core raised the error, plus a few of the HTTP layer's own
 * (CONSOLE_CODES); docs/console.md lists them all with their statuses.
 */
import { CommitLogError, ErrorCode } from '../errors.js';

/** Codes only the console's HTTP layer raises. */
export const CONSOLE_CODES = {
  /** No such API route or page. */
  NOT_FOUND: 'ERR_NOT_FOUND',
  /** The route exists but not for this method. */
  METHOD_NOT_ALLOWED: 'ERR_METHOD_NOT_ALLOWED',
  /** A mutating call from another origin (Origin or Sec-Fetch-Site says so). */
  CROSS_ORIGIN: 'ERR_CROSS_ORIGIN',
  /** A request to a loopback-bound console naming another host (DNS rebinding). */
  HOST_NOT_ALLOWED: 'ERR_HOST_NOT_ALLOWED',
  /** A mutating call without `Content-Type: application/json`. */
  UNSUPPORTED_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  /** A request body that is not JSON, or not the object the call takes. */
  BAD_BODY: 'ERR_BAD_BODY',
  /** A request body past the limit. */
  BODY_TOO_LARGE: 'ERR_BODY_TOO_LARGE',
  /** Anything unexpected; the details go to the broker's log only. */
  INTERNAL: 'ERR_INTERNAL',
} as const;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const STATUS_OF: Record<string, number> = {
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.INVALID_TOPIC]: 400,
  [ErrorCode.INVALID_GROUP]: 400,
  [ErrorCode.UNKNOWN_TOPIC]: 404,
  [ErrorCode.UNKNOWN_PARTITION]: 404,
  [ErrorCode.UNKNOWN_GROUP]: 404,
  [ErrorCode.TOPIC_EXISTS]: 409,
  [ErrorCode.OFFSET_OUT_OF_RANGE]: 416,
  [ErrorCode.LIMIT]: 507,
  [ErrorCode.DISK_FULL]: 507,
  [ErrorCode.LOG_CLOSED]: 503,
};

/** The HTTP status and body of any thrown value; `internal` is true when it was not a typed error. */
export function toApiError(err: unknown): { error: ApiError; internal: boolean } {
  if (err instanceof ApiError) return { error: err, internal: false };
  if (err instanceof CommitLogError) {
    return { error: new ApiError(STATUS_OF[err.code] ?? 500, err.code, err.message), internal: STATUS_OF[err.code] === undefined };
  }
  return { error: new ApiError(500, CONSOLE_CODES.INTERNAL, 'internal error (see the broker log)'), internal: true };
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, ErrorCode.INVALID_ARGUMENT, message);
}

export function notFound(message: string): ApiError {
  return new ApiError(404, CONSOLE_CODES.NOT_FOUND, message);
}
