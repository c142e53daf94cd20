import type { MiddlewareHandler } from "hono";
import { drainBackground, newBackgroundQueue, withBackgroundQueue } from "../platform/background";
import { newTally, withIoTally } from "../platform/io";
import type { AppEnv } from "./context";

/**
 * Gives each request a background queue (platform/background.ts) and, once the answer is ready, hands what was
 * queued to the runtime: `executionCtx.waitUntil` on Workers (and on Deno, whose entry passes one), otherwise a
 * floating promise. The work gets its own round-trip tally, so it never shows in the request's Server-Timing.
 */
export function backgroundWork(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const queue = newBackgroundQueue();
    await withBackgroundQueue(queue, next);
    if (queue.tasks.length === 0) return;
    const work = withIoTally(newTally(), () => drainBackground(queue));
    try {
      c.executionCtx.waitUntil(work);
    } catch {
      // No execution context (an app called without one, e.g. in tests): the started promise runs on its own.
    }
  };
}
