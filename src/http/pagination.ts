import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";

/** `?limit=` (default 20, max 100) and `?cursor=` (opaque), as every list in API.md takes. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
});

/** Cursors are opaque to clients: base64url JSON of the position after the last item returned. */
export function encodeCursor(position: Record<string, string | number>): string {
  return btoa(JSON.stringify(position)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor(cursor: string): { id: string } & Record<string, string | number> {
  try {
    const json = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const parsed = JSON.parse(json) as Record<string, unknown>;
    if (typeof parsed.id !== "string" || !/^[0-9a-f]{24}$/.test(parsed.id)) throw new Error("bad cursor");
    return parsed as { id: string } & Record<string, string | number>;
  } catch {
    throw ApiError.validation([{ path: "cursor", message: "not a cursor this API issued" }]);
  }
}

/** A 24-hex ObjectId string, as every id in the API is. */
export const ObjectIdString = z.string().regex(/^[0-9a-f]{24}$/i, "a 24-hex id");

/** `{id}` path parameter of a single object. */
export const IdParam = z.object({ id: ObjectIdString });
