import { z } from "zod";
import { IdParam, PageQuery } from "../../core/schemas";

export const FeedKindParams = z.object({ kind: z.enum(["new", "trending", "hot", "top", "following"]) });
export const CategoryParams = z.object({
  category: z.string().regex(/^[A-Za-z0-9_-]{2,32}$/, "2–32 of A-Z, a-z, 0-9, _ -"),
});
export const TagParams = z.object({ tag: z.string().min(1).max(33) });
export const SearchQuery = PageQuery.extend({ q: z.string().trim().min(1).max(100) });
export { IdParam, PageQuery };
