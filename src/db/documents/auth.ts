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
  /** `{ username, platform, signedInAt }`: a sign-in from a device the account had not used. */
  "new_sign_in",
] as const;
export type EmailTemplate = (typeof EMAIL_TEMPLATES)[number];

export const EMAIL_STATUSES = ["pending", "sent", "failed"] as const;
export type EmailStatus = (typeof EMAIL_STATUSES)[number];

/** A provider's refusal as kept on the message: HTTP status (0: unreachable), its error name and message. */
export interface DeliveryError {
  status: number;
  name: string;
  message: string;
  at: Date;
}

/**
 * `email_outbox`: every message the API mails, written in the same step as what it is about, then delivered
 * (features/mail). `pending` until sent or `failed` after EMAIL_MAX_ATTEMPTS; the sweep takes pending messages
 * whose `nextAttemptAt` has passed. Sent and failed messages keep no link token and expire at `expireAt`.
 */
export interface EmailOutboxDoc {
  _id: ObjectId;
  userId: ObjectId;
  to: string;
  template: EmailTemplate;
  data: Record<string, string>;
  createdAt: Date;
  status: EmailStatus;
  /** Sends tried so far. */
  attempts: number;
  /** While pending: when the sweep may try (next). */
  nextAttemptAt: Date | null;
  /** The provider's id for the sent mail. */
  providerId: string | null;
  lastError: DeliveryError | null;
  sentAt: Date | null;
  failedAt: Date | null;
  /** TTL: set once the message is sent or failed (EMAIL_OUTBOX_RETENTION_DAYS). */
  expireAt: Date | null;
}
