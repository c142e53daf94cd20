import { StoreUnavailableError } from "../platform/errors";
import type { Logger } from "../platform/logger";

/**
 * Work a request does on the side of its answer and must not fail over when a store is down: dropping or
 * filling a cache, moving a live counter, marking a post for the `counters` job in Redis. Each has a repair
 * that does not need the request (a TTL, a job, a rebuild from MongoDB), so after a write has committed its
 * failure must not turn the answer into an error. An outage is logged and `undefined` returned; any other
 * error is a bug and still throws.
 */
export async function bestEffort<T>(
  deps: { log: Logger },
  what: string,
  work: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    // The first failure of a store in a request is worth a warning; the skips it causes after it are not.
    (error.repeated ? deps.log.debug : deps.log.warn)(`${what} skipped: ${error.store} unavailable`, {
      error: error.message,
    });
    return undefined;
  }
}
