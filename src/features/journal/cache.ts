import type { Deps } from "../../deps";
import { advanceGenerations, getValue, type RedisBatch, runOp, setValue } from "../../platform/redis-ops";

/**
 * Journal views (calendar months, streak, trends, tags) are cached in Redis under a change counter: the
 * journal's (`journal:gen:{user}`) or one month's (`journal:gen:{user}:{YYYY-MM}`). Every write moves the
 * journal's counter and its month's after it commits, and a cached view is served only while the counter it was
 * computed under is still current. So a reader racing a writer can never bring back a stale view (it stores it
 * under the counter it read before computing, which the write has moved past), and no key pattern is deleted.
 *
 * Counters live twice as long as any view and every write renews them: a counter can only expire (and restart
 * from zero) after every view computed under its old values has expired too.
 */

interface Cached<T> {
  g: number;
  v: T;
}

export interface CacheSpec {
  key: string;
  generationKey: string;
  ttlSeconds: number;
}

/**
 * A view from the cache when current (one Redis round trip, riding the request's first batch), else computed
 * (MongoDB) and cached under the counter read. Redis being down costs freshness of nothing: the view is
 * computed from MongoDB.
 */
export async function cachedView<T>(
  deps: Deps,
  read: RedisBatch,
  spec: CacheSpec,
  compute: () => Promise<T>,
  stillGood: (value: T) => boolean = () => true,
): Promise<T> {
  let generation: number | null = null;
  try {
    const found = await read({
      cached: getValue<Cached<T>>(spec.key),
      generation: getValue<number | string>(spec.generationKey),
    });
    generation = Number(found.generation ?? 0);
    if (found.cached && found.cached.g === generation && stillGood(found.cached.v)) return found.cached.v;
  } catch (error) {
    deps.log.warn("journal cache unreadable; computing from MongoDB", { error: String(error) });
  }
  const value = await compute();
  if (generation !== null) {
    try {
      await runOp(deps.redis, setValue(spec.key, { g: generation, v: value } satisfies Cached<T>, spec.ttlSeconds));
    } catch (error) {
      deps.log.warn("journal view not cached", { error: String(error) });
    }
  }
  return value;
}

/**
 * After a committed write: moves the journal's counter and those of the months it touched, superseding every
 * cached view they cover. Never throws (the write stands); if Redis is unreachable, views are stale for at
 * most their TTL.
 */
export async function journalChanged(deps: Deps, userId: string, months: string[]): Promise<void> {
  const ttl = 2 * Math.max(deps.config.journal.cacheTtlSeconds, deps.config.journal.trendsCacheTtlSeconds);
  const keys = [
    deps.keys.journalGeneration(userId),
    ...[...new Set(months)].map((month) => deps.keys.journalMonthGeneration(userId, month)),
  ];
  try {
    await runOp(deps.redis, advanceGenerations(keys, ttl));
  } catch (error) {
    deps.log.warn("journal caches not superseded; they expire on their own", { userId, error: String(error) });
  }
}
