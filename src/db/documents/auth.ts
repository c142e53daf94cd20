import type { ObjectId } from "../../platform/ids";

/** `sessions` (seeds 001/004): one per signed-in device; refresh tokens stored only as SHA-256 hashes. */
export interface SessionDoc {
  _id: ObjectId;
  userId: ObjectId;
  refreshTokenHash: string;
  /** Hashes of tokens already rotated away; presenting one again means the token was stolen. */
  previousTokenHashes: string[];
  deviceId: string | null;
  platform: string | null;
  ipHash: string;
  userAgent: string | null;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
}

/**
 * `email_tokens`: single-use verification, password-reset and email-change tokens, stored hashed. A token that
 * confirms an address (verification, email change) names it in `email`, so it cannot confirm another one.
 */
export interface EmailTokenDoc {
  _id: ObjectId;
  userId: ObjectId;
  purpose: "email_verification" | "password_reset" | "email_change";
  tokenHash: string;
  /** The address this token confirms (absent on reset tokens and on verification tokens made before it existed). */
  email?: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

export const EMAIL_TEMPLATES = [
  /** `{ token, username }` to the account's address. */
  "verify_email",
  /** `{ token, username }` to the account's address. */
  "password_reset",
  /** `{ username, changedAt }` to the account's address: the password was changed while signed in. */
  "password_changed",
  /** `{ token, username, expiresAt }` to the NEW address of a requested email change. */
  "verify_email_change",
  /** `{ username, newEmailMasked, expiresAt }` to the OLD address: a change was requested (no token). */
  "email_change_requested",
  /** `{ username, newEmailMasked, changedAt }` to the OLD address: the change was confirmed. */
  "email_changed",
] as const;
export type EmailTemplate = (typeof EMAIL_TEMPLATES)[number];

/** `email_outbox`: messages for the mail sender to deliver (deleted once sent; 1-day TTL). */
export interface EmailOutboxDoc {
  _id: ObjectId;
  userId: ObjectId;
  to: string;
  template: EmailTemplate;
  data: Record<string, string>;
  createdAt: Date;
  sentAt: Date | null;
}
