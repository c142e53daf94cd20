import type { Context } from "hono";
import { ApiError, type FieldError, type ProblemCode, problemStatus, problemTitles } from "../core/errors";
import { StoreUnavailableError } from "../platform/errors";
import { InvalidCursorError } from "../platform/mongo/paginate";

/** RFC 9457 problem details, as every error leaves the API. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  /** Extension member: a stable reason within the code (e.g. `username_taken` for a 409). */
  reason?: string;
  detail?: string;
  requestId: string;
  errors?: FieldError[];
}

export function problemType(code: ProblemCode): string {
  return `urn:circle:problem:${code}`;
}

export function problemBody(
  code: ProblemCode,
  requestId: string,
  detail?: string,
  extra: { errors?: FieldError[]; reason?: string; members?: Record<string, unknown> } = {},
): Problem {
  return {
    ...extra.members,
    type: problemType(code),
    title: problemTitles[code],
    status: problemStatus[code],
    code,
    ...(extra.reason ? { reason: extra.reason } : {}),
    ...(detail ? { detail } : {}),
    requestId,
    ...(extra.errors?.length ? { errors: extra.errors } : {}),
  };
}

export function problemResponse(
  c: Context,
  code: ProblemCode,
  detail?: string,
  options: {
    errors?: FieldError[];
    headers?: Record<string, string>;
    reason?: string;
    members?: Record<string, unknown>;
  } = {},
): Response {
  const requestId = (c.get("requestId") as string | undefined) ?? "";
  const body = problemBody(code, requestId, detail, options);
  return c.newResponse(JSON.stringify(body), problemStatus[code], {
    "content-type": "application/problem+json",
    ...(requestId ? { "X-Request-Id": requestId } : {}),
    ...options.headers,
  });
}

/** Maps anything thrown below a route to a problem response; unknown errors are logged, never echoed. */
export function toProblemResponse(c: Context, error: unknown, retryAfterSeconds: number): Response {
  if (error instanceof ApiError) {
    return problemResponse(c, error.code, error.message, error.extra);
  }
  if (error instanceof InvalidCursorError) {
    return problemResponse(c, "validation_failed", "The cursor is not one this API issued.", {
      errors: [{ path: "cursor", message: "not a cursor this API issued" }],
    });
  }
  if (error instanceof StoreUnavailableError) {
    return problemResponse(c, "unavailable", "A backing service is unavailable. Please retry shortly.", {
      headers: { "Retry-After": String(retryAfterSeconds) },
    });
  }
  if (isHttpException(error)) {
    const status = error.status;
    if (status === 413) return problemResponse(c, "payload_too_large", "The request body is too large.");
    if (status === 415) {
      return problemResponse(c, "unsupported_media_type", "Send the body as application/json.", {
        errors: [{ path: "Content-Type", message: "must be application/json" }],
      });
    }
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
