import { AsyncLocalStorage } from "node:async_hooks";

/** The stores a request can reach; each call to one is a subrequest with real latency from the edge. */
export type Store = "redis" | "mongo" | "clickhouse";

export interface IoTally {
  roundTrips: Record<Store, number>;
  durationMs: Record<Store, number>;
}

const scope = new AsyncLocalStorage<IoTally>();

export function newTally(): IoTally {
  return { roundTrips: { redis: 0, mongo: 0, clickhouse: 0 }, durationMs: { redis: 0, mongo: 0, clickhouse: 0 } };
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
  const started = performance.now();
  try {
    return await call();
  } finally {
    tally.durationMs[store] += performance.now() - started;
  }
}

/** `Server-Timing` value: one entry per store with its round-trip count as `desc` and total time as `dur`. */
export function serverTiming(tally: IoTally): string {
  return (Object.keys(tally.roundTrips) as Store[])
    .map((s) => `${s};desc="${tally.roundTrips[s]}";dur=${tally.durationMs[s].toFixed(1)}`)
    .join(", ");
}
