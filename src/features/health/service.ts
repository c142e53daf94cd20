import type { Deps } from "../../deps";
import type { HealthReport, StoreCheck } from "./schema";

/**
 * Checks the three stores in parallel, each bounded by its own timeout. MongoDB is the source of truth, so
 * without it the API is unhealthy; Redis or ClickHouse down means degraded (requests still work, slower or
 * without analytics).
 */
export async function checkHealth(deps: Deps): Promise<{ report: HealthReport; healthy: boolean }> {
  const timeoutMs = deps.config.healthCheckTimeoutMs;
  const [redis, mongo, clickhouse] = await Promise.all([
    timed(timeoutMs, async () => {
      const pong = await deps.redis.ping();
      if (pong !== "PONG") throw new Error(`unexpected reply ${String(pong)}`);
    }),
    timed(timeoutMs, async () => {
      await deps.db.jobRuns.findOne({ _id: null }, { projection: { _id: 1 } });
    }),
    timed(timeoutMs, async () => {
      const result = await deps.clickhouse.ping();
      if (!result.success) throw result.error;
    }),
  ]);
  const allOk = redis.ok && mongo.ok && clickhouse.ok;
  return { report: { status: allOk ? "ok" : "degraded", checks: { redis, mongo, clickhouse } }, healthy: mongo.ok };
}

async function timed(timeoutMs: number, check: () => Promise<void>): Promise<StoreCheck> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const attempt = check();
    attempt.catch(() => {}); // a check that loses the race must not become an unhandled rejection
    await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, latencyMs: elapsed(started) };
  } catch (error) {
    return { ok: false, latencyMs: elapsed(started), error: error instanceof Error ? error.message : String(error) };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
