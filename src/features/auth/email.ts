import { ApiError } from "../../core/errors";
import type { EmailTokenDoc } from "../../db";
import type { Deps } from "../../deps";
import { randomToken, sha256Hex } from "../../platform/crypto";
import { newObjectId, type ObjectId } from "../../platform/ids";

type Purpose = EmailTokenDoc["purpose"];

/**
 * A new single-use email token (the caller inserts `doc`; only its hash is stored). A token that confirms an
 * address names it, so it confirms that address only.
 */
export async function newEmailToken(
  deps: Deps,
  userId: ObjectId,
  purpose: Purpose,
  ttlMs: number,
  email?: string,
): Promise<{ token: string; doc: EmailTokenDoc }> {
  const token = randomToken(32);
  const now = deps.clock.now();
  return {
    token,
    doc: {
      _id: newObjectId(),
      userId,
      purpose,
      tokenHash: await sha256Hex(token),
      ...(email === undefined ? {} : { email }),
      createdAt: now,
      expiresAt: new Date(now.getTime() + ttlMs),
      usedAt: null,
    },
  };
}

export const invalidToken = () => ApiError.invalidField("token", "invalid, used or expired");

/** Consumes a token atomically: of two concurrent uses, exactly one gets the document (as it was before). */
export async function consumeEmailToken(deps: Deps, purposes: Purpose[], token: string): Promise<EmailTokenDoc> {
  const now = deps.clock.now();
  const doc = await deps.db.emailTokens.findOneAndUpdate(
    { tokenHash: await sha256Hex(token), purpose: { $in: purposes }, usedAt: null, expiresAt: { $gt: now } },
    { $set: { usedAt: now } },
  );
  if (!doc) throw invalidToken();
  return doc;
}

/**
 * Deletes a user's unused tokens of these purposes; with `olderThan`, only those issued before that token (so
 * of two concurrent re-issues at least the newer token survives).
 */
export async function dropEmailTokens(
  deps: Deps,
  userId: ObjectId,
  purposes: Purpose[],
  olderThan?: ObjectId,
): Promise<number> {
  return deps.db.emailTokens.deleteMany({
    userId,
    purpose: { $in: purposes },
    usedAt: null,
    ...(olderThan ? { _id: { $lt: olderThan } } : {}),
  });
}

/**
 * An address shown to its owner in a notice, or kept in the audit log, without spelling it out:
 * `a***@example.com` (the first character of the local part and the domain).
 */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at <= 0) return "***";
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}
