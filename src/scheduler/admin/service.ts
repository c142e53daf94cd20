import { ApiError } from "../../core/errors";
import type { JobRunDoc } from "../../db";
import type { Deps } from "../../deps";
import { runJob } from "../runner";
import { findJob } from "../schedule";
import type { JobRun } from "./schema";

export async function triggerJob(deps: Deps, name: string): Promise<JobRun> {
  const job = findJob(name);
  if (!job) throw ApiError.notFound(`No job named "${name}".`);
  const result = await runJob(deps, job, { trigger: "manual" });
  const doc = await deps.db.jobRuns.findOne({ runId: result.runId });
  if (!doc) throw new Error(`job run ${result.runId} was not recorded`);
  return present(doc);
}

export async function recentRuns(deps: Deps, query: { job?: string; limit: number }): Promise<{ items: JobRun[] }> {
  const docs = await deps.db.jobRuns.find(query.job ? { job: query.job } : {}, {
    sort: { startedAt: -1 },
    limit: query.limit,
  });
  return { items: docs.map(present) };
}

function present(doc: JobRunDoc): JobRun {
  return {
    runId: doc.runId,
    job: doc.job,
    trigger: doc.trigger,
    outcome: doc.outcome,
    counts: doc.counts,
    findings: doc.findings ?? [],
    error: doc.error,
    startedAt: doc.startedAt.toISOString(),
    finishedAt: doc.finishedAt ? doc.finishedAt.toISOString() : null,
  };
}
