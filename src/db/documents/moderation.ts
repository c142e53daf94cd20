import type { ObjectId } from "../../platform/ids";
import type { RequestKey } from "./requests";

export const TARGET_TYPES = ["post", "comment", "user"] as const;
export const REPORT_REASONS = [
  "nsfw",
  "hate_speech",
  "spam",
  "harassment",
  "impersonation",
  "copyright",
  "other",
] as const;
export const REPORT_STATUSES = ["pending", "reviewed", "actioned", "dismissed"] as const;
/** What moderators may do (POST /v1/admin/moderation-actions). */
export const MANUAL_ACTIONS = [
  "approve",
  "reject",
  "remove_content",
  "warn",
  "shadow_ban",
  "ban",
  "unban",
  "restore",
] as const;
/** Plus `flag`: the report-threshold rule hiding content (or queueing a user) pending review. */
export const ACTIONS = [...MANUAL_ACTIONS, "flag"] as const;
export const APPEALABLE_ACTIONS = ["remove_content", "warn", "shadow_ban", "ban", "reject"] as const;
export const ACTION_SOURCES = ["manual_review", "report_threshold", "appeal_review"] as const;
export const APPEAL_STATUSES = ["pending", "approved", "denied"] as const;

export type TargetType = (typeof TARGET_TYPES)[number];
export type ReportReason = (typeof REPORT_REASONS)[number];
export type ReportStatus = (typeof REPORT_STATUSES)[number];
export type ManualAction = (typeof MANUAL_ACTIONS)[number];
export type ModerationActionKind = (typeof ACTIONS)[number];
export type ActionSource = (typeof ACTION_SOURCES)[number];
export type AppealStatus = (typeof APPEAL_STATUSES)[number];

/** What the reporter saw, kept with the report so later edits or deletion don't erase the evidence. */
export interface ReportSnapshot {
  text: string | null;
  imageUrl: string | null;
  authorId: string;
  username: string;
  /** For comments: the post they were on. */
  postId: string | null;
}

/** `reports` (seed 000) plus the weight it carried, its snapshot and the moderator it is assigned to. */
export interface ReportDoc {
  _id: ObjectId;
  /** The Idempotency-Key it was filed with (key: `{reporterId}:{Idempotency-Key}`), when the client sent one. */
  idempotency?: RequestKey;
  reporterId: ObjectId;
  targetType: TargetType;
  targetId: ObjectId;
  targetUserId: ObjectId;
  reason: ReportReason;
  description: string | null;
  status: ReportStatus;
  /**
   * The reporter's weight (moderation/trust.ts) and the content as reported. Null until the report's owed run
   * fills them in, right after its answer (a report waits on one Data API call); the queue lists it from then.
   */
  weight: number | null;
  snapshot: ReportSnapshot | null;
  assignedTo: ObjectId | null;
  assignedAt: Date | null;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  actionTaken: "none" | "removed" | "warned" | "shadow_banned" | "banned" | null;
  moderationActionId: ObjectId | null;
  createdAt: Date;
}

/** `moderation_actions` (seed 000) plus the reports it answered, a ban's end and what an appeal must undo. */
export interface ModerationActionDoc {
  _id: ObjectId;
  targetType: TargetType;
  targetId: ObjectId;
  targetUserId: ObjectId;
  action: ModerationActionKind;
  reason: string;
  source: ActionSource;
  /** "system" for automatic rules, else the moderator's id. */
  performedBy: string;
  appealable: boolean;
  appealId: ObjectId | null;
  reportIds: ObjectId[];
  expiresAt: Date | null;
  /** Change applied to the target user's trust score, undone when an appeal is approved. */
  trustDelta: number;
  reversedAt: Date | null;
  reversedBy: ObjectId | null;
  createdAt: Date;
}

/** `appeals` (seed 000). */
export interface AppealDoc {
  _id: ObjectId;
  userId: ObjectId;
  moderationActionId: ObjectId;
  reason: string;
  status: AppealStatus;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  reviewNotes: string | null;
  createdAt: Date;
}
