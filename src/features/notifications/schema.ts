import { z } from "@hono/zod-openapi";
import { ObjectIdString } from "../../http/pagination";
import type { ObjectId } from "../../platform/ids";
import { PublicUser } from "../users/schema";
import { NotificationPolicySchema } from "./policy";

/** Actor-less kinds (seed 000): the service writes them with their own title; the rest are people's actions. */
export const NOTICE_TYPES = ["gem_earned", "trending", "streak", "referral", "moderation", "system"] as const;
export type NoticeType = (typeof NOTICE_TYPES)[number];
export const NOTIFICATION_TYPES = ["vote", "follow", "comment", "reply", ...NOTICE_TYPES] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export const ACTION_TYPES = ["open_post", "open_profile", "open_screen"] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** Newest actors kept per group for display. */
export const SAMPLE_ACTORS = 8;
/** Actors remembered per group for dedupe; past this the oldest are forgotten (and could count again). */
export const ACTOR_IDS_CAP = 1_000;

/**
 * `notifications` (seed 000) plus aggregation state: `sampleActors` (newest first, up to 8), `actorIds`
 * (every actor counted, oldest first, capped), `filtered` (stored under a recipient's "filter" policy:
 * hidden from the default list and the unread count) and `updatedAt` (last time an event joined).
 */
export interface NotificationDoc {
  _id: ObjectId;
  userId: ObjectId;
  type: NotificationType;
  title: string | null;
  body: string | null;
  imageUrl: string | null;
  actionType: ActionType | null;
  actionPayload: Record<string, string>;
  read: boolean;
  readAt: Date | null;
  aggregationKey: string;
  aggregationCount: number;
  sampleActors: ObjectId[];
  actorIds: ObjectId[];
  filtered: boolean;
  /** Set while this is the group new events of its key join (unique per recipient, key and inbox). */
  openGroup?: true;
  /** When a later event found the group past the window and opened a new one. */
  closedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

const boolQuery = z.enum(["true", "false"]).transform((v) => v === "true");

export const NotificationsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
  unread: boolQuery.optional().openapi({ description: "`true`: only unread items" }),
  filtered: boolQuery
    .optional()
    .openapi({ description: "`true`: only items held back by the caller's notification policy" }),
});

export const MarkReadBody = z
  .union([
    z.object({ ids: z.array(ObjectIdString).min(1).max(100) }).strict(),
    z.object({ all: z.literal(true) }).strict(),
  ])
  .openapi("MarkNotificationsRead");

export const Notification = z
  .object({
    id: z.string(),
    type: z.enum(NOTIFICATION_TYPES),
    title: z.string(),
    body: z.string().nullable(),
    imageUrl: z.string().nullable(),
    actionType: z.enum(ACTION_TYPES).nullable(),
    actionPayload: z.record(z.string(), z.string()),
    read: z.boolean(),
    aggregationKey: z.string(),
    aggregationCount: z.number().int(),
    sampleActors: z.array(PublicUser),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Notification");
export type Notification = z.infer<typeof Notification>;

export const NotificationPage = z
  .object({ items: z.array(Notification), nextCursor: z.string().nullable() })
  .openapi("NotificationPage");

export const UnreadCount = z.object({ count: z.number().int() }).openapi("NotificationUnreadCount");

export const NotificationPolicyBody = NotificationPolicySchema.partial().strict().openapi("NotificationPolicyPatch");
