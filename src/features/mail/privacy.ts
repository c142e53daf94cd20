import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";

/**
 * GDPR hooks for mail (wired by the privacy feature). What `email_outbox` holds about a person: the mails
 * sent to them (address, template, delivery state). Link tokens are never exported.
 */

const PAGE = 500;

/** The caller's mails, newest first, a page at a time (no message data: it may hold a live link token). */
export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const owner = new ObjectId(userId);
  const cap = deps.config.privacy.exportItemsPerSection;
  let before: ObjectId | null = null;
  for (let exported = 0; exported < cap; ) {
    const docs = await deps.db.emailOutbox.find(
      { userId: owner, ...(before ? { _id: { $lt: before } } : {}) },
      {
        sort: { _id: -1 },
        limit: Math.min(PAGE, cap - exported),
        projection: { data: 0 },
      },
    );
    if (docs.length === 0) return;
    exported += docs.length;
    before = docs[docs.length - 1]?._id ?? null;
    yield {
      section: "emails",
      items: docs.map((d) => ({
        id: d._id.toHexString(),
        to: d.to,
        template: d.template,
        status: d.status ?? (d.sentAt ? "sent" : "pending"),
        attempts: d.attempts ?? 0,
        createdAt: d.createdAt.toISOString(),
        sentAt: d.sentAt?.toISOString() ?? null,
        failedAt: d.failedAt?.toISOString() ?? null,
      })),
    };
    if (docs.length < PAGE) return;
  }
}

/** Removes every mail record of the user (idempotent: a second run deletes nothing). */
export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  await deps.db.emailOutbox.deleteMany({ userId: new ObjectId(userId) });
}
