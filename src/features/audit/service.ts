import type { RequestMeta } from "../../core/viewer";
import type { AuditAction, AuditLogDoc } from "../../db";
import type { Deps } from "../../deps";
import { hashIp } from "../../platform/crypto";
import { newObjectId, type ObjectId } from "../../platform/ids";

export interface AuditInput {
  action: AuditAction;
  userId: ObjectId | null;
  /** Who did it; defaults to the user themselves. */
  actorId?: ObjectId | null;
  metadata?: Record<string, unknown>;
}

/** The keyed hash a request's IP is stored as (sessions, votes, referrals, audit entries). */
export function ipHash(deps: Deps, ip: string): Promise<string> {
  return hashIp(deps.config.http.ipHashSalt, ip);
}

/** An `audit_logs` entry for what a request (or a job, with no request) did. */
export async function auditEntry(deps: Deps, meta: RequestMeta | null, entry: AuditInput): Promise<AuditLogDoc> {
  const security = entry.action !== "data_exported";
  return {
    _id: newObjectId(),
    userId: entry.userId,
    actorId: entry.actorId === undefined ? entry.userId : entry.actorId,
    action: entry.action,
    timestamp: deps.clock.now(),
    ipHash: meta ? await ipHash(deps, meta.ip) : null,
    userAgent: meta?.userAgent?.slice(0, 256) ?? null,
    requestId: meta?.requestId ?? null,
    dataCategory: security ? "security_event" : "user_data",
    metadata: entry.metadata ?? {},
  };
}

export async function audit(deps: Deps, meta: RequestMeta | null, entry: AuditInput): Promise<void> {
  await deps.db.auditLogs.insertOne(await auditEntry(deps, meta, entry));
}
