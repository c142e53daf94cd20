import type { Job } from "../../src/core/jobs";
import { type RunResult, runJob } from "../../src/scheduler/runner";
import { testDeps } from "./deps";

const deps = testDeps();

/**
 * Runs a job until a run finishes its work. Another suite may hold the job's lease at that moment (the run is
 * skipped) or a run may stop with work left, so it tries again, briefly apart.
 */
export async function runUntilDone(job: Job, attempts = 20): Promise<RunResult> {
  for (let i = 0; i < attempts; i++) {
    const run = await runJob(deps, job, { trigger: "test" });
    if (run.outcome === "succeeded") return run;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${job.name} did not finish`);
}

/**
 * A checkpoint hook that holds runs at checkpoint `name` until `runs` of them have got there (or `timeoutMs` has
 * passed, for a run that never does), then lets everyone through: from there on the runs really overlap, each
 * working from what it read before any of them wrote.
 */
export function barrier(name: string, runs: number, timeoutMs = 3_000): (at: string) => Promise<void> {
  let arrived = 0;
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  setTimeout(() => open(), timeoutMs);
  return async (at) => {
    if (at !== name) return;
    arrived += 1;
    if (arrived >= runs) open();
    await opened;
  };
}
