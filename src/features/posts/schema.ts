import { z } from "zod";
import { ObjectIdString, pageOf } from "../../core/schemas";
import { MODERATION_STATUSES, POST_MEDIA_TYPES, type PostDoc, VISIBILITIES } from "../../db";
import { LIFECYCLE_STATES, lifecycleStateOf } from "./transitions";

const Tag = z
  .string()
  .trim()
  .min(1)
  .max(32)
  .regex(/^#?[\p{L}\p{N}_-]+$/u, "letters, digits, _ or -");
const Category = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9_-]{2,32}$/, "2–32 of a-z, 0-9, _ -");

const PublishAt = z.iso
  .datetime({ offset: true })
  .transform((v) => new Date(v))
  .meta({ description: "When a scheduled post goes out: 5 minutes to 30 days ahead (POST_PUBLISH_*)" });

/** `publishAt` goes with `status: "scheduled"` and only with it. */
function scheduleRules(body: { status?: string | undefined; publishAt?: Date | undefined }, ctx: z.RefinementCtx) {
  if (body.status === "scheduled" && !body.publishAt) {
    ctx.addIssue({ code: "custom", path: ["publishAt"], message: "required when status is scheduled" });
  }
  if (body.publishAt && body.status !== undefined && body.status !== "scheduled") {
    ctx.addIssue({ code: "custom", path: ["publishAt"], message: "only with status scheduled" });
  }
}

export const CreatePostBody = z
  .object({
    generationId: ObjectIdString.optional().meta({ description: "A completed generation of the caller's" }),
    mediaId: ObjectIdString.optional().meta({
      description: "Instead of generationId: a ready `post` upload of the caller's, an image or an MP4 video (a reel)",
    }),
    posterMediaId: ObjectIdString.optional().meta({
      description: "With a video: a ready `post` image upload shown before playback (required for videos)",
    }),
    prompt: z
      .string()
      .trim()
      .max(2_000)
      .optional()
      .meta({ description: "With mediaId: the prompt behind the upload, if any (a generation brings its own)" }),
    tags: z.array(Tag).max(10, "at most 10 tags").optional(),
    category: Category.optional(),
    visibility: z.enum(VISIBILITIES).optional(),
    shareCaption: z.string().max(280).optional(),
    status: z
      .enum(["draft", "scheduled", "published"])
      .optional()
      .meta({ description: "Default `published`; `scheduled` needs `publishAt`" }),
    publishAt: PublishAt.optional(),
  })
  .strict()
  .refine((b) => (b.generationId === undefined) !== (b.mediaId === undefined), {
    path: ["generationId"],
    message: "send generationId or mediaId (one of them)",
  })
  .refine((b) => b.mediaId !== undefined || (b.posterMediaId === undefined && b.prompt === undefined), {
    path: ["posterMediaId"],
    message: "posterMediaId and prompt go with mediaId",
  })
  .superRefine(scheduleRules)
  .meta({ id: "CreatePost" });

export const UpdatePostBody = z
  .object({
    tags: z.array(Tag).max(10, "at most 10 tags").optional(),
    category: Category.nullable().optional(),
    visibility: z.enum(VISIBILITIES).optional(),
    isPinned: z.boolean().optional(),
    status: z
      .enum(LIFECYCLE_STATES)
      .optional()
      .meta({
        description:
          "A lifecycle move: draft → published | scheduled; scheduled → draft | published | scheduled (a new " +
          "`publishAt`); published → archived; archived → published; pending_review → archived. Any other is a " +
          "409 `invalid_transition`; the state the post is in already changes nothing.",
      }),
    publishAt: PublishAt.optional().meta({ description: "With `status: scheduled` (or alone: reschedule)" }),
  })
  .strict()
  .superRefine(scheduleRules)
  .meta({ id: "UpdatePost" });

export const PostVideoView = z
  .object({
    url: z.string(),
    contentType: z.string(),
    durationSeconds: z.number(),
    width: z.number().int(),
    height: z.number().int(),
  })
  .meta({ id: "PostVideo" });

export const Post = z
  .object({
    id: z.string(),
    userId: z.string(),
    username: z.string(),
    userAvatarUrl: z.string().nullable(),
    prompt: z.string(),
    imageUrl: z.string(),
    thumbnailUrl: z.string(),
    imageWidth: z.number().int(),
    imageHeight: z.number().int(),
    mediaType: z
      .enum(POST_MEDIA_TYPES)
      .meta({ description: "`video` for reels (play `video`; the image is its poster)" }),
    video: PostVideoView.nullable(),
    blurhash: z.string().nullable(),
    model: z.string(),
    tags: z.array(z.string()),
    category: z.string().nullable(),
    voteCount: z.number().int(),
    commentCount: z.number().int(),
    shareCount: z.number().int(),
    viewCount: z.number().int(),
    visibility: z.enum(VISIBILITIES),
    moderationStatus: z.enum(MODERATION_STATUSES),
    hasWatermark: z.boolean(),
    isPinned: z.boolean(),
    shareableUrl: z.string(),
    status: z.enum(LIFECYCLE_STATES),
    publishAt: z.string().nullable().meta({ description: "When a scheduled post goes out" }),
    publishedAt: z.string().nullable().meta({ description: "When it was first published (also its `createdAt`)" }),
    saveCount: z.number().int(),
    createdAt: z.string(),
    viewer: z.object({ voted: z.boolean() }),
  })
  .meta({ id: "Post" });

export const PostPage = pageOf(Post, "PostPage");

export const ShareResult = z
  .object({ shareableUrl: z.string(), shareCount: z.number().int() })
  .meta({ id: "ShareResult" });

export type Post = z.infer<typeof Post>;
export type PostPage = z.infer<typeof PostPage>;
export type ShareResult = z.infer<typeof ShareResult>;
export type CreatePostBody = z.infer<typeof CreatePostBody>;
export type UpdatePostBody = z.infer<typeof UpdatePostBody>;

export function toPost(p: PostDoc, voted: boolean, liveVoteCount?: number): Post {
  return {
    id: p._id.toHexString(),
    userId: p.userId.toHexString(),
    username: p.username,
    userAvatarUrl: p.userAvatarUrl,
    prompt: p.prompt,
    imageUrl: p.imageUrl,
    thumbnailUrl: p.thumbnailUrl,
    imageWidth: p.imageWidth,
    imageHeight: p.imageHeight,
    mediaType: p.mediaType ?? "image",
    video: p.video ?? null,
    blurhash: p.blurhash,
    model: p.model,
    tags: p.tags,
    category: p.category,
    voteCount: liveVoteCount ?? p.voteCount,
    commentCount: p.commentCount,
    shareCount: p.shareCount,
    viewCount: p.viewCount,
    visibility: p.visibility,
    moderationStatus: p.moderationStatus,
    hasWatermark: p.hasWatermark,
    isPinned: p.isPinned,
    shareableUrl: p.shareableUrl,
    status: lifecycleStateOf(p),
    publishAt: p.publishAt?.toISOString() ?? null,
    publishedAt: (p.publishedAt ?? (p.status === undefined ? p.createdAt : null))?.toISOString() ?? null,
    saveCount: p.saveCount ?? 0,
    createdAt: p.createdAt.toISOString(),
    viewer: { voted },
  };
}

/** Tags are stored lower-case, without '#', de-duplicated, in the order given. */
export function normalizeTags(tags: string[] | undefined): string[] {
  return [...new Set((tags ?? []).map((t) => t.trim().replace(/^#/, "").toLowerCase()))];
}
