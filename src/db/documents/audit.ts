import type { ObjectId } from "../../platform/ids";

export const AUDIT_ACTIONS = [
  "signup",
  "login",
  "login_failed",
  "logout",
  "token_reuse_detected",
  "session_revoked",
  "password_changed",
  "password_check_failed",
  "password_reset_requested",
  "password_reset",
  "email_verified",
  "email_change_requested",
  "email_changed",
  "oauth_linked",
  "oauth_unlinked",
  "account_deleted",
  "account_erased",
  "role_changed",
  "tier_changed",
  "data_exported",
  "moderation_action",
  "appeal_decided",
  "subscription_changed",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

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
