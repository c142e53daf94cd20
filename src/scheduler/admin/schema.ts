import { z } from "zod";

export const JobName = z.object({ name: z.string().min(1).max(64).meta({ example: "analytics-flush" }) });

export const JobRun = z
  .object({
    runId: z.string(),
    job: z.string(),
    trigger: z.string(),
    outcome: z.enum(["running", "succeeded", "partial", "failed", "skipped"]),
    counts: z.record(z.string(), z.number()),
    findings: z.array(z.record(z.string(), z.unknown())).meta({
      description: "What the run found for an operator to look at, e.g. reconciliation's discrepancies (first 200).",
    }),
    error: z.string().nullable(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: "JobRun" });

export const JobRunList = z.object({ items: z.array(JobRun) }).meta({ id: "JobRunList" });
export const JobRunsQuery = z.object({
  job: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
export type JobRun = z.infer<typeof JobRun>;
