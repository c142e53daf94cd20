import type { Deps } from "../deps";
import { type RedisOp, runOp } from "../platform/redis-ops";
import { bestEffort } from "./best-effort";

/**
 * Reads and writes of caches in front of MongoDB. A cache that cannot be reached is a miss, never an error:
 * the answer then comes from the source of truth (and costs its round trip), and a fill that fails is left
 * for the next reader. Only outages are swallowed (see `bestEffort`); anything else is a bug and throws.
 */
export async function readCache<T>(deps: Deps, op: RedisOp<T>, what: string): Promise<T | null> {
  return (await bestEffort(deps, `${what} read`, () => runOp(deps.redis, op))) ?? null;
}

export async function fillCache(deps: Deps, op: RedisOp<unknown>, what: string): Promise<void> {
  await bestEffort(deps, `${what} fill`, () => runOp(deps.redis, op));
}

/** Drops cached copies after a change; a copy that outlives an outage lasts until its TTL. */
export async function dropCache(deps: Deps, op: RedisOp<unknown>, what: string): Promise<void> {
  await bestEffort(deps, `${what} drop (it expires on its own)`, () => runOp(deps.redis, op));
}
