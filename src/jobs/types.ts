import type { Deps } from "../deps";
import type { ObjectId } from "../platform/ids";

export type JobOutcome = "running" | "succeeded" | "partial" | "failed" | "skipped";

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

export type Finding = { kind: string } & Record<string, unknown>;

export interface JobContext {
  deps: Deps;
  runId: string;
  startedAt: Date;
  /** Milliseconds left in this run's time budget; stop starting new batches when it runs low. */
  timeLeft(): number;
  count(name: string, by?: number): void;
  /** Records a finding in the run's `job_runs` document (and the log). */
  report(finding: Finding): void;
  /**
   * Marks a point between two steps where a crash would leave state behind. Production: a no-op. Tests make
   * it throw to prove the next run repairs whatever a crash at that point left.
   */
  checkpoint(name: string): Promise<void>;
}

/** What a job reports: `more` when it stopped because of its time budget with work left. */
export interface JobReport {
  more: boolean;
}

export interface Job {
  name: string;
  description: string;
  run(ctx: JobContext): Promise<JobReport>;
}
