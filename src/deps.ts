import { type Config, loadConfig } from "./config";
import { createDb, type Db } from "./db";
import { type ClickHouseClient, createClickHouse } from "./platform/clickhouse";
import { keys } from "./platform/keys";
import { createLogger, type Logger } from "./platform/logger";
import { DataApiClient } from "./platform/mongo/client";
import { isR2Bucket, type ObjectStore, r2Store, unconfiguredStore } from "./platform/objects";
import { createRedis, type Redis } from "./platform/redis";
import { type Clock, systemClock } from "./platform/time";

/** Everything a route, service or job needs, built once per isolate and passed explicitly. */
export interface Deps {
  config: Config;
  redis: Redis;
  db: Db;
  clickhouse: ClickHouseClient;
  /** Media objects (R2 through the `MEDIA_BUCKET` binding; unconfigured where there is none). */
  objects: ObjectStore;
  keys: typeof keys;
  clock: Clock;
  log: Logger;
}

export function createDeps(config: Config, overrides: Partial<Pick<Deps, "clock" | "log" | "objects">> = {}): Deps {
  const timeoutMs = config.storeTimeoutMs;
  return {
    config,
    redis: createRedis({ url: config.redis.url, token: config.redis.token, timeoutMs }),
    db: createDb(new DataApiClient({ ...config.dataApi, timeoutMs })),
    clickhouse: createClickHouse({ ...config.clickhouse, timeoutMs }),
    objects: overrides.objects ?? unconfiguredStore(),
    keys,
    clock: overrides.clock ?? systemClock,
    log: overrides.log ?? createLogger(config.logLevel, { service: "circle-api" }),
  };
}

const perBindings = new WeakMap<object, Deps>();

/**
 * Deps for a runtime's bindings, built on first use and reused for the isolate's lifetime (the bindings
 * object is stable per isolate). Throws ConfigError naming any bad setting.
 */
export function depsForEnv(env: Record<string, unknown>): Deps {
  let deps = perBindings.get(env);
  if (!deps) {
    deps = createDeps(loadConfig(env), { objects: objectStoreOf(env) });
    perBindings.set(env, deps);
  }
  return deps;
}

/** The media bucket a runtime binds (`[[r2_buckets]] binding = "MEDIA_BUCKET"` in wrangler.toml), if any. */
export function objectStoreOf(env: Record<string, unknown>): ObjectStore {
  return isR2Bucket(env.MEDIA_BUCKET) ? r2Store(env.MEDIA_BUCKET) : unconfiguredStore();
}
