import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { DeliveryError, EmailOutboxDoc } from "../../db";
import type { Deps } from "../../deps";
import { mapWithLimit } from "../../platform/background";
import type { BulkOperation, Update } from "../../platform/mongo/client";
import { type EmailSendOutcome, type ResendSettings, sendEmail } from "../../platform/resend";
import { DAY_MS } from "../../platform/time";
import { renderMail, TemplateDataError } from "./templates";

/**
 * Delivers `email_outbox` messages through Resend. Each message is sent with the Idempotency-Key
 * `circle-email-{id}` and a body rendered deterministically from the record, so a send whose outcome was never
 * recorded (the isolate died between "sent" and "marked") is answered by Resend with the first send's id when
 * it is tried again, and no second mail goes out. Resend keeps keys for 24 hours; the retry schedule ends well
 * inside that (checked when the config loads).
 *
 * Per batch: one Resend call per message (at most SENDS_IN_FLIGHT at once) and one MongoDB bulk write recording
 * every outcome: `sent` (link token dropped), a retry later with backoff, or `failed` with the provider's error.
 */

const SENDS_IN_FLIGHT = 10;

export interface EmailDeliveryCounts {
  sent: number;
  retried: number;
  failed: number;
}

type Outcome = EmailSendOutcome | { kind: "template_error"; message: string };

export const emailIdempotencyKey = (id: EmailOutboxDoc["_id"]) => `circle-email-${id.toHexString()}`;

function resendSettings(deps: Deps): ResendSettings | null {
  const { resendApiKey, resendApiUrl } = deps.config.mail;
  if (!resendApiKey) return null;
  return { baseUrl: resendApiUrl, apiKey: resendApiKey, timeoutMs: deps.config.providerTimeoutMs };
}

/** The immediate attempt after a request: never throws (a failure is logged; the sweep tries again). */
export async function deliverEmails(deps: Deps, docs: EmailOutboxDoc[]): Promise<void> {
  try {
    await sendAndRecord(deps, docs);
  } catch (error) {
    deps.log.warn("email delivery deferred to the sweep", { messages: docs.length, error: String(error) });
  }
}

/** Sends `docs` and records the outcomes; `checkpoint` runs between the two (a crash there is a test seam). */
export async function sendAndRecord(
  deps: Deps,
  docs: EmailOutboxDoc[],
  checkpoint: (name: string) => Promise<void> = async () => {},
): Promise<EmailDeliveryCounts> {
  const counts: EmailDeliveryCounts = { sent: 0, retried: 0, failed: 0 };
  const settings = resendSettings(deps);
  if (!settings || docs.length === 0) return counts;
  const outcomes = await mapWithLimit(docs, SENDS_IN_FLIGHT, (doc) => send(deps, settings, doc));
  await checkpoint("email-sent");
  const now = deps.clock.now();
  const ops = docs.map((doc, i): BulkOperation<EmailOutboxDoc> => {
    const { update, counted } = outcomeUpdate(deps, doc, outcomes[i] as Outcome, now);
    counts[counted] += 1;
    return { updateOne: { filter: { _id: doc._id, status: "pending" }, update } };
  });
  await deps.db.emailOutbox.bulkWrite(ops, { ordered: false });
  for (const [i, doc] of docs.entries()) {
    const outcome = outcomes[i] as Outcome;
    if (outcome.kind === "rejected" || outcome.kind === "template_error") {
      deps.log.error("email refused", { messageId: doc._id.toHexString(), template: doc.template, outcome });
    }
  }
  return counts;
}

async function send(deps: Deps, settings: ResendSettings, doc: EmailOutboxDoc): Promise<Outcome> {
  let mail: ReturnType<typeof renderMail>;
  try {
    mail = renderMail(doc.template, doc.data, {
      appBaseUrl: deps.config.links.appBaseUrl,
      passwordResetTtlMinutes: deps.config.auth.passwordResetTtlMinutes,
      emailVerificationTtlHours: deps.config.auth.emailVerificationTtlHours,
    });
  } catch (error) {
    if (error instanceof TemplateDataError) return { kind: "template_error", message: error.message };
    throw error;
  }
  return sendEmail(settings, {
    from: deps.config.mail.from,
    to: doc.to,
    ...mail,
    tags: [
      { name: "template", value: doc.template },
      { name: "message_id", value: doc._id.toHexString() },
    ],
    idempotencyKey: emailIdempotencyKey(doc._id),
  });
}

/** Delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped, or the provider's Retry-After if longer. */
export function retryDelaySeconds(
  mail: { retryBaseSeconds: number; retryMaxSeconds: number },
  attempts: number,
  retryAfterSeconds: number | null,
): number {
  const backoff = Math.min(mail.retryBaseSeconds * 2 ** Math.max(0, attempts - 1), mail.retryMaxSeconds);
  return Math.max(backoff, Math.min(retryAfterSeconds ?? 0, mail.retryMaxSeconds));
}

function outcomeUpdate(
  deps: Deps,
  doc: EmailOutboxDoc,
  outcome: Outcome,
  now: Date,
): { update: Update; counted: keyof EmailDeliveryCounts } {
  const { mail } = deps.config;
  const attempts = (doc.attempts ?? 0) + 1;
  // A settled message keeps what helps debugging (address, template, outcome), never the link it carried.
  const settled = { nextAttemptAt: null, expireAt: new Date(now.getTime() + mail.retentionDays * DAY_MS) };
  const forgetToken = { "data.token": "" };
  const error = (e: { status: number; name: string; message: string }): DeliveryError => ({ ...e, at: now });
  switch (outcome.kind) {
    case "sent":
    case "already_sent":
      return {
        counted: "sent",
        update: {
          $set: { status: "sent", sentAt: now, providerId: outcome.kind === "sent" ? outcome.id : null, ...settled },
          $inc: { attempts: 1 },
          $unset: forgetToken,
        },
      };
    case "retry":
      if (attempts < mail.maxAttempts) {
        const delay = retryDelaySeconds(mail, attempts, outcome.retryAfterSeconds);
        return {
          counted: "retried",
          update: {
            $set: { nextAttemptAt: new Date(now.getTime() + delay * 1000), lastError: error(outcome.error) },
            $inc: { attempts: 1 },
          },
        };
      }
      return failed(error(outcome.error));
    case "rejected":
      return failed(error(outcome.error));
    case "template_error":
      return failed(error({ status: 0, name: "template_error", message: outcome.message }));
  }
  function failed(lastError: DeliveryError): { update: Update; counted: "failed" } {
    return {
      counted: "failed",
      update: {
        $set: { status: "failed", failedAt: now, lastError, ...settled },
        $inc: { attempts: 1 },
        $unset: forgetToken,
      },
    };
  }
}

/**
 * The `email-delivery` sweep: pending messages whose next attempt is due (the immediate attempt failed or never
 * ran), oldest first, in batches, within the run's time budget. A crash anywhere leaves them pending; the next
 * run sends them again under the same Idempotency-Key, so nobody gets a mail twice.
 */
export async function sweepEmails(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  if (!resendSettings(deps)) {
    ctx.count("disabled");
    return { more: false };
  }
  const batch = deps.config.mail.sweepBatchMessages;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const due = await deps.db.emailOutbox.find(
      { status: "pending", nextAttemptAt: { $lte: deps.clock.now() } },
      { sort: { nextAttemptAt: 1 }, limit: batch },
    );
    if (due.length === 0) return { more: false };
    const counts = await sendAndRecord(deps, due, ctx.checkpoint);
    for (const [name, n] of Object.entries(counts)) ctx.count(name, n);
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

export const emailDeliveryJob: Job = {
  name: "email-delivery",
  description: "Sends outbox mail the immediate attempt missed or could not send, with backoff, until sent or failed.",
  run: sweepEmails,
};
