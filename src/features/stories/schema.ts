import { z } from "zod";
import { ObjectIdString, PageQuery } from "../../core/schemas";
import { PublicUser } from "../users/schema";

export const StoryIdParam = z.object({ id: ObjectIdString });
export const UserIdParam = z.object({ id: ObjectIdString });

export const CreateStoryBody = z
  .object({
    generationId: ObjectIdString.optional().meta({ description: "One of the caller's completed generations" }),
    mediaId: ObjectIdString.optional().meta({
      description: "Instead of generationId: a ready image upload of the caller's (`POST /v1/media`, purpose `story`)",
    }),
    caption: z.string().max(2_000).optional().meta({ description: "At most STORY_MAX_CAPTION_LENGTH characters" }),
  })
  .strict()
  .meta({ id: "CreateStory" });
export type CreateStoryBody = z.infer<typeof CreateStoryBody>;

export const StoryMedia = z
  .object({
    url: z.string(),
    thumbnailUrl: z.string().nullable(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    blurhash: z.string().nullable(),
  })
  .meta({ id: "StoryMedia" });

export const Story = z
  .object({
    id: z.string(),
    userId: z.string(),
    mediaUrl: z.string(),
    media: StoryMedia,
    caption: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string().meta({ description: "STORY_TTL_HOURS after posting; never shown after it" }),
    viewCount: z.number().int().optional().meta({ description: "The owner's stories only" }),
    seen: z.boolean().optional().meta({ description: "Whether the signed-in caller has viewed it" }),
  })
  .meta({ id: "Story" });
export type Story = z.infer<typeof Story>;

export const StoryList = z.object({ items: z.array(Story) }).meta({ id: "StoryList" });
export type StoryList = z.infer<typeof StoryList>;

export const StoryTray = z
  .object({
    items: z.array(
      z.object({
        user: PublicUser,
        stories: z.array(Story).meta({ description: "Oldest first, as they are watched" }),
        unseen: z.boolean().meta({ description: "Some story here the caller has not viewed" }),
      }),
    ),
  })
  .meta({ id: "StoryTray" });
export type StoryTray = z.infer<typeof StoryTray>;

export const StoryViewers = z
  .object({
    items: z.array(z.object({ user: PublicUser, viewedAt: z.string() })),
    nextCursor: z.string().nullable(),
    viewCount: z.number().int(),
  })
  .meta({ id: "StoryViewers" });
export type StoryViewers = z.infer<typeof StoryViewers>;

export const ViewersQuery = PageQuery;

export const StoryReplyBody = z
  .object({
    text: z.string().min(1),
    clientMessageId: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1–64 letters, digits, '_', '.', ':' or '-'")
      .optional()
      .meta({ description: "For safe retries, as with any message" }),
  })
  .strict()
  .meta({ id: "StoryReply" });
export type StoryReplyBody = z.infer<typeof StoryReplyBody>;
