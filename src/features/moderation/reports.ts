import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { Viewer } from "../../core/viewer";
import type { ModerationActionDoc, ReportDoc, ReportSnapshot, ReportStatus, RequestKey, TargetType } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, PreconditionFailedError } from "../../platform/mongo/client";
import { decodeCursor, encodeCursor } from "../../platform/mongo/paginate";
import { runOp, slidingWindow } from "../../platform/redis-ops";
import { DAY_MS } from "../../platform/time";
import { defineOwed, incrementsOn, owe, settleOwed } from "../owed/effects";
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
import { anyTarget, cachedReportTarget, type ReportTarget, readReportTarget, type Target } from "./targets";
import { mayAutoHide, overThreshold, reportThreshold, reportWeight } from "./trust";

/** Open reports summed per target; a target with more is long past any threshold. */
const MAX_OPEN_REPORTS_READ = 1_000;

/** The per-reporter limit on filing reports: the sliding-window counter that enforces it, its limit and window. */
export function reportLimit(deps: Deps, userId: string): { key: string; limit: number; windowSeconds: number } {
  const m = deps.config.moderation;
  return { key: deps.keys.rateReport(userId), limit: m.reportsPerWindow, windowSeconds: m.reportWindowSeconds };
}

/**
 * What a filed report owes after its answer: its weight (the reporter's trust, accuracy and age when they filed
 * it, from their account) and, when the request did not know the content, its snapshot — set with the target
 * user's `reportCount`, once — and then the automatic threshold rule (`applyThreshold`, repeatable: its change
 * is conditional). A snapshot taken here is the content as it is right after the answer (or, if the request's
 * isolate died, when the sweep runs).
 */
const reportFiled = defineOwed<{
  reportId: ObjectId;
  reporterId: ObjectId;
  targetType: TargetType;
  targetId: ObjectId;
  targetUserId: ObjectId;
}>(
  "report.filed",
  async (deps, filed) => {
    const [report, reporter] = await Promise.all([
      deps.db.reports.findOne({ _id: filed.reportId }, { projection: { snapshot: 1, createdAt: 1 } }),
      deps.db.users.findOne(
        { _id: filed.reporterId },
        { projection: { trustScore: 1, reportsActioned: 1, reportsDismissed: 1, shadowBanned: 1, createdAt: 1 } },
      ),
    ]);
    if (!report) return undefined;
    const snapshot = report.snapshot ?? (await snapshotNow(deps, filed));
    const weight = reporter
      ? reportWeight(
          {
            trustScore: reporter.trustScore,
            reportsActioned: reporter.reportsActioned,
            reportsDismissed: reporter.reportsDismissed,
            shadowBanned: reporter.shadowBanned,
            accountAgeDays: (report.createdAt.getTime() - reporter.createdAt.getTime()) / DAY_MS,
          },
          deps.config.moderation,
        )
      : 0;
    return {
      commit: [
        deps.db.reports.inBatch.updateOne({ _id: filed.reportId }, { $set: { weight, snapshot } }),
        ...incrementsOn(deps, "users", [{ id: filed.targetUserId, inc: { reportCount: 1 } }]),
      ],
      after: () => applyThreshold(deps, { type: filed.targetType, id: filed.targetId, userId: filed.targetUserId }),
    };
  },
  (filed) => [filed.reporterId, filed.targetUserId],
);

/** The target's content now, as a moderator sees it (deleted content included); a bare one if it is gone. */
async function snapshotNow(
  deps: Deps,
  filed: { targetType: TargetType; targetId: ObjectId; targetUserId: ObjectId },
): Promise<ReportSnapshot> {
  try {
    return (await anyTarget(deps, filed.targetType, filed.targetId.toHexString())).snapshot;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    return { text: null, imageUrl: null, authorId: filed.targetUserId.toHexString(), username: "", postId: null };
  }
}

/**
 * Files a report, waiting on one Data API call. One open report per reporter and target is the unique partial
 * index's rule, so concurrent duplicates yield one 201 and 409s. The target comes from what Redis already has
 * where it can (a post's cached copy or facts, a comment's facts; a user needs nothing), and the report's
 * transaction starts with guards that it is still there and reportable, so a stale cache files nothing wrong;
 * when the caches cannot tell, the target is read first. What the report owes — its weight, its snapshot when
 * the request did not have it, the target's report count and the threshold rule that may hide the content —
 * is recorded with it and carried out right after the answer (`report.filed`).
 *
 * With an Idempotency-Key the report stores it under a unique index and a retry gets the first report back,
 * with what it owed carried out, also once its target is hidden or over the rate limit; the same key with
 * another request is a 422.
 *
 * Waits: Redis — the rate limit, then the reporter's limit ∥ the target's caches; MongoDB — the transaction
 * (plus a read when the caches could not tell).
 */
export async function createReport(
  deps: Deps,
  viewer: Viewer,
  body: CreateReportBody,
  request?: IdempotentRequest,
): Promise<Report> {
  const requestKey = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;
  // A retry is answered with its first report whatever refused it since (a limit, content its report hid).
  const orFirst = async (error: unknown): Promise<Report> => {
    const first = requestKey ? await deps.db.reports.findOne({ "idempotency.key": requestKey.key }) : null;
    if (first) return replayReport(deps, first, requestKey?.fingerprint);
    throw error;
  };
  const limit = reportLimit(deps, viewer.id);
  const [decision, cached] = await Promise.all([
    runOp(deps.redis, slidingWindow(limit.key, limit.limit, limit.windowSeconds)),
    cachedReportTarget(deps, viewer, body.targetType, body.targetId),
  ]);
  if (!decision.allowed) return orFirst(ApiError.rateLimited(decision, "reports"));
  try {
    const filed = cached ? await fileOn(deps, viewer, body, cached, requestKey) : null;
    if (filed) return filed;
    const read = await readReportTarget(deps, viewer, body.targetType, body.targetId);
    return (await fileOn(deps, viewer, body, read, requestKey)) ?? Promise.reject(noSuch(body.targetType));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return orFirst(error);
    throw error;
  }
}

const noSuch = (type: TargetType) => ApiError.notFound(`No such ${type}.`);

/**
 * The report's one transaction on a found target: its guards, the report, what it owes. Null when a guard of a
 * target found from caches failed (the caller reads it then); a guard of one read from MongoDB failing is a 404.
 */
async function fileOn(
  deps: Deps,
  viewer: Viewer,
  body: CreateReportBody,
  target: ReportTarget,
  requestKey: RequestKey | undefined,
): Promise<Report | null> {
  const me = new ObjectId(viewer.id);
  if (target.userId.equals(me)) throw ApiError.forbidden("You cannot report yourself or your own content.");
  // A block ends spam reports between the two (no retaliation by report); abuse can still be reported.
  if (body.reason === "spam" && (await relationsFor(deps, viewer)).blockedWith(target.userId.toHexString())) {
    throw noSuch(target.type);
  }
  const report: ReportDoc = {
    _id: newObjectId(),
    reporterId: me,
    targetType: target.type,
    targetId: target.id,
    targetUserId: target.userId,
    reason: body.reason,
    description: body.description || null,
    status: "pending",
    weight: null,
    snapshot: target.snapshot,
    assignedTo: null,
    assignedAt: null,
    reviewedBy: null,
    reviewedAt: null,
    actionTaken: null,
    moderationActionId: null,
    createdAt: deps.clock.now(),
    ...(requestKey ? { idempotency: requestKey } : {}),
  };
  const owed = owe(
    deps,
    [
      reportFiled({
        reportId: report._id,
        reporterId: me,
        targetType: target.type,
        targetId: target.id,
        targetUserId: target.userId,
      }),
    ],
    // A retry whose first answer was lost finds the record by the report it made.
    { id: report._id },
  );
  try {
    await deps.db.batch([...target.guards, deps.db.reports.inBatch.insertOne(report), owed.step], {
      transaction: true,
    });
  } catch (error) {
    if (error instanceof PreconditionFailedError && (error.failedIndex ?? 0) < target.guards.length) {
      if (target.cached) return null;
      throw noSuch(target.type);
    }
    if (error instanceof DuplicateKeyError) {
      const concurrent = requestKey ? await deps.db.reports.findOne({ "idempotency.key": requestKey.key }) : null;
      if (concurrent) return replayReport(deps, concurrent, requestKey?.fingerprint);
      throw ApiError.conflict("already_reported", "You already have an open report on this.");
    }
    throw error;
  }
  owed.committed();
  return toReport(report);
}

/**
 * The report an earlier attempt with this Idempotency-Key filed. What it owed is carried out now (its answer
 * may have been lost before that ran; a record already done changes nothing).
 */
async function replayReport(deps: Deps, first: ReportDoc, fingerprint: string | undefined): Promise<Report> {
  if (first.idempotency?.fingerprint !== fingerprint) throw idempotencyMismatch();
  await settleOwed(deps, first._id);
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
    // A report is listed once weighed (its owed run, right after its answer).
    { $match: { status: query.status, weight: { $ne: null } } },
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
