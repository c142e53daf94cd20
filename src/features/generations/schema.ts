import { z } from "@hono/zod-openapi";
import { ObjectIdString, PageQuery } from "../../http/pagination";
import type { ObjectId } from "../../platform/ids";
import { TIERS, type Tier } from "../users/schema";

export const GENERATION_STATUSES = ["queued", "processing", "completed", "failed"] as const;
export type GenerationStatus = (typeof GENERATION_STATUSES)[number];

/**
 * `generation_jobs` (seed 000), plus the request's tuning parameters, the output's size, the enqueue-time
 * decisions (`userTier`, `hasWatermark`) and `postId` (set once a post is made from the job). `completedAt`
 * is the time a job reached a terminal state (completed or failed), so the 7-day TTL index clears both.
 */
export interface GenerationJobDoc {
  _id: ObjectId;
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

export const GenerationIdParam = z.object({ id: ObjectIdString });

export const CreateGenerationBody = z
  .object({
    prompt: z.string().trim().min(1, "must not be empty").max(1000).openapi({ example: "a fox in a neon forest" }),
    model: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: "One of GENERATION_MODELS (default: GENERATION_DEFAULT_MODEL)", example: "sdxl-turbo" }),
    negativePrompt: z.string().trim().max(1000).optional(),
    steps: z.number().int().min(1).max(150).optional(),
    cfgScale: z.number().min(0).max(30).optional(),
    seed: z.number().int().min(0).optional(),
  })
  .strict()
  .openapi("CreateGeneration");

export const GenerationAccepted = z
  .object({
    id: z.string(),
    status: z.literal("queued"),
    priority: z.number().int(),
    quota: z
      .object({ limit: z.number().int(), remaining: z.number().int(), resetsAt: z.string() })
      .openapi({ description: "The caller's daily generation quota after this request (UTC day)" }),
  })
  .openapi("GenerationAccepted");

/** What the owner sees: no worker identity, internal cost or raw worker error text. */
export const GenerationJob = z
  .object({
    id: z.string(),
    userId: z.string(),
    status: z.enum(GENERATION_STATUSES),
    priority: z.number().int(),
    prompt: z.string(),
    refinedPrompt: z.string().nullable(),
    negativePrompt: z.string().nullable(),
    model: z.string(),
    steps: z.number().int().nullable(),
    cfgScale: z.number().nullable(),
    seed: z.number().int().nullable(),
    imageUrl: z.string().nullable(),
    thumbnailUrl: z.string().nullable(),
    imageWidth: z.number().int().nullable(),
    imageHeight: z.number().int().nullable(),
    blurhash: z.string().nullable(),
    hasWatermark: z.boolean(),
    generationTimeMs: z.number().int().nullable(),
    postId: z.string().nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    completedAt: z.string().nullable(),
  })
  .openapi("GenerationJob");

export const GenerationJobPage = z
  .object({ items: z.array(GenerationJob), nextCursor: z.string().nullable() })
  .openapi("GenerationJobPage");

export const GenerationListQuery = PageQuery.extend({ status: z.enum(GENERATION_STATUSES).optional() });

/** What a GPU worker sees: the job's parameters plus its processing state. */
export const WorkerGenerationJob = GenerationJob.omit({ userId: true, postId: true })
  .extend({
    userTier: z.enum(TIERS),
    workerId: z.string().nullable(),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    computeCostUsd: z.number().nullable(),
  })
  .openapi("WorkerGenerationJob");

const WorkerId = z.string().trim().min(1).max(128).openapi({ example: "gpu-eu-1" });

export const ClaimBody = z
  .object({
    workerId: WorkerId,
    models: z
      .array(z.string().min(1).max(100))
      .min(1)
      .max(50)
      .optional()
      .openapi({ description: "Only claim jobs for these models (default: any)" }),
  })
  .strict()
  .openapi("ClaimGeneration");

/** `workerId` fences a worker whose job was re-queued: when given, only the holder may finish the job. */
const HolderWorkerId = WorkerId.optional().openapi({
  description: "The claiming worker's id; when given, the request only succeeds for the worker holding the job",
});

export const CompleteBody = z
  .object({
    workerId: HolderWorkerId,
    imageUrl: z.url().max(2048),
    thumbnailUrl: z.url().max(2048),
    imageWidth: z.number().int().min(1).max(16_384),
    imageHeight: z.number().int().min(1).max(16_384),
    blurhash: z.string().min(6).max(200).optional(),
    generationTimeMs: z.number().int().min(0).max(86_400_000),
    computeCostUsd: z.number().min(0).max(1_000).optional(),
  })
  .strict()
  .openapi("CompleteGeneration");

export const FailBody = z
  .object({
    workerId: HolderWorkerId,
    error: z.string().trim().min(1).max(10_000).openapi({ description: "Stored truncated to 1,000 characters" }),
  })
  .strict()
  .openapi("FailGeneration");

export type CreateGenerationBody = z.infer<typeof CreateGenerationBody>;
export type GenerationAccepted = z.infer<typeof GenerationAccepted>;
export type GenerationJob = z.infer<typeof GenerationJob>;
export type GenerationJobPage = z.infer<typeof GenerationJobPage>;
export type GenerationListQuery = z.infer<typeof GenerationListQuery>;
export type WorkerGenerationJob = z.infer<typeof WorkerGenerationJob>;
export type ClaimBody = z.infer<typeof ClaimBody>;
export type CompleteBody = z.infer<typeof CompleteBody>;
export type FailBody = z.infer<typeof FailBody>;

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function toGenerationJob(doc: GenerationJobDoc): GenerationJob {
  return {
    id: doc._id.toHexString(),
    userId: doc.userId.toHexString(),
    status: doc.status,
    priority: doc.priority,
    prompt: doc.prompt,
    refinedPrompt: doc.refinedPrompt ?? null,
    negativePrompt: doc.negativePrompt ?? null,
    model: doc.model,
    steps: doc.steps ?? null,
    cfgScale: doc.cfgScale ?? null,
    seed: doc.seed ?? null,
    imageUrl: doc.imageUrl ?? null,
    thumbnailUrl: doc.thumbnailUrl ?? null,
    imageWidth: doc.imageWidth ?? null,
    imageHeight: doc.imageHeight ?? null,
    blurhash: doc.blurhash ?? null,
    hasWatermark: doc.hasWatermark ?? false,
    generationTimeMs: doc.generationTimeMs ?? null,
    postId: doc.postId ? doc.postId.toHexString() : null,
    createdAt: doc.createdAt.toISOString(),
    startedAt: iso(doc.startedAt),
    completedAt: iso(doc.completedAt),
  };
}

export function toWorkerGenerationJob(doc: GenerationJobDoc): WorkerGenerationJob {
  const { userId: _userId, postId: _postId, ...job } = toGenerationJob(doc);
  return {
    ...job,
    userTier: doc.userTier ?? "free",
    workerId: doc.workerId ?? null,
    attempts: doc.attempts ?? 0,
    lastError: doc.lastError ?? null,
    computeCostUsd: doc.computeCostUsd ?? null,
  };
}
