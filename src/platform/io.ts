import { AsyncLocalStorage } from "node:async_hooks";

/** The stores a request can reach; each call to one is a subrequest with real latency from the edge. */
export type Store = "redis" | "mongo" | "clickhouse" | "r2";

export interface IoTally {
  roundTrips: Record<Store, number>;
  /**
   * Sequential waits per store: the longest chain of calls each started after the previous one had answered.
   * Calls made in parallel share a link, so this is the number of store latencies the request pays in a row.
   */
  waits: Record<Store, number>;
  durationMs: Record<Store, number>;
  /** The deepest chain among calls that have answered so far, per store (a new call extends it by one). */
  settledDepth: Record<Store, number>;
}

const scope = new AsyncLocalStorage<IoTally>();

export function newTally(): IoTally {
  const zero = () => ({ redis: 0, mongo: 0, clickhouse: 0, r2: 0 });
  return { roundTrips: zero(), waits: zero(), durationMs: zero(), settledDepth: zero() };
}

/** Runs `fn` with a fresh tally of store round trips; adapters record into whichever tally is current. */
export function withIoTally<T>(tally: IoTally, fn: () => T): T {
  return scope.run(tally, fn);
}

export function currentTally(): IoTally | undefined {
  return scope.getStore();
}

/** Wraps one round trip to a store so it is counted and timed for the current request or job. */
export async function meter<T>(store: Store, call: () => Promise<T>): Promise<T> {
  const tally = scope.getStore();
  if (!tally) return call();
  tally.roundTrips[store] += 1;
  const depth = tally.settledDepth[store] + 1;
  tally.waits[store] = Math.max(tally.waits[store], depth);
  const started = performance.now();
  try {
    return await call();
  } finally {
    tally.settledDepth[store] = Math.max(tally.settledDepth[store], depth);
    tally.durationMs[store] += performance.now() - started;
  }
}

/**
 * `Server-Timing` value: per store, its round-trip count as `desc` and total time as `dur`, then
 * `{store}.waits` with the number of sequential waits on it.
 */
export function serverTiming(tally: IoTally): string {
  const stores = Object.keys(tally.roundTrips) as Store[];
  return [
    ...stores.map((s) => `${s};desc="${tally.roundTrips[s]}";dur=${tally.durationMs[s].toFixed(1)}`),
    ...stores.map((s) => `${s}.waits;desc="${tally.waits[s]}"`),
  ].join(", ");
}
