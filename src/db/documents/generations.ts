import type { ObjectId } from "../../platform/ids";
import type { RequestKey } from "./requests";
import type { Tier } from "./users";

export const GENERATION_STATUSES = ["queued", "processing", "completed", "failed"] as const;
export type GenerationStatus = (typeof GENERATION_STATUSES)[number];

/**
 * `generation_jobs` (seed 000), plus the request's tuning parameters, the output's size, the enqueue-time
 * decisions (`userTier`, `hasWatermark`) and `postId` (set once a post is made from the job). `completedAt`
 * is the time a job reached a terminal state (completed or failed), so the 7-day TTL index clears both.
 */
export interface GenerationJobDoc {
  _id: ObjectId;
  /** The Idempotency-Key it was queued with (key: `{userId}:{Idempotency-Key}`), when the client sent one. */
  idempotency?: RequestKey;
  userId: ObjectId;
  userTier: Tier;
  // Input
  prompt: string;
  refinedPrompt: string | null;
  negativePrompt: string | null;
  model: string;
  steps: number | null;
  cfgScale: number | null;
  seed: number | null;
  /** Higher is claimed first (from the tier at enqueue time). */
  priority: number;
  // Status
  status: GenerationStatus;
  // Output
  imageUrl: string | null;
  thumbnailUrl: string | null;
  imageWidth: number | null;
  imageHeight: number | null;
  blurhash: string | null;
  /** Decided at enqueue time (free tier) so the worker that renders the image knows to stamp it. */
  hasWatermark: boolean;
  generationTimeMs: number | null;
  /** What the generator reported about the image (auto-moderation reads the score). */
  nsfwScore?: number | null;
  modelVersion?: string | null;
  // Worker
  workerId: string | null;
  attempts: number;
  lastError: string | null;
  // Cost (internal)
  computeCostUsd: number | null;
  postId: ObjectId | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}
