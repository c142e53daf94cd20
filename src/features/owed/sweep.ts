import type { Job, JobContext, JobReport } from "../../core/jobs";
import { mapWithLimit } from "../../platform/background";
import { OPEN, settleOwed } from "./effects";

/** Records carried out at once per batch (each is a few store calls of its own). */
const RUNS_IN_FLIGHT = 10;

/**
 * Carries out owed records their request did not finish: pending past OWED_EFFECTS_SWEEP_GRACE_SECONDS (the
 * isolate died before its after-response run, or that run failed and its backoff is over), or claimed by a
 * run that stopped answering for OWED_EFFECTS_CLAIM_SECONDS. Each record is taken with a guarded update, so a
 * sweep racing a request's own run (or another sweep) carries it out once; see `settleOwed`.
 */
export async function sweepOwed(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const batch = deps.config.owed.sweepBatch;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const due = await deps.db.owedEffects.find(
      { state: { $in: OPEN }, dueAt: { $lte: deps.clock.now() } },
      { sort: { dueAt: 1 }, limit: batch, projection: { _id: 1, effects: 1 } },
    );
    if (due.length === 0) return { more: false };
    const outcomes = await mapWithLimit(due, RUNS_IN_FLIGHT, (record) => settleOwed(deps, record._id));
    outcomes.forEach((outcome, i) => {
      ctx.count(outcome);
      if (outcome === "failed") {
        ctx.report({
          kind: "owed_effects_failed",
          owedId: due[i]?._id.toHexString(),
          effects: due[i]?.effects.map((e) => e.kind),
        });
      }
    });
    await ctx.checkpoint("owed-batch");
    // Records that failed again are due later; a short batch means nothing else is due now.
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

export const owedEffectsJob: Job = {
  name: "owed-effects",
  description:
    "Carries out what writes still owe (notifications, totals, cache drops) when their request's own after-response run did not.",
  run: sweepOwed,
};
