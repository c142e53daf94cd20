import type { Finding } from "../db/documents/jobs";
import type { Deps } from "../deps";

export type { Finding };

/** What a scheduled job's run gets from the scheduler (src/scheduler/runner.ts). */
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

/** A scheduled job, defined next to the feature logic it runs; `src/scheduler/schedule.ts` binds it to crons. */
export interface Job {
  name: string;
  description: string;
  run(ctx: JobContext): Promise<JobReport>;
}
