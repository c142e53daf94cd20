import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import {
  ACTION_SOURCES,
  ACTIONS,
  APPEAL_STATUSES,
  APPEALABLE_ACTIONS,
  type AppealDoc,
  MANUAL_ACTIONS,
  type ModerationActionDoc,
  type ModerationActionKind,
  REPORT_REASONS,
  REPORT_STATUSES,
  type ReportDoc,
  TARGET_TYPES,
} from "../../db";

export function isAppealable(action: ModerationActionKind): boolean {
  return (APPEALABLE_ACTIONS as readonly string[]).includes(action);
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
  .meta({ id: "CreateReport" });

export const ModerationActionBody = z
  .object({
    targetType: z.enum(TARGET_TYPES),
    targetId: ObjectIdString,
    action: z.enum(MANUAL_ACTIONS),
    reason: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters"),
    reportIds: z.array(ObjectIdString).max(100).optional(),
    notifyUser: z.boolean().optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional().meta({ description: "ban only: when it lifts" }),
    durationHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 365 * 10)
      .optional()
      .meta({ description: "ban only: alternative to expiresAt" }),
  })
  .strict()
  .meta({ id: "ModerationActionRequest" });

export const CreateAppealBody = z
  .object({
    moderationActionId: ObjectIdString,
    reason: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters"),
  })
  .strict()
  .meta({ id: "CreateAppeal" });

export const AppealDecisionBody = z
  .object({
    decision: z.enum(["approved", "denied"]),
    notes: z.string().trim().max(1000, "at most 1000 characters").optional(),
  })
  .strict()
  .meta({ id: "AppealDecision" });

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
  .meta({ id: "Report" });

export const Snapshot = z
  .object({
    text: z.string().nullable(),
    imageUrl: z.string().nullable(),
    authorId: z.string(),
    username: z.string(),
    postId: z.string().nullable(),
  })
  .meta({ id: "ReportSnapshot" });

export const QueueReport = Report.extend({
  reporterId: z.string(),
  weight: z.number(),
  assignedTo: z.string().nullable(),
  assignedAt: z.string().nullable(),
  reviewedAt: z.string().nullable(),
  actionTaken: z.string().nullable(),
  snapshot: Snapshot,
}).meta({ id: "QueueReport" });

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
  .meta({ id: "ReportQueueItem" });

export const QueuePage = pageOf(QueueItem, "ReportQueuePage");
export type QueuePage = z.infer<typeof QueuePage>;

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
  .meta({ id: "ModerationAction" });

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
  .meta({ id: "Appeal" });

export const AdminAppeal = Appeal.extend({ moderationAction: ModerationAction.nullable() }).meta({ id: "AdminAppeal" });
export const AdminAppealPage = pageOf(AdminAppeal, "AdminAppealPage");
export type AdminAppealPage = z.infer<typeof AdminAppealPage>;

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
    appealable: z.boolean().meta({ description: "an appeal may be filed now" }),
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
  .meta({ id: "MyModerationItem" });

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
  .meta({ id: "MyModeration" });

export type Report = z.infer<typeof Report>;
export type QueueItem = z.infer<typeof QueueItem>;
export type QueueReport = z.infer<typeof QueueReport>;
export type ModerationAction = z.infer<typeof ModerationAction>;
export type Appeal = z.infer<typeof Appeal>;
export type AdminAppeal = z.infer<typeof AdminAppeal>;
export type MyModerationItem = z.infer<typeof MyModerationItem>;
export type MyModeration = z.infer<typeof MyModeration>;

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
    // Until its owed run weighs it (right after its answer): nothing yet, and the target as far as known.
    weight: r.weight ?? 0,
    assignedTo: r.assignedTo?.toHexString() ?? null,
    assignedAt: r.assignedAt?.toISOString() ?? null,
    reviewedAt: r.reviewedAt?.toISOString() ?? null,
    actionTaken: r.actionTaken,
    snapshot: r.snapshot ?? {
      text: null,
      imageUrl: null,
      authorId: r.targetUserId.toHexString(),
      username: "",
      postId: r.targetType === "post" ? r.targetId.toHexString() : null,
    },
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

export const QueueQuery = PageQuery.extend({ status: z.enum(REPORT_STATUSES).default("pending") });
export const AppealsQuery = PageQuery.extend({ status: z.enum(APPEAL_STATUSES).default("pending") });

export const HeldItem = z
  .object({
    targetType: z.enum(["post", "comment"]),
    targetId: z.string(),
    authorId: z.string(),
    username: z.string(),
    status: z.enum(["pending", "flagged"]),
    source: z
      .enum(["banned_words", "nsfw_score", "report_threshold"])
      .meta({ description: "Why it is held: screened at creation (banned words, NSFW score) or reports" }),
    heldAt: z.string(),
    text: z.string().meta({ description: "The prompt of a post, the text of a comment" }),
    imageUrl: z.string().nullable(),
    postId: z.string(),
    nsfwScore: z.number().nullable(),
  })
  .meta({ id: "HeldContent" });
export const HeldPage = pageOf(HeldItem, "HeldContentPage");
export type HeldItem = z.infer<typeof HeldItem>;
export type HeldPage = z.infer<typeof HeldPage>;
