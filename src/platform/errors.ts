/** The stores a request can reach; each call to one is a subrequest with real latency from the edge. */
export type Store = "redis" | "mongo" | "clickhouse";

/** A store could not be reached or timed out; the HTTP layer answers 503 with Retry-After. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  constructor(
    readonly store: Store,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${store} unavailable: ${message}`, options);
  }
}
