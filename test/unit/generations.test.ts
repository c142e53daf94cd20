import { describe, expect, it } from "vitest";
import { toGenerationJob, toWorkerGenerationJob } from "../../src/features/generations/schema";
import { newObjectId } from "../../src/platform/ids";
import { secondsUntilNextUtcDay } from "../../src/platform/time";

describe("secondsUntilNextUtcDay", () => {
  it.each([
    ["2026-03-01T00:00:00.000Z", 86_400],
    ["2026-03-01T23:59:59.000Z", 1],
    ["2026-03-01T23:59:59.900Z", 1],
    ["2026-03-01T12:00:00.000Z", 43_200],
    ["2026-02-28T23:00:00.000Z", 3_600],
    ["2024-12-31T23:30:00.000Z", 1_800],
  ])("at %s is %i", (at, seconds) => {
    expect(secondsUntilNextUtcDay(new Date(at))).toBe(seconds);
  });
});

describe("generation job views", () => {
  const doc = {
    _id: newObjectId(),
    userId: newObjectId(),
    userTier: "free" as const,
    prompt: "p",
    refinedPrompt: null,
    negativePrompt: null,
    model: "flux",
    steps: null,
    cfgScale: null,
    seed: null,
    priority: 1,
    status: "failed" as const,
    imageUrl: null,
    thumbnailUrl: null,
    imageWidth: null,
    imageHeight: null,
    blurhash: null,
    hasWatermark: true,
    generationTimeMs: null,
    workerId: "gpu-7",
    attempts: 3,
    lastError: "Traceback: /srv/worker/secret_path.py",
    computeCostUsd: 0.01,
    postId: null,
    createdAt: new Date("2026-03-01T00:00:00Z"),
    startedAt: new Date("2026-03-01T00:00:01Z"),
    completedAt: new Date("2026-03-01T00:00:05Z"),
  };

  it("shows the owner no worker, cost or raw error", () => {
    const view = toGenerationJob(doc);
    expect(JSON.stringify(view)).not.toMatch(/gpu-7|secret_path|0\.01|workerId|computeCostUsd|lastError/);
    expect(view).toMatchObject({ status: "failed", completedAt: "2026-03-01T00:00:05.000Z", hasWatermark: true });
  });

  it("shows the worker its processing state but not the owner's id", () => {
    const view = toWorkerGenerationJob(doc);
    expect(view).toMatchObject({ workerId: "gpu-7", attempts: 3, computeCostUsd: 0.01, userTier: "free" });
    expect(view).not.toHaveProperty("userId");
  });
});
