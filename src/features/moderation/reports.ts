import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { Viewer } from "../../core/viewer";
import type { ModerationActionDoc, ReportDoc, ReportSnapshot, ReportStatus, TargetType } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { decodeCursor, encodeCursor } from "../../platform/mongo/paginate";
import { runOp, slidingWindow } from "../../platform/redis-ops";
import { DAY_MS } from "../../platform/time";
import { relationsFor } from "../relations/service";
import { setContentState } from "./effects";
import {
  type CreateReportBody,
  type QueuePage,
  type QueueReport,
  type Report,
  toQueueReport,
  toReport,
} from "./schema";
import { type Target, visibleTarget } from "./targets";
import { mayAutoHide, overThreshold, reportThreshold, reportWeight } from "./trust";

/** Open reports summed per target; a target with more is long past any threshold. */
const MAX_OPEN_REPORTS_READ = 1_000;

/** The per-reporter limit on filing reports: the sliding-window counter that enforces it, its limit and window. */
export function reportLimit(deps: Deps, userId: string): { key: string; limit: number; windowSeconds: number } {
  const m = deps.config.moderation;
  return { key: deps.keys.rateReport(userId), limit: m.reportsPerWindow, windowSeconds: m.reportWindowSeconds };
}

/**
 * Files a report. One open report per reporter and target is the unique partial index's rule, so concurrent
 * duplicates yield one 201 and 409s. The report carries its weight and a snapshot of the content; if the
 * target's open weight now reaches its threshold, the content is hidden (or the user queued) before answering.
 * With an Idempotency-Key the report stores it under a unique index and a retry gets the first report back
 * (looked up alongside the first reads, so the retry costs no extra wait and still works once the report has
 * hidden its target); the same key with another request is a 422.
 */
export async function createReport(
  deps: Deps,
  viewer: Viewer,
  body: CreateReportBody,
  request?: IdempotentRequest,
): Promise<Report> {
  const m = deps.config.moderation;
  const me = new ObjectId(viewer.id);
  const requestKey = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;
  const earlier = requestKey ? deps.db.reports.findOne({ "idempotency.key": requestKey.key }) : Promise.resolve(null);
  const reports = reportLimit(deps, viewer.id);
  const checks = Promise.all([
    runOp(deps.redis, slidingWindow(reports.key, reports.limit, reports.windowSeconds)),
    visibleTarget(deps, viewer, body.targetType, body.targetId),
    deps.db.users.findOne(
      { _id: me, deletedAt: null },
      { projection: { trustScore: 1, reportsActioned: 1, reportsDismissed: 1, shadowBanned: 1, createdAt: 1 } },
    ),
  ]);
  // A retry is settled before the checks' answers count: the target lookup 404s for content the first attempt hid.
  checks.catch(() => {});
  const first = await earlier;
  if (first) return replayReport(deps, first, requestKey?.fingerprint);
  const [decision, target, reporter] = await checks;
  if (!decision.allowed) throw ApiError.rateLimited(decision, "reports");
  if (!reporter) throw ApiError.notFound("Account not found.");
  if (target.userId.equals(me)) throw ApiError.forbidden("You cannot report yourself or your own content.");
  // A block ends spam reports between the two (no retaliation by report); abuse can still be reported.
  if (body.reason === "spam" && (await relationsFor(deps, viewer)).blockedWith(target.userId.toHexString())) {
    throw ApiError.notFound(`No such ${target.type}.`);
  }

  const now = deps.clock.now();
  const report: ReportDoc = {
    _id: newObjectId(),
    reporterId: me,
    targetType: target.type,
    targetId: target.id,
    targetUserId: target.userId,
    reason: body.reason,
    description: body.description || null,
    status: "pending",
    weight: reportWeight(
      {
        trustScore: reporter.trustScore,
        reportsActioned: reporter.reportsActioned,
        reportsDismissed: reporter.reportsDismissed,
        shadowBanned: reporter.shadowBanned,
        accountAgeDays: (now.getTime() - reporter.createdAt.getTime()) / DAY_MS,
      },
      m,
    ),
    snapshot: target.snapshot,
    assignedTo: null,
    assignedAt: null,
    reviewedBy: null,
    reviewedAt: null,
    actionTaken: null,
    moderationActionId: null,
    createdAt: now,
    ...(requestKey ? { idempotency: requestKey } : {}),
  };
  // The report and the target's report count in one write, so the count moves exactly when a report was filed.
  const written = await deps.db.batchUnique([
    deps.db.reports.inBatch.insertOne(report),
    deps.db.users.inBatch.updateOne({ _id: target.userId }, { $inc: { reportCount: 1 } }),
  ]);
  if (!written.applied) {
    const concurrent = requestKey ? await deps.db.reports.findOne({ "idempotency.key": requestKey.key }) : null;
    if (concurrent) return replayReport(deps, concurrent, requestKey?.fingerprint);
    throw ApiError.conflict("already_reported", "You already have an open report on this.");
  }
  await applyThreshold(deps, target);
  return toReport(report);
}

/**
 * The report an earlier attempt with this Idempotency-Key filed. Its threshold check runs again: the first
 * attempt's answer may have been lost before it ran, and the check changes nothing twice.
 */
async function replayReport(deps: Deps, first: ReportDoc, fingerprint: string | undefined): Promise<Report> {
  if (first.idempotency?.fingerprint !== fingerprint) throw idempotencyMismatch();
  await applyThreshold(deps, { type: first.targetType, id: first.targetId, userId: first.targetUserId });
  return toReport(first);
}

/**
 * The automatic rule: sums the target's open report weights against its threshold (lower for content of new
 * accounts) and, when reached, hides the post or comment (`flagged`) or queues the user. The state change is
 * conditional, so of several reports crossing at once only one records the `flag` action.
 */
async function applyThreshold(deps: Deps, target: Pick<Target, "type" | "id" | "userId">): Promise<void> {
  const [open, author] = await Promise.all([
    deps.db.reports.find(
      { targetId: target.id, targetType: target.type, status: "pending" },
      { projection: { weight: 1 }, limit: MAX_OPEN_REPORTS_READ },
    ),
    deps.db.users.findOne({ _id: target.userId }, { projection: { createdAt: 1 } }),
  ]);
  const sum = open.reduce((total, r) => total + (r.weight ?? 0), 0);
  const threshold = reportThreshold(author?.createdAt, deps.clock.now(), deps.config.moderation);
  if (!overThreshold(sum, threshold)) return;
  // Only new or distrusted reporters: no automatic hide, the reports wait in the moderator queue.
  const weights = open.map((r) => r.weight ?? 0);
  if (target.type !== "user" && !mayAutoHide(weights, deps.config.moderation.autoHideMinWeight)) return;

  let changed: boolean;
  if (target.type === "user") {
    const queued = await deps.db.users.updateOne(
      { _id: target.userId, moderationQueuedAt: null },
      { $set: { moderationQueuedAt: deps.clock.now() } },
    );
    changed = queued.modifiedCount > 0;
  } else {
    changed = await setContentState(deps, target.type, target.id, target.userId, "flagged", "auto", ["approved"]);
  }
  if (!changed) return;
  const action: ModerationActionDoc = {
    _id: newObjectId(),
    targetType: target.type,
    targetId: target.id,
    targetUserId: target.userId,
    action: "flag",
    reason: `Open reports weigh ${Math.round(sum * 100) / 100} (threshold ${threshold}).`,
    source: "report_threshold",
    performedBy: "system",
    appealable: false,
    appealId: null,
    reportIds: open.map((r) => r._id),
    expiresAt: null,
    trustDelta: 0,
    reversedAt: null,
    reversedBy: null,
    createdAt: deps.clock.now(),
  };
  await deps.db.moderationActions.insertOne(action);
}

interface QueueGroup {
  _id: ObjectId;
  targetType: TargetType;
  targetUserId: ObjectId;
  firstAt: Date;
  totalWeight: number;
  reportCount: number;
  snapshot: ReportSnapshot;
  reportIds: ObjectId[];
}

/**
 * The moderator queue: reports with a status, grouped by target (one item per target with its reports and
 * their total weight), targets whose first report is oldest first. Keyset cursor on (first report, target).
 */
export async function reportQueue(
  deps: Deps,
  query: { status: ReportStatus; limit: number; cursor?: string },
): Promise<QueuePage> {
  const pipeline: Record<string, unknown>[] = [
    { $match: { status: query.status } },
    { $sort: { createdAt: 1, _id: 1 } },
    {
      $group: {
        _id: "$targetId",
        targetType: { $first: "$targetType" },
        targetUserId: { $first: "$targetUserId" },
        firstAt: { $first: "$createdAt" },
        totalWeight: { $sum: "$weight" },
        reportCount: { $sum: 1 },
        snapshot: { $first: "$snapshot" },
        reportIds: { $push: "$_id" },
      },
    },
  ];
  if (query.cursor) {
    // Grouped in the pipeline, so the keyset filter applies to the groups (first report, target id).
    const after = decodeCursor(query.cursor, "date");
    pipeline.push({
      $match: {
        $or: [{ firstAt: { $gt: after.value } }, { firstAt: after.value, _id: { $gt: after.id } }],
      },
    });
  }
  pipeline.push({ $sort: { firstAt: 1, _id: 1 } }, { $limit: query.limit + 1 });
  const groups = (await deps.db.reports.aggregate(pipeline)) as unknown as QueueGroup[];
  const page = groups.slice(0, query.limit);
  const reports = page.length
    ? await deps.db.reports.find(
        { _id: { $in: page.flatMap((g) => g.reportIds) } },
        { sort: { createdAt: 1, _id: 1 }, limit: page.reduce((n, g) => n + g.reportIds.length, 0) },
      )
    : [];
  const byTarget = new Map<string, QueueReport[]>();
  for (const r of reports) {
    const key = r.targetId.toHexString();
    const group = byTarget.get(key);
    if (group) group.push(toQueueReport(r));
    else byTarget.set(key, [toQueueReport(r)]);
  }
  const items = page.map((g) => ({
    targetType: g.targetType,
    targetId: g._id.toHexString(),
    targetUserId: g.targetUserId.toHexString(),
    firstReportedAt: g.firstAt.toISOString(),
    reportCount: g.reportCount,
    totalWeight: Math.round(g.totalWeight * 100) / 100,
    snapshot: g.snapshot,
    reports: byTarget.get(g._id.toHexString()) ?? [],
  }));
  const last = page[page.length - 1];
  const nextCursor = groups.length > query.limit && last ? encodeCursor({ id: last._id, value: last.firstAt }) : null;
  return { items, nextCursor };
}

/** Assigns a report to the calling moderator (re-assigning is allowed: queues get handed over). */
export async function assignReport(deps: Deps, viewer: Viewer, reportId: string): Promise<QueueReport> {
  const updated = await deps.db.reports.findOneAndUpdate(
    { _id: new ObjectId(reportId) },
    { $set: { assignedTo: new ObjectId(viewer.id), assignedAt: deps.clock.now() } },
    { returnDocument: "after" },
  );
  if (!updated) throw ApiError.notFound("No such report.");
  return toQueueReport(updated);
}
