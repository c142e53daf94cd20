import type { GenerationJobDoc } from "../../src/db";
import { newGenerationJobDoc } from "../../src/features/generations/documents";
import { newObjectId } from "../../src/platform/ids";

/** A job document as POST /v1/generations writes it (the feature's own factory), for tests that seed the queue. */
export function jobDoc(model: string, overrides: Partial<GenerationJobDoc> = {}): GenerationJobDoc {
  return {
    ...newGenerationJobDoc({
      userId: newObjectId(),
      userTier: "free",
      prompt: "seeded prompt",
      model,
      priority: 1,
      hasWatermark: true,
      createdAt: new Date(Date.now() - 3_600_000),
    }),
    ...overrides,
  };
}
