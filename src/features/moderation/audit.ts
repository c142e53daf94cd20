import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { ApiError } from "../../http/errors";
import { decodeCursor, encodeCursor } from "../../http/pagination";
import { ObjectId } from "../../platform/ids";
import type { AuditAction } from "../audit/service";
import type { AuditEntry } from "./schema";

/** What moderators may read; admins read every entry (sign-ins, role changes, erasures, ...). */
export const MODERATION_AUDIT_ACTIONS: AuditAction[] = ["moderation_action", "appeal_decided"];

export interface AuditQuery {
  action?: AuditAction;
  actorId?: string;
  userId?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

/**
 * `audit_logs` newest first, filterable, keyset-paginated on `_id`. Entries go out without the IP hash and
 * user agent; no entry holds an email, a token or a password hash.
 */
export async function listAudit(
  deps: Deps,
  viewer: Viewer,
  query: AuditQuery,
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
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
    throw ApiError.validation([{ path: "to", message: "must not be before from" }]);
  }
  if (Object.keys(range).length > 0) filter.timestamp = range;
  if (query.cursor) filter._id = { $lt: new ObjectId(decodeCursor(query.cursor).id) };
  const docs = await deps.db.auditLogs.find(filter, { sort: { _id: -1 }, limit: query.limit + 1 });
  const page = docs.slice(0, query.limit);
  const items = page.map((d) => ({
    id: d._id.toHexString(),
    action: d.action,
    userId: d.userId?.toHexString() ?? null,
    actorId: d.actorId?.toHexString() ?? null,
    timestamp: d.timestamp.toISOString(),
    requestId: d.requestId,
    dataCategory: d.dataCategory,
    metadata: d.metadata ?? {},
  }));
  const last = page[page.length - 1];
  return { items, nextCursor: docs.length > query.limit && last ? encodeCursor({ id: last._id.toHexString() }) : null };
}
