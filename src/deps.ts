import type { Config } from "./config";
import { createDb, type Db } from "./db";
import { type ClickHouseClient, createClickHouse } from "./platform/clickhouse";
import { type Clock, systemClock } from "./platform/clock";
import { keys } from "./platform/keys";
import { createLogger, type Logger } from "./platform/logger";
import { DataApiClient } from "./platform/mongo/client";
import { createRedis, type Redis } from "./platform/redis";

/** Everything a route, service or job needs, built once per isolate and passed explicitly. */
export interface Deps {
  config: Config;
  redis: Redis;
  db: Db;
  clickhouse: ClickHouseClient;
  keys: typeof keys;
  clock: Clock;
  log: Logger;
}

export function createDeps(config: Config, overrides: Partial<Pick<Deps, "clock" | "log">> = {}): Deps {
  const timeoutMs = config.storeTimeoutMs;
  return {
    config,
    redis: createRedis({ url: config.redis.url, token: config.redis.token, timeoutMs }),
    db: createDb(new DataApiClient({ ...config.dataApi, timeoutMs })),
    clickhouse: createClickHouse({ ...config.clickhouse, timeoutMs }),
    keys,
    clock: overrides.clock ?? systemClock,
    log: overrides.log ?? createLogger(config.logLevel, { service: "circle-api" }),
  };
}
