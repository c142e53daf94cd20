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

/** `email_tokens`: single-use verification and password-reset tokens, stored hashed. */
export interface EmailTokenDoc {
  _id: ObjectId;
  userId: ObjectId;
  purpose: "email_verification" | "password_reset";
  tokenHash: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

/** `email_outbox`: messages for the mail sender to deliver (deleted once sent; 1-day TTL). */
export interface EmailOutboxDoc {
  _id: ObjectId;
  userId: ObjectId;
  to: string;
  template: "verify_email" | "password_reset";
  data: Record<string, string>;
  createdAt: Date;
  sentAt: Date | null;
}
