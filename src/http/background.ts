import type { MiddlewareHandler } from "hono";
import { drainBackground, newBackgroundQueue, withBackgroundQueue } from "../platform/background";
import { newTally, withIoTally } from "../platform/io";
import type { AppEnv } from "./context";

/**
 * Gives each request a background queue (platform/background.ts) and, once the answer is ready, hands what was
 * queued to the runtime: `executionCtx.waitUntil` on Workers (and on Deno, whose entry passes one), otherwise a
 * floating promise. The work gets its own round-trip tally and store budget, so it never shows in the request's
 * Server-Timing and never stacks store timeouts.
 */
export function backgroundWork(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const queue = newBackgroundQueue(c.var.requestId);
    await withBackgroundQueue(queue, next);
    if (queue.tasks.length === 0) return;
    // Its own tally (never in the request's Server-Timing) with the request's caps: a dead cache costs the
    // background work one short timeout, not one per call.
    const config = c.var.deps.config;
    const tally = newTally({
      limitMs: config.requestStoreBudgetMs,
      perCallMs: { redis: config.requestRedisTimeoutMs },
    });
    const work = withIoTally(tally, () => drainBackground(queue));
    try {
      c.executionCtx.waitUntil(work);
    } catch {
      // No execution context (an app called without one, e.g. in tests): the started promise runs on its own.
    }
  };
}
