import type { Job } from "../core/jobs";
import type { Deps } from "../deps";
import { flushAnalyticsJob } from "../features/analytics/flush";
import { trendingJob } from "../features/feeds/trending";
import { settlementJob } from "../features/gems/settlement";
import { requeueJob } from "../features/generations/requeue";
import { leaderboardsJob } from "../features/leaderboards/rebuild";
import { trustAccrualJob } from "../features/moderation/trust-accrual";
import { accountErasureJob } from "../features/privacy/erasure";
import { countersJob } from "../features/ranking/counters";
import { reconciliationJob } from "../features/reconciliation/job";
import { avatarSyncJob } from "../features/users/avatar-sync";
import { voteSignalRetentionJob } from "../features/votes/retention";
import { type RunResult, runJob } from "./runner";

/**
 * Cron triggers and the jobs they run, in order. `cron` must match `[triggers] crons` in wrangler.toml (a
 * test checks); `name` names the trigger where a runtime needs one (Deno.cron accepts letters, digits,
 * whitespace, hyphens and underscores only).
 */
export const schedule: { name: string; cron: string; jobs: Job[] }[] = [
  {
    name: "every-5-minutes",
    cron: "*/5 * * * *",
    jobs: [flushAnalyticsJob, trendingJob, settlementJob, leaderboardsJob],
  },
  { name: "hourly-at-41", cron: "41 * * * *", jobs: [reconciliationJob] },
  { name: "daily-at-0317", cron: "17 3 * * *", jobs: [accountErasureJob, trustAccrualJob, voteSignalRetentionJob] },
  { name: "every-2-minutes", cron: "*/2 * * * *", jobs: [requeueJob, countersJob, avatarSyncJob] },
];

export const jobs: Job[] = [...new Set(schedule.flatMap((s) => s.jobs))];

export function findJob(name: string): Job | undefined {
  return jobs.find((j) => j.name === name);
}

/** Runs every job bound to a cron expression (sequentially: each has its own lease and budget). */
export async function runScheduled(deps: Deps, cron: string): Promise<RunResult[]> {
  const due = schedule.find((s) => s.cron === cron)?.jobs ?? [];
  if (due.length === 0) deps.log.warn("no job bound to cron", { cron });
  const results: RunResult[] = [];
  for (const job of due) results.push(await runJob(deps, job, { trigger: `cron:${cron}` }));
  return results;
}
