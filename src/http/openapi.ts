import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import type { AppEnv } from "./context";
import { ApiError, type FieldError, problemStatus } from "./errors";

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: "urn:circle:problem:validation_failed" }),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(Object.keys(problemStatus) as [keyof typeof problemStatus, ...(keyof typeof problemStatus)[]]),
    detail: z.string().optional(),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

const problemDescriptions: Record<number, string> = {
  400: "Invalid input (the `errors` array names each field)",
  401: "Missing or invalid credentials",
  402: "Not enough gems",
  403: "Authenticated but not allowed",
  404: "Not found (also for objects the caller may not see)",
  409: "Conflict",
  413: "Request body too large",
  422: "Idempotency key reused with a different body",
  429: "Rate limit or quota exceeded (see Retry-After)",
  503: "A backing store is unavailable (see Retry-After)",
};

/** OpenAPI response entries for problem+json errors. */
export function problems(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: problemDescriptions[s] ?? "Error",
        content: { "application/problem+json": { schema: ProblemSchema } },
      },
    ]),
  );
}

/** OpenAPI response entry for a JSON body. */
export function json<T extends ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
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
