/**
 * The one error class services throw and the problem codes of API.md. No HTTP framework here: services throw
 * meaning, and `http/errors.ts` writes it as RFC 9457 problem+json.
 */

/** The problem codes of API.md, with their HTTP status. */
export const problemStatus = {
  validation_failed: 400,
  unauthorized: 401,
  insufficient_gems: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_mismatch: 422,
  precondition_required: 428,
  rate_limited: 429,
  quota_exceeded: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ProblemCode = keyof typeof problemStatus;
export type ProblemHttpStatus = (typeof problemStatus)[ProblemCode];

export const problemTitles: Record<ProblemCode, string> = {
  validation_failed: "Your request is not valid",
  unauthorized: "Authentication required",
  insufficient_gems: "Not enough gems",
  forbidden: "Not allowed",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
  conflict: "Conflict",
  precondition_failed: "The resource has changed",
  payload_too_large: "Request body too large",
  unsupported_media_type: "Unsupported media type",
  idempotency_mismatch: "Idempotency key reused with a different request",
  precondition_required: "A precondition is required",
  rate_limited: "Too many requests",
  quota_exceeded: "Quota exceeded",
  internal: "Internal error",
  unavailable: "Service temporarily unavailable",
};

export interface FieldError {
  path: string;
  message: string;
}

export interface ApiErrorExtra {
  errors?: FieldError[];
  headers?: Record<string, string>;
  /**
   * A stable, machine-readable reason within the code (RFC 9457 extension member `reason`), e.g.
   * `username_taken` for a 409, so a client can react without parsing `detail`.
   */
  reason?: string;
  /** Further RFC 9457 extension members, plain data (e.g. `currentVersion` on a 412). */
  members?: Record<string, string | number | boolean | null>;
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: ProblemCode,
    detail?: string,
    readonly extra: ApiErrorExtra = {},
  ) {
    super(detail ?? problemTitles[code]);
  }

  get status(): ProblemHttpStatus {
    return problemStatus[this.code];
  }

  static validation(errors: FieldError[], detail?: string): ApiError {
    const fields = errors.map((e) => e.path || "(body)").join(", ");
    return new ApiError("validation_failed", detail ?? `Invalid value for: ${fields}.`, { errors });
  }
  /** A 400 naming one field. */
  static invalidField(path: string, message: string): ApiError {
    return ApiError.validation([{ path, message }]);
  }
  static unauthorized(detail = "A valid access token is required."): ApiError {
    return new ApiError("unauthorized", detail, { headers: { "WWW-Authenticate": 'Bearer realm="circle"' } });
  }
  static forbidden(detail?: string): ApiError {
    return new ApiError("forbidden", detail);
  }
  static notFound(detail?: string): ApiError {
    return new ApiError("not_found", detail);
  }
  /** A 409; `reason` reaches the client as the problem's `reason` member. */
  static conflict(reason: string, detail: string): ApiError {
    return new ApiError("conflict", detail, { reason });
  }
  /** A 429 with RateLimit-* and Retry-After headers; `what` names what there were too many of. */
  static rateLimited(decision: RateLimitedDecision, what = "requests"): ApiError {
    return new ApiError("rate_limited", `Too many ${what}. Retry in ${decision.retryAfterSeconds} s.`, {
      headers: { ...rateLimitHeaders(decision), "Retry-After": String(decision.retryAfterSeconds) },
    });
  }
  /**
   * A 503 `unavailable` decided by a rule rather than thrown by a store adapter (e.g. a fail-closed rate limit
   * whose check could not run), so nothing that tolerates a store outage swallows it.
   */
  static unavailable(detail: string, retryAfterSeconds: number): ApiError {
    return new ApiError("unavailable", detail, { headers: { "Retry-After": String(retryAfterSeconds) } });
  }
  /** A 429 `quota_exceeded`, retryable after `retryAfterSeconds`. */
  static quotaExceeded(detail: string, retryAfterSeconds: number): ApiError {
    return new ApiError("quota_exceeded", detail, { headers: { "Retry-After": String(retryAfterSeconds) } });
  }
}

/** The parts of a rate-limit decision the 429 and the RateLimit-* headers carry. */
export interface RateLimitedDecision {
  limit: number;
  remaining: number;
  resetSeconds: number;
  retryAfterSeconds: number;
}

export function rateLimitHeaders(d: RateLimitedDecision): Record<string, string> {
  return {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(d.remaining),
    "RateLimit-Reset": String(d.resetSeconds),
  };
}
