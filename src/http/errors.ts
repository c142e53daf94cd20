import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { StoreUnavailableError } from "../platform/errors";

/** The problem codes of API.md, with their HTTP status. */
export const problemStatus = {
  validation_failed: 400,
  unauthorized: 401,
  insufficient_gems: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  idempotency_mismatch: 422,
  rate_limited: 429,
  quota_exceeded: 429,
  internal: 500,
  unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ProblemCode = keyof typeof problemStatus;

const titles: Record<ProblemCode, string> = {
  validation_failed: "Your request is not valid",
  unauthorized: "Authentication required",
  insufficient_gems: "Not enough gems",
  forbidden: "Not allowed",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
  conflict: "Conflict",
  payload_too_large: "Request body too large",
  idempotency_mismatch: "Idempotency key reused with a different request",
  rate_limited: "Too many requests",
  quota_exceeded: "Quota exceeded",
  internal: "Internal error",
  unavailable: "Service temporarily unavailable",
};

export interface FieldError {
  path: string;
  message: string;
}

/** RFC 9457 problem details, as every error leaves the API. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail?: string;
  requestId: string;
  errors?: FieldError[];
}

/** The one error class services throw; the error handler turns it into problem+json. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: ProblemCode,
    detail?: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string>; reason?: string } = {},
  ) {
    super(detail ?? titles[code]);
  }

  get status(): ContentfulStatusCode {
    return problemStatus[this.code];
  }

  static validation(errors: FieldError[], detail?: string): ApiError {
    const fields = errors.map((e) => e.path || "(body)").join(", ");
    return new ApiError("validation_failed", detail ?? `Invalid value for: ${fields}.`, { errors });
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
  static conflict(reason: string, detail: string): ApiError {
    return new ApiError("conflict", detail, { reason });
  }
}

export function problemType(code: ProblemCode): string {
  return `urn:circle:problem:${code}`;
}

export function problemBody(code: ProblemCode, requestId: string, detail?: string, errors?: FieldError[]): Problem {
  return {
    type: problemType(code),
    title: titles[code],
    status: problemStatus[code],
    code,
    ...(detail ? { detail } : {}),
    requestId,
    ...(errors?.length ? { errors } : {}),
  };
}

export function problemResponse(
  c: Context,
  code: ProblemCode,
  detail?: string,
  options: { errors?: FieldError[]; headers?: Record<string, string> } = {},
): Response {
  const requestId = (c.get("requestId") as string | undefined) ?? "";
  const body = problemBody(code, requestId, detail, options.errors);
  return c.newResponse(JSON.stringify(body), problemStatus[code], {
    "content-type": "application/problem+json",
    ...(requestId ? { "X-Request-Id": requestId } : {}),
    ...options.headers,
  });
}

/** Maps anything thrown below a route to a problem response; unknown errors are logged, never echoed. */
export function toProblemResponse(c: Context, error: unknown, retryAfterSeconds: number): Response {
  if (error instanceof ApiError) {
    return problemResponse(c, error.code, error.message, { errors: error.extra.errors, headers: error.extra.headers });
  }
  if (error instanceof StoreUnavailableError) {
    return problemResponse(c, "unavailable", "A backing service is unavailable. Please retry shortly.", {
      headers: { "Retry-After": String(retryAfterSeconds) },
    });
  }
  if (isHttpException(error)) {
    const status = error.status;
    if (status === 413) return problemResponse(c, "payload_too_large", "The request body is too large.");
    if (status === 400) return problemResponse(c, "validation_failed", error.message || "Malformed request.");
    if (status === 401) return problemResponse(c, "unauthorized");
  }
  return problemResponse(c, "internal", "Something went wrong on our side. The request id identifies it in our logs.");
}

function isHttpException(error: unknown): error is { status: number; message: string } {
  return (
    typeof error === "object" &&
    error !== null &&
    "getResponse" in error &&
    "status" in error &&
    typeof (error as { status: unknown }).status === "number"
  );
}
