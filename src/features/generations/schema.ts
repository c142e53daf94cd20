import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import { GENERATION_STATUSES, type GenerationJobDoc, TIERS } from "../../db";
import { DAY_MS } from "../../platform/time";

export const GenerationIdParam = z.object({ id: ObjectIdString });

export const CreateGenerationBody = z
  .object({
    prompt: z.string().trim().min(1, "must not be empty").max(1000).meta({ example: "a fox in a neon forest" }),
    model: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .meta({ description: "One of GENERATION_MODELS (default: GENERATION_DEFAULT_MODEL)", example: "sdxl-turbo" }),
    negativePrompt: z.string().trim().max(1000).optional(),
    steps: z.number().int().min(1).max(150).optional(),
    cfgScale: z.number().min(0).max(30).optional(),
    seed: z.number().int().min(0).optional(),
  })
  .strict()
  .meta({ id: "CreateGeneration" });

export const GenerationAccepted = z
  .object({
    id: z.string(),
    status: z.literal("queued"),
    priority: z.number().int(),
    quota: z
      .object({ limit: z.number().int(), remaining: z.number().int(), resetsAt: z.string() })
      .meta({ description: "The caller's daily generation quota after this request (UTC day)" }),
  })
  .meta({ id: "GenerationAccepted" });

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
  .meta({ id: "GenerationJob" });

export const GenerationJobPage = pageOf(GenerationJob, "GenerationJobPage");

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
  .meta({ id: "WorkerGenerationJob" });

const WorkerId = z.string().trim().min(1).max(128).meta({ example: "gpu-eu-1" });

export const ClaimBody = z
  .object({
    workerId: WorkerId,
    models: z
      .array(z.string().min(1).max(100))
      .min(1)
      .max(50)
      .optional()
      .meta({ description: "Only claim jobs for these models (default: any)" }),
  })
  .strict()
  .meta({ id: "ClaimGeneration" });

/** `workerId` fences a worker whose job was re-queued: when given, only the holder may finish the job. */
const HolderWorkerId = WorkerId.optional().meta({
  description: "The claiming worker's id; when given, the request only succeeds for the worker holding the job",
});

export const CompleteBody = z
  .object({
    workerId: HolderWorkerId,
    // Only https: a worker must not be able to hand clients `javascript:` or `file:` links.
    imageUrl: z.url({ protocol: /^https$/, error: "an https URL" }).max(2048),
    thumbnailUrl: z.url({ protocol: /^https$/, error: "an https URL" }).max(2048),
    imageWidth: z.number().int().min(1).max(16_384),
    imageHeight: z.number().int().min(1).max(16_384),
    blurhash: z.string().min(6).max(200).optional(),
    generationTimeMs: z.number().int().min(0).max(DAY_MS),
    computeCostUsd: z.number().min(0).max(1_000).optional(),
    nsfwScore: z.number().min(0).max(1).optional().meta({
      description: "The generator's NSFW estimate (0–1); above POST_NSFW_FLAG_THRESHOLD a post starts flagged",
    }),
    refinedPrompt: z
      .string()
      .trim()
      .min(1)
      .max(2_000)
      .optional()
      .meta({ description: "The prompt as the model ran it" }),
    modelVersion: z.string().trim().min(1).max(100).optional(),
  })
  .strict()
  .meta({ id: "CompleteGeneration" });

export const FailBody = z
  .object({
    workerId: HolderWorkerId,
    error: z.string().trim().min(1).max(10_000).meta({ description: "Stored truncated to 1,000 characters" }),
  })
  .strict()
  .meta({ id: "FailGeneration" });

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
