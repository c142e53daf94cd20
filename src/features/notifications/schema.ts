import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import { ACTION_TYPES, NOTIFICATION_TYPES, POLICY_ACTIONS } from "../../db";
import { PublicUser } from "../users/schema";

/** Newest actors kept per group for display. */
export const SAMPLE_ACTORS = 8;
/** Actors remembered per group for dedupe; past this the oldest are forgotten (and could count again). */
export const ACTOR_IDS_CAP = 1_000;

const boolQuery = z.enum(["true", "false"]).transform((v) => v === "true");

export const NotificationsQuery = PageQuery.extend({
  unread: boolQuery.optional().meta({ description: "`true`: only unread items" }),
  filtered: boolQuery
    .optional()
    .meta({ description: "`true`: only items held back by the caller's notification policy" }),
});

export const MarkReadBody = z
  .union([
    z.object({ ids: z.array(ObjectIdString).min(1).max(100) }).strict(),
    z.object({ all: z.literal(true) }).strict(),
  ])
  .meta({ id: "MarkNotificationsRead" });

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
  .meta({ id: "Notification" });
export type Notification = z.infer<typeof Notification>;

export const NotificationPage = pageOf(Notification, "NotificationPage");
export type NotificationPage = z.infer<typeof NotificationPage>;
export type NotificationsQuery = z.infer<typeof NotificationsQuery>;

export const UnreadCount = z.object({ count: z.number().int() }).meta({ id: "NotificationUnreadCount" });

export const NotificationPolicySchema = z
  .object({ notFollowing: z.enum(POLICY_ACTIONS), newAccounts: z.enum(POLICY_ACTIONS) })
  .meta({ id: "NotificationPolicy" });

export const NotificationPolicyBody = NotificationPolicySchema.partial()
  .strict()
  .meta({ id: "NotificationPolicyPatch" });
