import type { EmailOutboxDoc, EmailTemplate } from "../../db";
import type { Deps } from "../../deps";
import { afterResponse } from "../../platform/background";
import { newObjectId, type ObjectId } from "../../platform/ids";
import { deliverEmails } from "./delivery";

/** A mail to send: `data` holds what the template shows (never a password or a hash). */
export interface MailRequest {
  userId: ObjectId;
  to: string;
  template: EmailTemplate;
  data: Record<string, string>;
}

/** The outbox record of a new message: pending, first left to the immediate send, then to the sweep. */
export function outboxMessage(deps: Deps, message: MailRequest): EmailOutboxDoc {
  const now = deps.clock.now();
  return {
    _id: newObjectId(),
    ...message,
    createdAt: now,
    status: "pending",
    attempts: 0,
    nextAttemptAt: new Date(now.getTime() + deps.config.mail.sweepGraceSeconds * 1000),
    providerId: null,
    lastError: null,
    sentAt: null,
    failedAt: null,
    expireAt: null,
  };
}

/**
 * Records mails in `email_outbox` (one write, whatever the number) and sends them right after the response.
 * Once this resolves the mails are owed durably: if the isolate dies before the send, the `email-delivery`
 * sweep sends them; a send that happened but was not recorded is not repeated (Resend's Idempotency-Key).
 */
export async function queueEmails(deps: Deps, messages: MailRequest[]): Promise<void> {
  const docs = messages.filter((m) => m.to !== "").map((m) => outboxMessage(deps, m));
  const [first] = docs;
  if (!first) return;
  if (docs.length === 1) await deps.db.emailOutbox.insertOne(first);
  else await deps.db.emailOutbox.insertMany(docs);
  afterResponse(() => deliverEmails(deps, docs));
}

/**
 * Sends mails whose outbox records the caller wrote itself (with `outboxMessage`, in its own batch) right after
 * the response, as `queueEmails` does once it has written them.
 */
export function sendAfterResponse(deps: Deps, docs: EmailOutboxDoc[]): void {
  const owed = docs.filter((d) => d.to !== "");
  if (owed.length) afterResponse(() => deliverEmails(deps, owed));
}
