import type { Job, JobContext, JobReport } from "../../core/jobs";

/**
 * `message-purge`: deletes disappearing messages whose every copy has expired (`purgeAt`, set once the sender's
 * and each recipient's expiry are known; see db/documents/messaging.ts), in batches of MESSAGE_PURGE_BATCH under
 * the run's time budget. Reads never return an expired copy anyway (the filter is applied per reader at query
 * time), so a late run only delays deletion, never shows anything. What a message references goes with it: its
 * text and media live in the message itself (an image is a copy of the sender's generation, which stays theirs;
 * uploads, when they come, are deleted with their message). Each delete re-checks `purgeAt`, so re-runs and
 * overlapping runs delete nothing twice and nothing early.
 */
export async function purgeExpiredMessages(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const batch = deps.config.messaging.purgeBatchMessages;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const now = deps.clock.now();
    const due = await deps.db.messages.find(
      { purgeAt: { $lte: now } },
      { sort: { purgeAt: 1 }, limit: batch, projection: { _id: 1 } },
    );
    if (due.length === 0) return { more: false };
    const deleted = await deps.db.messages.deleteMany({ _id: { $in: due.map((m) => m._id) }, purgeAt: { $lte: now } });
    ctx.count("purged", deleted);
    await ctx.checkpoint("batch");
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

export const messagePurgeJob: Job = {
  name: "message-purge",
  description: "Deletes disappearing messages once every copy (sender's and each recipient's) has expired.",
  run: purgeExpiredMessages,
};
