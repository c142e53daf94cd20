import type { ObjectId } from "../../platform/ids";

/** Actor-less kinds (seed 000): the service writes them with their own title; the rest are people's actions. */
export const NOTICE_TYPES = ["gem_earned", "trending", "streak", "referral", "moderation", "system"] as const;
export type NoticeType = (typeof NOTICE_TYPES)[number];
/**
 * `message`: a direct message (features/messaging); `post`: someone the recipient follows published a post
 * (features/posts/publish-scheduled.ts tells followers); `live`: someone they follow went live
 * (features/streams/announce.ts).
 */
export const NOTIFICATION_TYPES = [
  "vote",
  "follow",
  "comment",
  "reply",
  "message",
  "live",
  "post",
  ...NOTICE_TYPES,
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export const ACTION_TYPES = ["open_post", "open_profile", "open_screen"] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

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
  /** A promotional notice: pushed only to recipients who opted into `marketing`. */
  marketing?: boolean;
  /**
   * Push state (features/push). An event that changes the group marks a push owed in the same write; the sender
   * claims it (`pushOwed` back to false) before it calls FCM, so a claimed version is never pushed twice.
   */
  pushOwed?: boolean;
  /** When the sweep may take an owed push: after the immediate attempt's grace, quiet hours or the hourly cap. */
  pushNotBefore?: Date;
  /** Held back by quiet hours or the hourly cap: it goes out folded into one summary push. */
  pushHeld?: boolean;
  /** Failed sends of the owed version (FCM down); the push is dropped after PUSH_MAX_ATTEMPTS. */
  pushAttempts?: number;
  /** When a push for this group was last claimed for sending. */
  pushedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}
