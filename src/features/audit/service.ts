import type { Deps } from "../../deps";
import { hmacSha256Hex } from "../../platform/crypto";
import { newObjectId, type ObjectId } from "../../platform/ids";

export type AuditAction =
  | "signup"
  | "login"
  | "login_failed"
  | "logout"
  | "token_reuse_detected"
  | "session_revoked"
  | "password_changed"
  | "password_reset_requested"
  | "password_reset"
  | "email_verified"
  | "oauth_linked"
  | "account_deleted"
  | "account_erased"
  | "role_changed"
  | "data_exported"
  | "moderation_action"
  | "appeal_decided";

/** `audit_logs` (seed 002's shape): who did what to whom, from where, in which request. */
export interface AuditLogDoc {
  _id: ObjectId;
  userId: ObjectId | null;
  actorId: ObjectId | null;
  action: AuditAction;
  timestamp: Date;
  ipHash: string | null;
  userAgent: string | null;
  requestId: string | null;
  dataCategory: "security_event" | "user_data" | "system_event";
  metadata: Record<string, unknown>;
}

/** Where a request came from, for audit entries and session records (the IP is stored only as a keyed hash). */
export interface RequestMeta {
  ip: string;
  userAgent: string | null;
  requestId: string | null;
}

export interface AuditInput {
  action: AuditAction;
  userId: ObjectId | null;
  /** Who did it; defaults to the user themselves. */
  actorId?: ObjectId | null;
  metadata?: Record<string, unknown>;
}

export async function ipHash(deps: Deps, ip: string): Promise<string> {
  return (await hmacSha256Hex(deps.config.http.ipHashSalt, ip)).slice(0, 32);
}

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
