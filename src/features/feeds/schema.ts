import { z } from "zod";
import { IdParam, PageQuery } from "../../core/schemas";
import { LIFECYCLE_STATES } from "../posts/transitions";

export const FeedKindParams = z.object({ kind: z.enum(["new", "trending", "hot", "top", "following"]) });
export const CategoryParams = z.object({
  category: z.string().regex(/^[A-Za-z0-9_-]{2,32}$/, "2–32 of A-Z, a-z, 0-9, _ -"),
});
export const TagParams = z.object({ tag: z.string().min(1).max(33) });
export const UserPostsQuery = PageQuery.extend({
  status: z.enum(LIFECYCLE_STATES).optional().meta({
    description:
      "Only posts in this state: the author's drafts, scheduled or archived posts (others see published ones only)",
  }),
});
export type UserPostsQuery = z.infer<typeof UserPostsQuery>;
export const SearchQuery = PageQuery.extend({ q: z.string().trim().min(1).max(100) });
export { IdParam, PageQuery };
