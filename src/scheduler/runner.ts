import type { Finding, Job, JobContext } from "../core/jobs";
import type { JobOutcome, JobRunDoc } from "../db";
import type { Deps } from "../deps";
import { drainBackground, newBackgroundQueue, withBackgroundQueue } from "../platform/background";
import { newObjectId, newUuid } from "../platform/ids";
import { acquireLease, releaseLease, runOp } from "../platform/redis-ops";

export interface RunOptions {
  trigger: string;
  timeBudgetMs?: number;
  /** Test seam: called at every checkpoint; throwing there simulates a crash at that point. */
  onCheckpoint?: (name: string) => void | Promise<void>;
}

export interface RunResult {
  runId: string;
  outcome: JobOutcome;
  counts: Record<string, number>;
  findings: Finding[];
  error: string | null;
}

/** Findings kept per run document; the count of all of them is in `counts.findings`. */
const MAX_FINDINGS = 200;

/**
 * Runs one job under a Redis lease (no two runs overlap), within a time budget, and records the run in
 * `job_runs`. A run that finds the lease taken is recorded as `skipped`. Jobs themselves must be safe to
 * re-run after a crash at any point: the lease only prevents overlap, it is not what makes them correct.
 */
export async function runJob(deps: Deps, job: Job, options: RunOptions): Promise<RunResult> {
  const runId = newUuid();
  const startedAt = deps.clock.now();
  const leaseKey = deps.keys.jobLease(job.name);
  const leaseMs = deps.config.jobs.leaseSeconds * 1000;
  const budgetMs = Math.min(options.timeBudgetMs ?? deps.config.jobs.timeBudgetMs, leaseMs - 5_000);
  const counts: Record<string, number> = {};
  const findings: Finding[] = [];
  const runDoc: JobRunDoc = {
    _id: newObjectId(),
    job: job.name,
    runId,
    trigger: options.trigger,
    startedAt,
    finishedAt: null,
    outcome: "running",
    counts,
    findings,
    error: null,
  };

  if (!(await runOp(deps.redis, acquireLease(leaseKey, runId, leaseMs)))) {
    const skipped = { ...runDoc, outcome: "skipped" as const, finishedAt: deps.clock.now() };
    await deps.db.jobRuns.insertOne(skipped);
    deps.log.info("job skipped: another run holds the lease", { job: job.name, runId });
    return { runId, outcome: "skipped", counts, findings, error: null };
  }

  let outcome: JobOutcome = "failed";
  let error: string | null = null;
  try {
    await deps.db.jobRuns.insertOne(runDoc);
    const started = performance.now();
    const ctx: JobContext = {
      deps,
      runId,
      startedAt,
      timeLeft: () => budgetMs - (performance.now() - started),
      count: (name, by = 1) => {
        counts[name] = (counts[name] ?? 0) + by;
      },
      report: (finding) => {
        counts.findings = (counts.findings ?? 0) + 1;
        if (findings.length < MAX_FINDINGS) findings.push(finding);
        deps.log.warn("job finding", { job: job.name, runId, ...finding });
      },
      checkpoint: async (name) => {
        await options.onCheckpoint?.(name);
      },
    };
    // What the job queues for "after the response" (pushes for the notices it wrote) runs before the run ends.
    const background = newBackgroundQueue();
    const report = await withBackgroundQueue(background, () => job.run(ctx));
    await drainBackground(background);
    outcome = report.more ? "partial" : "succeeded";
  } catch (caught) {
    error = caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught);
    deps.log.error("job failed", { job: job.name, runId, error });
  } finally {
    const finishedAt = deps.clock.now();
    await Promise.allSettled([
      deps.db.jobRuns.updateOne({ _id: runDoc._id }, { $set: { outcome, counts, findings, error, finishedAt } }),
      runOp(deps.redis, releaseLease(leaseKey, runId)),
    ]);
    deps.log.info("job finished", {
      job: job.name,
      runId,
      outcome,
      counts,
      durationMs: finishedAt.getTime() - startedAt.getTime(),
    });
  }
  return { runId, outcome, counts, findings, error };
}
