import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import { both, deleteKeys, keysExist, mergeSortedSet, runOp } from "../../platform/redis-ops";
import { currentWindows, type PeriodWindow } from "./periods";
import { boardExpiry, COUNTED_EARNINGS } from "./service";

/**
 * Rebuilds any current board Redis has lost, from the ledger (the record of every gem earned). Writing goes
 * through a scratch key merged with `ZUNIONSTORE … AGGREGATE MAX`, so increments that arrived meanwhile are
 * kept and nothing is counted twice. A board that exists costs one `EXISTS` in the pipeline.
 */
export async function rebuildLeaderboards(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const windows = currentWindows(deps.clock.now(), deps.keys);
  const exists = await runOp(deps.redis, keysExist(windows.map((w) => w.key)));
  for (const [i, w] of windows.entries()) {
    if (exists[i]) continue;
    const scores = await ledgerScores(deps, w);
    ctx.count(`${w.period}Users`, scores.length);
    if (scores.length > 0) {
      await runOp(
        deps.redis,
        both(mergeSortedSet(w.key, scores, boardExpiry(deps, w)), deleteKeys([deps.keys.leaderboardPage(w.key)])),
      );
      ctx.count("rebuilt");
    }
    await ctx.checkpoint(`rebuilt-${w.period}`);
  }
  return { more: false };
}

async function ledgerScores(deps: Deps, w: PeriodWindow): Promise<{ member: string; score: number }[]> {
  const match: Record<string, unknown> = { ...COUNTED_EARNINGS };
  if (w.start && w.end) match.createdAt = { $gte: w.start, $lt: w.end };
  const sums = await deps.db.gemTransactions.aggregate<{ _id: ObjectId; score: number }>([
    { $match: match },
    { $group: { _id: "$userId", score: { $sum: "$amount" } } },
  ]);
  if (sums.length === 0) return [];
  const hidden = await deps.db.users.find(
    {
      _id: { $in: sums.map((s) => s._id) },
      $or: [{ deletedAt: { $ne: null } }, { bannedAt: { $ne: null } }, { shadowBanned: true }],
    },
    { projection: { _id: 1 }, limit: sums.length },
  );
  const skip = new Set(hidden.map((h) => h._id.toHexString()));
  return sums.map((s) => ({ member: s._id.toHexString(), score: s.score })).filter((s) => !skip.has(s.member));
}

export const leaderboardsJob: Job = {
  name: "leaderboards",
  description: "Rebuilds from the ledger any current leaderboard (daily, weekly, all-time) that Redis has lost.",
  run: rebuildLeaderboards,
};
