import { type Config, loadConfig } from "./config";
import { createDb, type Db } from "./db";
import { type ClickHouseClient, createClickHouse } from "./platform/clickhouse";
import { keys } from "./platform/keys";
import { createLogger, type Logger } from "./platform/logger";
import { DataApiClient } from "./platform/mongo/client";
import { isR2Bucket, type ObjectStore, r2Store, unconfiguredStore } from "./platform/objects";
import { s3Store } from "./platform/objects-s3";
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
    objects: overrides.objects ?? s3StoreFromConfig(config, timeoutMs) ?? unconfiguredStore(),
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
    const objects = objectStoreOf(env);
    deps = createDeps(loadConfig(env), objects ? { objects } : {});
    perBindings.set(env, deps);
  }
  return deps;
}

/**
 * The media bucket a runtime binds (`[[r2_buckets]] binding = "MEDIA_BUCKET"` in wrangler.toml); without one,
 * createDeps falls back to the S3 API settings (Deno), else to an unconfigured store.
 */
export function objectStoreOf(env: Record<string, unknown>): ObjectStore | undefined {
  return isR2Bucket(env.MEDIA_BUCKET) ? r2Store(env.MEDIA_BUCKET) : undefined;
}

function s3StoreFromConfig(config: Config, timeoutMs: number): ObjectStore | undefined {
  const { endpoint, accessKeyId, secretAccessKey, bucket, region } = config.media.s3;
  if (!endpoint || !accessKeyId || !secretAccessKey) return undefined;
  return s3Store({ endpoint, bucket, region, accessKeyId, secretAccessKey, timeoutMs });
}
