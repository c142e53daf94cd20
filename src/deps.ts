import { type Config, loadConfig } from "./config";
import { createDb, type Db } from "./db";
import { type ClickHouseClient, createClickHouse } from "./platform/clickhouse";
import { keys } from "./platform/keys";
import { createLogger, type Logger } from "./platform/logger";
import { DataApiClient } from "./platform/mongo/client";
import { isR2Bucket, type ObjectStore, type R2BucketLike, r2Store, unconfiguredStore } from "./platform/objects";
import { createRealtime, type Realtime, type RoomNamespace } from "./platform/realtime";
import { createRedis, type Redis } from "./platform/redis";
import { type Clock, systemClock } from "./platform/time";

/** Everything a route, service or job needs, built once per isolate and passed explicitly. */
export interface Deps {
  config: Config;
  redis: Redis;
  db: Db;
  clickhouse: ClickHouseClient;
  keys: typeof keys;
  clock: Clock;
  log: Logger;
  /** Conversation events to connected clients (Durable Objects on Workers, Upstash pub/sub elsewhere). */
  realtime: Realtime;
  /** Media objects: R2 through the `MEDIA_BUCKET` binding, else R2's S3 API (MEDIA_S3_*), else unconfigured (503). */
  objects: ObjectStore;
}

export interface RuntimeBindings {
  /** Workers: the Durable Object namespace of conversation rooms (`CONVERSATION_ROOMS` in wrangler.toml). */
  rooms?: RoomNamespace | undefined;
  /** Workers: the media bucket (`MEDIA_BUCKET` in wrangler.toml). */
  mediaBucket?: R2BucketLike | undefined;
  /** Runtimes without the binding (Deno): a media store built from the settings (R2's S3 API). */
  mediaStore?: ((config: Config) => ObjectStore | undefined) | undefined;
}

export function createDeps(
  config: Config,
  overrides: Partial<Pick<Deps, "clock" | "log">> = {},
  bindings: RuntimeBindings = {},
): Deps {
  const timeoutMs = config.storeTimeoutMs;
  const redis = createRedis({ url: config.redis.url, token: config.redis.token, timeoutMs });
  return {
    config,
    redis,
    db: createDb(new DataApiClient({ ...config.dataApi, timeoutMs })),
    clickhouse: createClickHouse({ ...config.clickhouse, timeoutMs }),
    keys,
    clock: overrides.clock ?? systemClock,
    log: overrides.log ?? createLogger(config.logLevel, { service: "circle-api" }),
    realtime: createRealtime({
      rooms: bindings.rooms,
      upstashPubSub: config.messaging.upstashPubSub,
      redis,
      redisUrl: config.redis.url,
      redisToken: config.redis.token,
      channel: keys.conversationChannel,
    }),
    objects: bindings.mediaBucket
      ? r2Store(bindings.mediaBucket, timeoutMs)
      : (bindings.mediaStore?.(config) ?? unconfiguredStore()),
  };
}

const perBindings = new WeakMap<object, Deps>();

/**
 * Deps for a runtime's bindings, built on first use and reused for the isolate's lifetime (the bindings
 * object is stable per isolate). Throws ConfigError naming any bad setting.
 */
export function depsForEnv(env: Record<string, unknown>, runtime: RuntimeBindings = {}): Deps {
  let deps = perBindings.get(env);
  if (!deps) {
    deps = createDeps(loadConfig(env), {}, { ...bindingsOf(env), ...runtime });
    perBindings.set(env, deps);
  }
  return deps;
}

/** The conversation rooms binding, when the runtime has one (a Durable Object namespace: `idFromName` and `get`). */
function roomsOf(env: Record<string, unknown>): RoomNamespace | undefined {
  const binding = env.CONVERSATION_ROOMS as Partial<RoomNamespace> | undefined;
  return typeof binding?.idFromName === "function" && typeof binding.get === "function"
    ? (binding as RoomNamespace)
    : undefined;
}

/** The runtime's bindings among `env` (Workers put them next to the plain-string settings). */
export function bindingsOf(env: Record<string, unknown>): RuntimeBindings {
  return { rooms: roomsOf(env), mediaBucket: isR2Bucket(env.MEDIA_BUCKET) ? env.MEDIA_BUCKET : undefined };
}
