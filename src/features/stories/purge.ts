import type { Job, JobContext, JobReport } from "../../core/jobs";

/**
 * `story-purge`: deletes stories past `expiresAt` and their views, in batches of STORY_PURGE_BATCH. Views go
 * first, so a run that dies between the two leaves the stories for the next run (which finds them again by
 * expiry) rather than views nobody can reach. Reads never return an expired story, purged or not.
 */
export async function purgeExpiredStories(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const batch = deps.config.stories.purgeBatchStories;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const now = deps.clock.now();
    const due = await deps.db.stories.find(
      { expiresAt: { $lte: now } },
      { sort: { expiresAt: 1 }, limit: batch, projection: { _id: 1 } },
    );
    if (due.length === 0) return { more: false };
    const ids = due.map((s) => s._id);
    const [views, stories] = await deps.db.batch([
      deps.db.storyViews.inBatch.deleteMany({ storyId: { $in: ids } }),
      deps.db.stories.inBatch.deleteMany({ _id: { $in: ids }, expiresAt: { $lte: now } }),
    ]);
    ctx.count("stories", stories);
    ctx.count("views", views);
    await ctx.checkpoint("batch");
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

export const storyPurgeJob: Job = {
  name: "story-purge",
  description: "Deletes stories past their expiry, with their views.",
  run: purgeExpiredStories,
};
