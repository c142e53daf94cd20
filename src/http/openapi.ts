import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { ApiError, type FieldError, problemStatus } from "../core/errors";
import type { AppEnv } from "./context";

export const ProblemSchema = z
  .object({
    type: z.string().meta({ example: "urn:circle:problem:validation_failed" }),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(Object.keys(problemStatus) as [keyof typeof problemStatus, ...(keyof typeof problemStatus)[]]),
    reason: z
      .string()
      .optional()
      .meta({ description: "Extension member: a stable reason within `code`, e.g. `username_taken` for a 409" }),
    detail: z.string().optional(),
    currentVersion: z
      .number()
      .int()
      .optional()
      .meta({ description: "Extension member on a 412: the resource's current version (also its `ETag`)" }),
    requestId: z.string(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .meta({ description: "For 400: each invalid field, e.g. `events.3.timestamp`" }),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details" });

const problemDescriptions: Record<number, string> = {
  400: "Invalid input (the `errors` array names each field)",
  401: "Missing or invalid credentials",
  402: "Not enough gems",
  403: "Authenticated but not allowed",
  404: "Not found (also for objects the caller may not see)",
  409: "Conflict (`reason` says which)",
  412: "The If-Match version is not the current one (the current `ETag` and `currentVersion` come back)",
  413: "Request body too large",
  415: "The body is not application/json",
  422: "Idempotency key reused with a different body",
  428: "A precondition header is required",
  429: "Rate limit or quota exceeded (see Retry-After)",
  503: "A backing store is unavailable (see Retry-After)",
};

export type ProblemStatusCode = 400 | 401 | 402 | 403 | 404 | 409 | 412 | 413 | 415 | 422 | 428 | 429 | 503;

const problemEntry = (status: number) => ({
  description: problemDescriptions[status] ?? "Error",
  content: { "application/problem+json": { schema: ProblemSchema } },
});
type ProblemEntry = ReturnType<typeof problemEntry>;

/** OpenAPI response entries for problem+json errors. */
export function problems<S extends ProblemStatusCode>(...statuses: S[]): Record<S, ProblemEntry> {
  return Object.fromEntries(statuses.map((s) => [s, problemEntry(s)])) as Record<S, ProblemEntry>;
}

/** OpenAPI response entry for a JSON body. */
export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** OpenAPI request entry for a required JSON body. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { body: { content: { "application/json": { schema } }, required: true } };
}

/** A feature's router: validation failures become 400 problems naming each field. */
export function router(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, _c) => {
      if (!result.success) {
        // An unknown field is reported at its own path, so a client sees which field to drop.
        const errors: FieldError[] = result.error.issues.flatMap((issue) =>
          issue.code === "unrecognized_keys"
            ? issue.keys.map((key) => ({ path: [...issue.path, key].map(String).join("."), message: "unknown field" }))
            : [{ path: issue.path.map(String).join("."), message: issue.message }],
        );
        const where = result.target === "json" ? "" : ` in ${result.target}`;
        throw ApiError.validation(
          errors,
          `Invalid value${where} for: ${errors.map((e) => e.path || "(body)").join(", ")}.`,
        );
      }
    },
  });
}
