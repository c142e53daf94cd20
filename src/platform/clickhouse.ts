import { type ClickHouseClient, createClient } from "@clickhouse/client-web";
import { StoreUnavailableError } from "./errors";
import { meter } from "./io";

export type { ClickHouseClient };

export interface ClickHouseOptions {
  url: string;
  user: string;
  password: string;
  database: string;
  timeoutMs: number;
}

/** ClickHouse over HTTP; every request is counted for the current request or job (see io.ts). */
export function createClickHouse(opts: ClickHouseOptions): ClickHouseClient {
  return createClient({
    url: opts.url,
    username: opts.user,
    password: opts.password,
    database: opts.database,
    request_timeout: opts.timeoutMs,
    clickhouse_settings: { date_time_input_format: "best_effort" },
    fetch: (input, init) => meter("clickhouse", () => fetch(input, init)),
  });
}

/** Network-level failures (as opposed to ClickHouse answering with an error) mean the store is down. */
export function asClickHouseOutage(error: unknown): unknown {
  if (error instanceof Error && !("code" in error && typeof (error as { code: unknown }).code === "string")) {
    if (/fetch|network|timeout|abort|connect/i.test(`${error.name} ${error.message}`)) {
      return new StoreUnavailableError("clickhouse", error.message, { cause: error });
    }
  }
  return error;
}
