/** The stores a request can reach; each call to one is a subrequest with real latency from the edge. */
export type Store = "redis" | "mongo" | "clickhouse" | "r2";

/** A store could not be reached or timed out; the HTTP layer answers 503 with Retry-After. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  /** Refused without a call: the store already failed in this request (that failure was the one to log). */
  readonly repeated: boolean;
  constructor(
    readonly store: Store,
    message: string,
    options?: { cause?: unknown; repeated?: boolean },
  ) {
    super(`${store} unavailable: ${message}`, options);
    this.repeated = options?.repeated ?? false;
  }
}
