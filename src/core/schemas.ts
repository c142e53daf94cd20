import { z } from "zod";

/** A 24-hex ObjectId string, as every id in the API is; upper-case hex is accepted and normalised. */
export const ObjectIdString = z
  .string()
  .regex(/^[0-9a-fA-F]{24}$/, "a 24-hex id")
  .transform((id) => id.toLowerCase());

/** `{id}` path parameter of a single object. */
export const IdParam = z.object({ id: ObjectIdString });

/** `?limit=` (default 20, max 100) and `?cursor=` (opaque), as every list in API.md takes. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
});
export type PageQuery = z.infer<typeof PageQuery>;

/** A list answer: a page of items and the cursor of the next page (null on the last). */
export const pageOf = <T extends z.ZodType>(item: T, id: string) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() }).meta({ id });

/** What a client's free-form JSON object may be: how deep it nests, how large it is as JSON, how long its keys are. */
export interface JsonObjectLimits {
  /** Levels of objects and arrays, the object itself being the first. */
  maxDepth: number;
  /** UTF-8 bytes of its JSON text. */
  maxBytes: number;
  /** Characters per top-level key. */
  maxKeyLength: number;
}

/**
 * A free-form JSON object from a client (event properties, a flag variant's config), passed through exactly as
 * parsed: any keys (`$where`, `a.b`, `__proto__` included) and values, bounded by `limits`. `z.record` is not
 * used because it rebuilds the object and drops a `__proto__` key. Depth is measured without recursion, so a
 * body nested thousands of levels deep is a 400, not a stack overflow.
 */
export const clientJsonObject = (limits: JsonObjectLimits) =>
  z
    .unknown()
    .superRefine((value, ctx) => {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        ctx.addIssue({ code: "custom", message: "must be a JSON object" });
        return;
      }
      const longKey = Object.keys(value).find((key) => key.length > limits.maxKeyLength);
      if (longKey !== undefined) {
        ctx.addIssue({ code: "custom", message: `keys are at most ${limits.maxKeyLength} characters` });
        return;
      }
      if (nestsDeeperThan(value, limits.maxDepth)) {
        ctx.addIssue({ code: "custom", message: `must not nest deeper than ${limits.maxDepth} levels` });
        return;
      }
      if (new TextEncoder().encode(JSON.stringify(value)).length > limits.maxBytes) {
        ctx.addIssue({ code: "custom", message: `at most ${limits.maxBytes} bytes as JSON` });
      }
    })
    .transform((value) => value as Record<string, unknown>)
    .meta({
      type: "object",
      additionalProperties: true,
      description: `Any JSON object: at most ${limits.maxBytes} bytes as JSON, ${limits.maxDepth} levels deep`,
    });

/** True when objects and arrays nest more than `maxDepth` levels in `value` (iterative: any depth is safe). */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== "object" || node === null) continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
