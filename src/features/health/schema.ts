import { z } from "@hono/zod-openapi";

export const StoreCheck = z.object({
  ok: z.boolean(),
  latencyMs: z.number(),
  error: z.string().optional().openapi({ description: "Why the check failed (no secrets)" }),
});

export const HealthReport = z
  .object({
    status: z.enum(["ok", "degraded"]),
    checks: z.object({ redis: StoreCheck, mongo: StoreCheck, clickhouse: StoreCheck }),
  })
  .openapi("Health");

export type StoreCheck = z.infer<typeof StoreCheck>;
export type HealthReport = z.infer<typeof HealthReport>;
