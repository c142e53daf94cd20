import { fillCache, readCache } from "../../core/cache";
import type { GenerationJobDoc } from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex } from "../../platform/ids";
import { getDocument, setDocument } from "../../platform/redis-ops";

/** What a post copies from the completed job it shows, and whose job it is. */
export type GenerationPostFacts = Pick<
  GenerationJobDoc,
  | "_id"
  | "userId"
  | "prompt"
  | "refinedPrompt"
  | "negativePrompt"
  | "model"
  | "modelVersion"
  | "steps"
  | "cfgScale"
  | "seed"
  | "imageUrl"
  | "thumbnailUrl"
  | "imageWidth"
  | "imageHeight"
  | "blurhash"
  | "generationTimeMs"
  | "hasWatermark"
  | "nsfwScore"
>;

export function postFactsOfJob(job: GenerationPostFacts): GenerationPostFacts {
  return {
    _id: job._id,
    userId: job.userId,
    prompt: job.prompt,
    refinedPrompt: job.refinedPrompt ?? null,
    negativePrompt: job.negativePrompt ?? null,
    model: job.model,
    modelVersion: job.modelVersion ?? null,
    steps: job.steps ?? null,
    cfgScale: job.cfgScale ?? null,
    seed: job.seed ?? null,
    imageUrl: job.imageUrl,
    thumbnailUrl: job.thumbnailUrl,
    imageWidth: job.imageWidth,
    imageHeight: job.imageHeight,
    blurhash: job.blurhash ?? null,
    generationTimeMs: job.generationTimeMs,
    hasWatermark: job.hasWatermark,
    nsfwScore: job.nsfwScore ?? null,
  };
}

/**
 * Caches a completed job's post-facing fields (`generation:post:{id}`, GENERATION_POST_FACTS_TTL_SECONDS), so
 * posting it needs no read of the job: a completed job's output never changes, and whether it is still unposted
 * is not a fact — the post's own transaction checks that. Best effort: without it the post reads the job.
 */
export async function rememberGenerationPostFacts(deps: Deps, job: GenerationPostFacts): Promise<void> {
  await fillCache(
    deps,
    setDocument(
      deps.keys.generationPostFacts(job._id.toHexString()),
      postFactsOfJob(job),
      deps.config.generation.postFactsTtlSeconds,
    ),
    "generation post facts",
  );
}

/** The completed job's post-facing fields from Redis; null when not cached (or Redis cannot answer). */
export async function cachedGenerationPostFacts(deps: Deps, jobId: string): Promise<GenerationPostFacts | null> {
  if (!isObjectIdHex(jobId)) return null;
  return readCache(
    deps,
    getDocument<GenerationPostFacts>(deps.keys.generationPostFacts(jobId)),
    "generation post facts",
  );
}
