import type { GenerationJobDoc } from "../../src/db";
import { newObjectId } from "../../src/platform/ids";

/** A job document as POST /v1/generations writes it, for tests that seed the queue directly. */
export function jobDoc(model: string, overrides: Partial<GenerationJobDoc> = {}): GenerationJobDoc {
  return {
    _id: newObjectId(),
    userId: newObjectId(),
    userTier: "free",
    prompt: "seeded prompt",
    refinedPrompt: null,
    negativePrompt: null,
    model,
    steps: null,
    cfgScale: null,
    seed: null,
    priority: 1,
    status: "queued",
    imageUrl: null,
    thumbnailUrl: null,
    imageWidth: null,
    imageHeight: null,
    blurhash: null,
    hasWatermark: true,
    generationTimeMs: null,
    workerId: null,
    attempts: 0,
    lastError: null,
    computeCostUsd: null,
    postId: null,
    createdAt: new Date(Date.now() - 3_600_000),
    startedAt: null,
    completedAt: null,
    ...overrides,
  };
}
