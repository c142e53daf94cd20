import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { GenerationJobDoc } from "../../src/db";
import { requeueJob as generationRequeueJob } from "../../src/features/generations/requeue";
import type { WorkerGenerationJob } from "../../src/features/generations/schema";
import { runJob } from "../../src/scheduler/runner";
import { schedule } from "../../src/scheduler/schedule";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { jobDoc } from "../support/generations";
import { expectProblem } from "../support/problems";

// Every run of this job lives in this file, so no other suite's run can hold its lease while these assert.
const deps = testDeps();
const WORKER_TOKEN = (env as unknown as Record<string, string>).GPU_WORKER_TOKEN!;
const { processingTimeoutSeconds: TIMEOUT_S, maxAttempts: MAX_ATTEMPTS } = deps.config.generation;

const secondsAgo = (s: number) => new Date(Date.now() - s * 1000);
const byId = async (doc: GenerationJobDoc) => deps.db.generationJobs.findOne({ _id: doc._id });

describe("generation-requeue job", () => {
  it("runs every two minutes", () => {
    expect(schedule.find((s) => s.cron === "*/2 * * * *")?.jobs).toContain(generationRequeueJob);
  });

  it("re-queues jobs stuck in processing past the timeout, fails those out of attempts, leaves the rest", async () => {
    const model = `requeue-${crypto.randomUUID().slice(0, 12)}`;
    const stuck = jobDoc(model, {
      status: "processing",
      workerId: "gpu-gone",
      attempts: 1,
      startedAt: secondsAgo(TIMEOUT_S + 60),
    });
    const exhausted = jobDoc(model, {
      status: "processing",
      workerId: "gpu-gone",
      attempts: MAX_ATTEMPTS,
      startedAt: secondsAgo(TIMEOUT_S + 60),
    });
    const busy = jobDoc(model, {
      status: "processing",
      workerId: "gpu-busy",
      attempts: 1,
      startedAt: secondsAgo(TIMEOUT_S - 60),
    });
    const done = jobDoc(model, {
      status: "completed",
      workerId: "gpu-done",
      attempts: 1,
      startedAt: secondsAgo(TIMEOUT_S + 600),
      completedAt: secondsAgo(TIMEOUT_S + 500),
      imageUrl: "https://cdn.example/done.png",
    });
    await deps.db.generationJobs.insertMany([stuck, exhausted, busy, done]);

    const run = await runJob(deps, generationRequeueJob, { trigger: "test" });
    expect(run.outcome, run.error ?? "").toBe("succeeded");
    expect(run.counts.requeued).toBeGreaterThanOrEqual(1);
    expect(run.counts.failed).toBeGreaterThanOrEqual(1);

    expect(await byId(stuck)).toMatchObject({ status: "queued", workerId: null, startedAt: null, attempts: 1 });
    expect((await byId(stuck))?.lastError).toMatch(/timed out/);
    expect(await byId(exhausted)).toMatchObject({ status: "failed", attempts: MAX_ATTEMPTS });
    expect((await byId(exhausted))?.completedAt).toBeInstanceOf(Date);
    expect(await byId(busy)).toEqual(busy);
    expect(await byId(done)).toEqual(done);

    const recorded = await deps.db.jobRuns.findOne({ runId: run.runId });
    expect(recorded).toMatchObject({ job: "generation-requeue", outcome: "succeeded", trigger: "test" });
    expect(recorded?.counts.requeued).toBe(run.counts.requeued);
    expect(recorded?.finishedAt).toBeInstanceOf(Date);

    // Idempotent: a second run finds nothing of these to do and changes none of them.
    const before = await deps.db.generationJobs.find({ model }, { sort: { _id: 1 } });
    const again = await runJob(deps, generationRequeueJob, { trigger: "test" });
    expect(again.outcome).toBe("succeeded");
    expect(await deps.db.generationJobs.find({ model }, { sort: { _id: 1 } })).toEqual(before);

    // The re-queued job is claimable again; the worker that vanished can no longer finish it.
    const claimed = await call<WorkerGenerationJob>("POST", "/v1/internal/generations/claim", {
      token: WORKER_TOKEN,
      body: { workerId: "gpu-new", models: [model] },
    });
    expect(claimed.body).toMatchObject({ id: stuck._id.toHexString(), attempts: 2, workerId: "gpu-new" });
    const late = await call("POST", `/v1/internal/generations/${stuck._id.toHexString()}/complete`, {
      token: WORKER_TOKEN,
      body: {
        workerId: "gpu-gone",
        imageUrl: "https://cdn.example/late.png",
        thumbnailUrl: "https://cdn.example/late_t.png",
        imageWidth: 512,
        imageHeight: 512,
        generationTimeMs: 999_999,
      },
    });
    expectProblem(late, 409, "conflict");
  });

  it("works through more stuck jobs than one batch in a single run", async () => {
    const model = `requeue-many-${crypto.randomUUID().slice(0, 12)}`;
    const docs = Array.from({ length: 450 }, (_, i) =>
      jobDoc(model, {
        status: "processing",
        workerId: "gpu-gone",
        attempts: 1,
        startedAt: secondsAgo(TIMEOUT_S + 60 + i),
      }),
    );
    await deps.db.generationJobs.insertMany(docs);
    const run = await runJob(deps, generationRequeueJob, { trigger: "test" });
    expect(run.outcome, run.error ?? "").toBe("succeeded");
    expect(run.counts.requeued).toBeGreaterThanOrEqual(450);
    const left = await deps.db.generationJobs.find({ model, status: { $ne: "queued" } }, { projection: { _id: 1 } });
    expect(left).toHaveLength(0);
  });
});
