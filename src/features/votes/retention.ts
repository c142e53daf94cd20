import type { Job, JobContext, JobReport } from "../../core/jobs";
import { addDays } from "../../platform/time";

/** A vote that still carries a fraud signal. */
const HAS_SIGNALS = { $or: [{ ipHash: { $ne: null } }, { deviceId: { $ne: null } }, { sessionId: { $ne: null } }] };

/**
 * Votes are permanent (one per post and user, forever), but what they say about where they came from is kept
 * only as long as fraud scoring needs it: after VOTE_SIGNAL_RETENTION_DAYS the IP hash, device id and session
 * id are dropped, the vote stays. Batches of ids in `_id` order; each update re-checks age, so re-runs and
 * crashes change nothing twice.
 */
export async function dropExpiredVoteSignals(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const { signalRetentionDays, signalRetentionBatchVotes: batch } = deps.config.votes;
  const before = addDays(deps.clock.now(), -signalRetentionDays);
  while (ctx.timeLeft() > 2_000) {
    const due = await deps.db.votes.find(
      { createdAt: { $lt: before }, ...HAS_SIGNALS },
      { sort: { createdAt: 1 }, limit: batch, projection: { _id: 1 } },
    );
    if (due.length === 0) return { more: false };
    const cleared = await deps.db.votes.updateMany(
      { _id: { $in: due.map((v) => v._id) }, createdAt: { $lt: before } },
      { $set: { ipHash: null, deviceId: null, sessionId: null } },
    );
    ctx.count("votes", cleared.modifiedCount);
    await ctx.checkpoint("batch");
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

export const voteSignalRetentionJob: Job = {
  name: "vote-signal-retention",
  description: "Drops the fraud signals (IP hash, device, session) of votes older than the retention period.",
  run: dropExpiredVoteSignals,
};
