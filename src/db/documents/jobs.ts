import type { ObjectId } from "../../platform/ids";

export type JobOutcome = "running" | "succeeded" | "partial" | "failed" | "skipped";

export type Finding = { kind: string } & Record<string, unknown>;

/** `job_runs`: one document per run (and per refused overlapping run). */
export interface JobRunDoc {
  _id: ObjectId;
  job: string;
  runId: string;
  trigger: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: JobOutcome;
  counts: Record<string, number>;
  /** What the run found that an operator should look at (e.g. reconciliation's discrepancies); capped. */
  findings: Finding[];
  error: string | null;
}
