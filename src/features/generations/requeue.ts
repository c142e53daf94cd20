import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { Filter } from "../../platform/mongo/client";

const TIMEOUT_ERROR = "processing timed out (no completion from the worker)";

/**
 * Recovers jobs whose worker vanished: anything `processing` for longer than
 * GENERATION_PROCESSING_TIMEOUT_SECONDS goes back to the queue (worker cleared, so the late worker gets 409
 * if it ever reports), or becomes `failed` once it has used all its attempts. Works in batches of ids; every
 * update re-checks status and age, so a job completed or re-claimed in between is left alone, and running
 * the job twice (or after a crash) changes nothing the first run did not.
 */
export async function requeueStuckGenerations(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const { processingTimeoutSeconds, maxAttempts, requeueBatchJobs: batch } = deps.config.generation;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const now = deps.clock.now();
    const cutoff = new Date(now.getTime() - processingTimeoutSeconds * 1000);
    const stuck = await deps.db.generationJobs.find(
      { status: "processing", startedAt: { $lt: cutoff } },
      { sort: { startedAt: 1 }, limit: batch, projection: { _id: 1 } },
    );
    if (stuck.length === 0) return { more: false };
    const stillStuck: Filter = {
      _id: { $in: stuck.map((j) => j._id) },
      status: "processing",
      startedAt: { $lt: cutoff },
    };
    const [requeued, failed] = await Promise.all([
      deps.db.generationJobs.updateMany(
        { ...stillStuck, attempts: { $not: { $gte: maxAttempts } } },
        { $set: { status: "queued", workerId: null, startedAt: null, lastError: TIMEOUT_ERROR } },
      ),
      deps.db.generationJobs.updateMany(
        { ...stillStuck, attempts: { $gte: maxAttempts } },
        { $set: { status: "failed", lastError: TIMEOUT_ERROR, completedAt: now } },
      ),
    ]);
    ctx.count("requeued", requeued.modifiedCount);
    ctx.count("failed", failed.modifiedCount);
    await ctx.checkpoint("batch");
    if (stuck.length < batch) return { more: false };
  }
  return { more: true };
}

export const requeueJob: Job = {
  name: "generation-requeue",
  description: "Re-queues generation jobs stuck in processing past the timeout, or fails them when out of attempts.",
  run: requeueStuckGenerations,
};
