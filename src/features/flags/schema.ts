import { z } from "zod";
import { clientJsonObject, ObjectIdString } from "../../core/schemas";

export const FlagName = z.object({ name: z.string().regex(/^[a-z0-9_.-]{1,64}$/, "1–64 of a-z, 0-9, _ . -") });

export const FlagBody = z
  .object({
    description: z.string().max(500).default(""),
    enabled: z.boolean(),
    rolloutPercentage: z.number().int().min(0).max(100).default(100),
    targetTiers: z
      .array(z.enum(["free", "pro", "premium"]))
      .max(3)
      .default([]),
    targetUserIds: z.array(ObjectIdString).max(1000).default([]),
    isExperiment: z.boolean().default(false),
    variants: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z0-9_-]{1,32}$/),
            weight: z.number().int().min(0).max(1000),
            config: clientJsonObject({ maxBytes: 16 * 1024, maxDepth: 16, maxKeyLength: 128 }).default({}),
          })
          .strict(),
      )
      .max(20)
      .default([]),
  })
  .strict()
  .meta({ id: "FeatureFlagInput" });

export const FlagView = FlagBody.extend({ name: z.string(), createdAt: z.string(), updatedAt: z.string() }).openapi(
  "FeatureFlag",
);
export const FlagList = z.object({ items: z.array(FlagView) }).meta({ id: "FeatureFlagList" });
export const EvaluatedFlags = z
  .object({
    flags: z.record(z.string(), z.boolean()),
    variants: z.record(z.string(), z.object({ name: z.string(), config: z.record(z.string(), z.unknown()) })),
  })
  .meta({ id: "EvaluatedFlags" });

export type FlagBody = z.infer<typeof FlagBody>;
export type FlagView = z.infer<typeof FlagView>;
export type FlagList = z.infer<typeof FlagList>;
export type EvaluatedFlags = z.infer<typeof EvaluatedFlags>;

/** The rule set as cached in Redis and in isolate memory (plain JSON). */
export interface FlagRule {
  name: string;
  enabled: boolean;
  rolloutPercentage: number;
  targetTiers: string[];
  targetUserIds: string[];
  variants: { name: string; weight: number; config: Record<string, unknown> }[];
}
