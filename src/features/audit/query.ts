import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { AuditAction, AuditLogDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import type { AuditEntry, AuditPage, AuditQuery } from "./schema";

/** What moderators may read; admins read every entry (sign-ins, role changes, erasures, ...). */
export const MODERATION_AUDIT_ACTIONS: AuditAction[] = ["moderation_action", "appeal_decided"];

/**
 * `audit_logs` newest first, filterable, keyset-paginated on `_id`. Entries go out without the IP hash and
 * user agent; no entry holds an email, a token or a password hash.
 */
export async function listAudit(deps: Deps, viewer: Viewer, query: AuditQuery): Promise<AuditPage> {
  const filter: Record<string, unknown> = {};
  if (viewer.role !== "admin") {
    if (query.action && !MODERATION_AUDIT_ACTIONS.includes(query.action)) {
      throw ApiError.forbidden("Moderators may read moderation entries only.");
    }
    filter.action = query.action ?? { $in: MODERATION_AUDIT_ACTIONS };
  } else if (query.action) {
    filter.action = query.action;
  }
  if (query.actorId) filter.actorId = new ObjectId(query.actorId);
  if (query.userId) filter.userId = new ObjectId(query.userId);
  const range: Record<string, Date> = {};
  if (query.from) range.$gte = new Date(query.from);
  if (query.to) range.$lt = new Date(query.to);
  if (range.$gte && range.$lt && range.$gte.getTime() > range.$lt.getTime()) {
    throw ApiError.invalidField("to", "must not be before from");
  }
  if (Object.keys(range).length > 0) filter.timestamp = range;
  const page = await paginate(deps.db.auditLogs, {
    filter,
    order: { direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  return { items: page.items.map(toAuditEntry), nextCursor: page.nextCursor };
}

function toAuditEntry(d: AuditLogDoc): AuditEntry {
  return {
    id: d._id.toHexString(),
    action: d.action,
    userId: d.userId?.toHexString() ?? null,
    actorId: d.actorId?.toHexString() ?? null,
    timestamp: d.timestamp.toISOString(),
    requestId: d.requestId,
    dataCategory: d.dataCategory,
    metadata: d.metadata ?? {},
  };
}
