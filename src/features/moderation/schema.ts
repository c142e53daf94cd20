import { z } from "@hono/zod-openapi";
import { ObjectIdString } from "../../http/pagination";
import type { ObjectId } from "../../platform/ids";

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

export function isAppealable(action: ModerationActionKind): boolean {
  return (APPEALABLE_ACTIONS as readonly string[]).includes(action);
}

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
  reporterId: ObjectId;
  targetType: TargetType;
  targetId: ObjectId;
  targetUserId: ObjectId;
  reason: ReportReason;
  description: string | null;
  status: ReportStatus;
  weight: number;
  snapshot: ReportSnapshot;
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

// ---- Request bodies ----

export const CreateReportBody = z
  .object({
    targetType: z.enum(TARGET_TYPES),
    targetId: ObjectIdString,
    reason: z.enum(REPORT_REASONS),
    description: z.string().trim().max(500, "at most 500 characters").optional(),
  })
  .strict()
  .openapi("CreateReport");

export const ModerationActionBody = z
  .object({
    targetType: z.enum(TARGET_TYPES),
    targetId: ObjectIdString,
    action: z.enum(MANUAL_ACTIONS),
    reason: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters"),
    reportIds: z.array(ObjectIdString).max(100).optional(),
    notifyUser: z.boolean().optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "ban only: when it lifts" }),
    durationHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 365 * 10)
      .optional()
      .openapi({ description: "ban only: alternative to expiresAt" }),
  })
  .strict()
  .openapi("ModerationActionRequest");

export const CreateAppealBody = z
  .object({
    moderationActionId: ObjectIdString,
    reason: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters"),
  })
  .strict()
  .openapi("CreateAppeal");

export const AppealDecisionBody = z
  .object({
    decision: z.enum(["approved", "denied"]),
    notes: z.string().trim().max(1000, "at most 1000 characters").optional(),
  })
  .strict()
  .openapi("AppealDecision");

export type CreateReportBody = z.infer<typeof CreateReportBody>;
export type ModerationActionBody = z.infer<typeof ModerationActionBody>;
export type CreateAppealBody = z.infer<typeof CreateAppealBody>;
export type AppealDecisionBody = z.infer<typeof AppealDecisionBody>;

// ---- Responses ----

export const Report = z
  .object({
    id: z.string(),
    targetType: z.enum(TARGET_TYPES),
    targetId: z.string(),
    reason: z.enum(REPORT_REASONS),
    description: z.string().nullable(),
    status: z.enum(REPORT_STATUSES),
    createdAt: z.string(),
  })
  .openapi("Report");

export const Snapshot = z
  .object({
    text: z.string().nullable(),
    imageUrl: z.string().nullable(),
    authorId: z.string(),
    username: z.string(),
    postId: z.string().nullable(),
  })
  .openapi("ReportSnapshot");

export const QueueReport = Report.extend({
  reporterId: z.string(),
  weight: z.number(),
  assignedTo: z.string().nullable(),
  assignedAt: z.string().nullable(),
  reviewedAt: z.string().nullable(),
  actionTaken: z.string().nullable(),
  snapshot: Snapshot,
}).openapi("QueueReport");

export const QueueItem = z
  .object({
    targetType: z.enum(TARGET_TYPES),
    targetId: z.string(),
    targetUserId: z.string(),
    firstReportedAt: z.string(),
    reportCount: z.number().int(),
    totalWeight: z.number(),
    snapshot: Snapshot,
    reports: z.array(QueueReport),
  })
  .openapi("ReportQueueItem");

export const QueuePage = z
  .object({ items: z.array(QueueItem), nextCursor: z.string().nullable() })
  .openapi("ReportQueuePage");

export const ModerationAction = z
  .object({
    id: z.string(),
    targetType: z.enum(TARGET_TYPES),
    targetId: z.string(),
    targetUserId: z.string(),
    action: z.enum(ACTIONS),
    reason: z.string(),
    source: z.enum(ACTION_SOURCES),
    performedBy: z.string(),
    appealable: z.boolean(),
    reportIds: z.array(z.string()),
    expiresAt: z.string().nullable(),
    reversedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("ModerationAction");

export const Appeal = z
  .object({
    id: z.string(),
    userId: z.string(),
    moderationActionId: z.string(),
    reason: z.string(),
    status: z.enum(APPEAL_STATUSES),
    reviewedAt: z.string().nullable(),
    reviewNotes: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("Appeal");

export const AdminAppeal = Appeal.extend({ moderationAction: ModerationAction.nullable() }).openapi("AdminAppeal");
export const AdminAppealPage = z
  .object({ items: z.array(AdminAppeal), nextCursor: z.string().nullable() })
  .openapi("AdminAppealPage");

/** One action on the caller's account or content, as the caller sees it (no moderator identity). */
export const MyModerationItem = z
  .object({
    id: z.string(),
    targetType: z.enum(TARGET_TYPES),
    targetId: z.string(),
    action: z.enum(ACTIONS),
    reason: z.string(),
    source: z.enum(ACTION_SOURCES),
    expiresAt: z.string().nullable(),
    reversed: z.boolean(),
    createdAt: z.string(),
    appealable: z.boolean().openapi({ description: "an appeal may be filed now" }),
    appealDeadline: z.string().nullable(),
    appeal: z
      .object({
        id: z.string(),
        status: z.enum(APPEAL_STATUSES),
        createdAt: z.string(),
        reviewedAt: z.string().nullable(),
        reviewNotes: z.string().nullable(),
      })
      .nullable(),
  })
  .openapi("MyModerationItem");

export const MyModeration = z
  .object({
    account: z.object({
      banned: z.boolean(),
      banExpiresAt: z.string().nullable(),
      shadowBanned: z.boolean(),
      trustScore: z.number(),
    }),
    items: z.array(MyModerationItem),
  })
  .openapi("MyModeration");

export const AuditEntry = z
  .object({
    id: z.string(),
    action: z.string(),
    userId: z.string().nullable(),
    actorId: z.string().nullable(),
    timestamp: z.string(),
    requestId: z.string().nullable(),
    dataCategory: z.string(),
    metadata: z.record(z.string(), z.unknown()),
  })
  .openapi("AuditEntry");

export const AuditPage = z
  .object({ items: z.array(AuditEntry), nextCursor: z.string().nullable() })
  .openapi("AuditPage");

export type Report = z.infer<typeof Report>;
export type QueueItem = z.infer<typeof QueueItem>;
export type QueueReport = z.infer<typeof QueueReport>;
export type ModerationAction = z.infer<typeof ModerationAction>;
export type Appeal = z.infer<typeof Appeal>;
export type AdminAppeal = z.infer<typeof AdminAppeal>;
export type MyModerationItem = z.infer<typeof MyModerationItem>;
export type MyModeration = z.infer<typeof MyModeration>;
export type AuditEntry = z.infer<typeof AuditEntry>;

export function toReport(r: ReportDoc): Report {
  return {
    id: r._id.toHexString(),
    targetType: r.targetType,
    targetId: r.targetId.toHexString(),
    reason: r.reason,
    description: r.description,
    status: r.status,
    createdAt: r.createdAt.toISOString(),
  };
}

export function toQueueReport(r: ReportDoc): QueueReport {
  return {
    ...toReport(r),
    reporterId: r.reporterId.toHexString(),
    weight: r.weight,
    assignedTo: r.assignedTo?.toHexString() ?? null,
    assignedAt: r.assignedAt?.toISOString() ?? null,
    reviewedAt: r.reviewedAt?.toISOString() ?? null,
    actionTaken: r.actionTaken,
    snapshot: r.snapshot,
  };
}

export function toModerationAction(a: ModerationActionDoc): ModerationAction {
  return {
    id: a._id.toHexString(),
    targetType: a.targetType,
    targetId: a.targetId.toHexString(),
    targetUserId: a.targetUserId.toHexString(),
    action: a.action,
    reason: a.reason,
    source: a.source,
    performedBy: a.performedBy,
    appealable: a.appealable,
    reportIds: a.reportIds.map((id) => id.toHexString()),
    expiresAt: a.expiresAt?.toISOString() ?? null,
    reversedAt: a.reversedAt?.toISOString() ?? null,
    createdAt: a.createdAt.toISOString(),
  };
}

export function toAppeal(a: AppealDoc): Appeal {
  return {
    id: a._id.toHexString(),
    userId: a.userId.toHexString(),
    moderationActionId: a.moderationActionId.toHexString(),
    reason: a.reason,
    status: a.status,
    reviewedAt: a.reviewedAt?.toISOString() ?? null,
    reviewNotes: a.reviewNotes,
    createdAt: a.createdAt.toISOString(),
  };
}
