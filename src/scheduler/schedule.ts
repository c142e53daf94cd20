import type { Job } from "../core/jobs";
import type { Deps } from "../deps";
import { flushAnalyticsJob } from "../features/analytics/flush";
import { billingSweepJob } from "../features/billing/sweep";
import { trendingJob } from "../features/feeds/trending";
import { settlementJob } from "../features/gems/settlement";
import { requeueJob } from "../features/generations/requeue";
import { journalInsightsJob, journalPurgeJob } from "../features/journal/jobs";
import { leaderboardsJob } from "../features/leaderboards/rebuild";
import { emailDeliveryJob } from "../features/mail/delivery";
import { messagePurgeJob } from "../features/messaging/purge";
import { trustAccrualJob } from "../features/moderation/trust-accrual";
import { owedEffectsJob } from "../features/owed/sweep";
import { publishScheduledJob } from "../features/posts/publish-scheduled";
import { accountDeletionJob } from "../features/privacy/deletion";
import { accountErasureJob } from "../features/privacy/erasure";
import { pushDeliveryJob } from "../features/push/delivery";
import { countersJob } from "../features/ranking/counters";
import { reconciliationJob } from "../features/reconciliation/job";
import { storyPurgeJob } from "../features/stories/purge";
import { streamMaintenanceJob } from "../features/streams/maintenance";
import { tagCountsJob } from "../features/tags/counts";
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
  { name: "hourly-at-41", cron: "41 * * * *", jobs: [reconciliationJob, journalInsightsJob] },
  {
    name: "daily-at-0317",
    cron: "17 3 * * *",
    jobs: [accountErasureJob, trustAccrualJob, voteSignalRetentionJob, journalPurgeJob],
  },
  {
    name: "every-2-minutes",
    cron: "*/2 * * * *",
    jobs: [
      owedEffectsJob,
      requeueJob,
      accountDeletionJob,
      countersJob,
      emailDeliveryJob,
      pushDeliveryJob,
      billingSweepJob,
      messagePurgeJob,
      storyPurgeJob,
      streamMaintenanceJob,
      avatarSyncJob,
    ],
  },
  // Scheduled posts go out within a minute of their time; tag counts follow them (and every other change).
  { name: "every-minute", cron: "* * * * *", jobs: [publishScheduledJob, tagCountsJob] },
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
