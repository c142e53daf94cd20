import type { GenerationJobDoc, Tier } from "../../db";
import { newObjectId, type ObjectId } from "../../platform/ids";

export interface NewGeneration {
  userId: ObjectId;
  userTier: Tier;
  prompt: string;
  negativePrompt?: string | null;
  model: string;
  steps?: number | null;
  cfgScale?: number | null;
  seed?: number | null;
  priority: number;
  /** Free-tier images carry a watermark, decided now so the worker that renders the image knows. */
  hasWatermark: boolean;
  createdAt: Date;
}

/** A job as it is queued: no worker, no output, no attempts yet. */
export function newGenerationJobDoc(job: NewGeneration): GenerationJobDoc {
  return {
    _id: newObjectId(),
    refinedPrompt: null,
    status: "queued",
    imageUrl: null,
    thumbnailUrl: null,
    imageWidth: null,
    imageHeight: null,
    blurhash: null,
    generationTimeMs: null,
    workerId: null,
    attempts: 0,
    lastError: null,
    computeCostUsd: null,
    postId: null,
    startedAt: null,
    completedAt: null,
    ...job,
    negativePrompt: job.negativePrompt ?? null,
    steps: job.steps ?? null,
    cfgScale: job.cfgScale ?? null,
    seed: job.seed ?? null,
  };
}
