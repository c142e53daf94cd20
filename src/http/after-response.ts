import type { ExecutionContext } from "hono";
import { newTally, withIoTally } from "../platform/io";

/**
 * Runs work after the answer is sent: with the runtime's `waitUntil` on Workers; where a request has no
 * execution context (Deno, apps built in tests) as a promise of its own. The work gets its own round-trip
 * tally, so it never shows in the request's Server-Timing (it is not a wait of the request). It must not
 * reject (it logs its own failures).
 */
export function runAfterResponse(c: { executionCtx: ExecutionContext }, work: () => Promise<void>): void {
  const running = withIoTally(newTally(), work);
  try {
    c.executionCtx.waitUntil(running);
  } catch {
    // No execution context on this runtime: the promise runs on its own.
  }
}
