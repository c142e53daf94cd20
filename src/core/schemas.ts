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
