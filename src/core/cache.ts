import type { Deps } from "../deps";
import { type RedisOp, runOp } from "../platform/redis-ops";

/**
 * Reads and writes of caches in front of MongoDB. A cache that cannot be reached is a miss, never an error:
 * the answer then comes from the source of truth (and costs its round trip), and a fill that fails is left
 * for the next reader.
 */
export async function readCache<T>(deps: Deps, op: RedisOp<T>, what: string): Promise<T | null> {
  try {
    return await runOp(deps.redis, op);
  } catch (error) {
    deps.log.warn(`${what}: cache unavailable, reading the store`, { error: String(error) });
    return null;
  }
}

export async function fillCache(deps: Deps, op: RedisOp<unknown>, what: string): Promise<void> {
  try {
    await runOp(deps.redis, op);
  } catch (error) {
    deps.log.warn(`${what}: not cached`, { error: String(error) });
  }
}
