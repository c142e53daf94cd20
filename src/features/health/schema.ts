import { z } from "zod";

export const StoreCheck = z.object({
  ok: z.boolean(),
  latencyMs: z.number(),
  error: z.string().optional().meta({ description: "Why the check failed (no secrets)" }),
});

export const HealthReport = z
  .object({
    status: z.enum(["ok", "degraded"]),
    checks: z.object({ redis: StoreCheck, mongo: StoreCheck, clickhouse: StoreCheck }),
  })
  .meta({ id: "Health" });

export type StoreCheck = z.infer<typeof StoreCheck>;
export type HealthReport = z.infer<typeof HealthReport>;
