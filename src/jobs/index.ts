import type { Deps } from "../deps";
import { accountErasureJob } from "./account-erasure";
import { analyticsFlushJob } from "./analytics-flush";
import { countersJob } from "./counters";
import { generationRequeueJob } from "./generation-requeue";
import { leaderboardsJob } from "./leaderboards";
import { reconciliationJob } from "./reconciliation";
import { type RunResult, runJob } from "./runner";
import { settlementJob } from "./settlement";
import { trendingJob } from "./trending";
import { trustAccrualJob } from "./trust-accrual";
import type { Job } from "./types";

/** Cron expression → jobs. Must match `[triggers] crons` in wrangler.toml (a test checks). */
export const schedule: Record<string, Job[]> = {
  "*/5 * * * *": [analyticsFlushJob, trendingJob, settlementJob, leaderboardsJob],
  "41 * * * *": [reconciliationJob],
  "17 3 * * *": [accountErasureJob, trustAccrualJob],
  "*/2 * * * *": [generationRequeueJob, countersJob],
};

export const jobs: Job[] = [...new Set(Object.values(schedule).flat())];

export function findJob(name: string): Job | undefined {
  return jobs.find((j) => j.name === name);
}

/** Runs every job bound to a cron expression (sequentially: each has its own lease and budget). */
export async function runScheduled(deps: Deps, cron: string): Promise<RunResult[]> {
  const due = schedule[cron] ?? [];
  if (due.length === 0) deps.log.warn("no job bound to cron", { cron });
  const results: RunResult[] = [];
  for (const job of due) results.push(await runJob(deps, job, { trigger: `cron:${cron}` }));
  return results;
}
