import { type ClickHouseClient, createClient } from "@clickhouse/client-web";
import { StoreUnavailableError } from "./errors";
import { markDown, roundTrip } from "./io";

export type { ClickHouseClient };

export interface ClickHouseOptions {
  url: string;
  user: string;
  password: string;
  database: string;
  timeoutMs: number;
}

/**
 * ClickHouse over HTTP; every request is counted for the current request or job and bounded by the request's
 * store budget (see io.ts). A request that gets no HTTP answer is an outage (StoreUnavailableError).
 */
export function createClickHouse(opts: ClickHouseOptions): ClickHouseClient {
  return createClient({
    url: opts.url,
    username: opts.user,
    password: opts.password,
    database: opts.database,
    request_timeout: opts.timeoutMs,
    clickhouse_settings: { date_time_input_format: "best_effort" },
    fetch: async (input, init) => {
      try {
        return await roundTrip("clickhouse", opts.timeoutMs, async (signal) => {
          try {
            return await fetch(input, {
              ...init,
              signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal,
            });
          } catch (error) {
            throw new StoreUnavailableError("clickhouse", String(error), { cause: error });
          }
        });
      } catch (error) {
        if (error instanceof StoreUnavailableError) markDown("clickhouse");
        throw error;
      }
    },
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
