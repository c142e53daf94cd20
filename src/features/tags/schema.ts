import { z } from "zod";

/** A tag as clients type it: letters, digits, `_` or `-`, with or without `#` (stored lower-case, without it). */
const TagPrefix = z
  .string()
  .trim()
  .min(1)
  .max(33)
  .regex(/^#?[\p{L}\p{N}_-]*$/u, "letters, digits, _ or -")
  .transform((v) => v.replace(/^#/, "").toLowerCase());

export const TagsQuery = z.object({
  prefix: TagPrefix.optional().meta({ description: "Tags starting with this (without it: the most used tags)" }),
  limit: z.coerce.number().int().min(1).max(50).default(10),
});
export type TagsQuery = z.infer<typeof TagsQuery>;

export const TagUsage = z
  .object({
    tag: z.string(),
    posts: z.number().int().meta({ description: "Visible posts carrying it (published, approved, public)" }),
  })
  .meta({ id: "TagUsage" });

export const TagUsageList = z.object({ items: z.array(TagUsage) }).meta({ id: "TagUsageList" });
export type TagUsageList = z.infer<typeof TagUsageList>;

export const TrendingTag = TagUsage.extend({
  rise: z.number().meta({ description: "Posts in the last 24 h minus the daily average of the 7 days before" }),
  recentPosts: z.number().int().meta({ description: "Posts published with it in the last 24 h" }),
}).meta({ id: "TrendingTag" });

export const TrendingTags = z
  .object({ items: z.array(TrendingTag), computedAt: z.string() })
  .meta({ id: "TrendingTags" });
export type TrendingTags = z.infer<typeof TrendingTags>;
