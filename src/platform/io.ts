import { AsyncLocalStorage } from "node:async_hooks";
import { type Store, StoreUnavailableError } from "./errors";

export type { Store };

/**
 * How long one request may wait on stores that fail. Every round trip's timeout is cut to what is left; the
 * time of each failed attempt (a timeout, a refused connection, a read retry) is charged; once it is spent, or
 * once a store has failed for good in this request, further calls to stores fail at once. So a request against
 * a dead store answers (503, or a documented fail-open) within the budget instead of stacking timeouts.
 */
export interface StoreBudget {
  limitMs: number;
  spentMs: number;
  /** A tighter cap per round trip for some stores (Redis inside a request: a slow cache is no cache). */
  perCallMs: Partial<Record<Store, number>>;
  /** Stores that failed for good in this request. */
  down: Set<Store>;
}

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
  /** Set for HTTP requests; jobs run without one (each call has only its own timeout). */
  budget?: StoreBudget;
  /** Records of work the request's writes still owe (outbox), left for after its answer. */
  owed: number;
}

const scope = new AsyncLocalStorage<IoTally>();

export function newTally(budget?: { limitMs: number; perCallMs?: Partial<Record<Store, number>> }): IoTally {
  const zero = () => ({ redis: 0, mongo: 0, clickhouse: 0, r2: 0 });
  return {
    roundTrips: zero(),
    waits: zero(),
    durationMs: zero(),
    settledDepth: zero(),
    owed: 0,
    ...(budget
      ? { budget: { limitMs: budget.limitMs, spentMs: 0, perCallMs: budget.perCallMs ?? {}, down: new Set<Store>() } }
      : {}),
  };
}

/** Runs `fn` with a fresh tally of store round trips; adapters record into whichever tally is current. */
export function withIoTally<T>(tally: IoTally, fn: () => T): T {
  return scope.run(tally, fn);
}

export function currentTally(): IoTally | undefined {
  return scope.getStore();
}

/** Milliseconds of the current request's store budget still unspent (Infinity outside a request). */
export function budgetLeftMs(): number {
  const budget = scope.getStore()?.budget;
  return budget ? Math.max(0, budget.limitMs - budget.spentMs) : Number.POSITIVE_INFINITY;
}

/** Charges waiting that serves a failing store (a retry's backoff) to the request's budget. */
export function chargeBudget(ms: number): void {
  const budget = scope.getStore()?.budget;
  if (budget) budget.spentMs += ms;
}

/** Records that `store` failed for good in this request (after any retries): later calls to it fail at once. */
export function markDown(store: Store): void {
  scope.getStore()?.budget?.down.add(store);
}

/** Whether `store` already failed for good in this request. */
export function isDown(store: Store): boolean {
  return scope.getStore()?.budget?.down.has(store) ?? false;
}

/**
 * One round trip to a store: counted and timed for the current request or job, bounded by `timeoutMs` and by
 * what is left of the request's budget (the signal to pass to the call), refused at once when the store already
 * failed in this request or the budget is spent. A timeout surfaces as StoreUnavailableError; the adapter maps
 * its own transport errors to it, and the time of every such failure is charged to the budget.
 */
export async function roundTrip<T>(
  store: Store,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const tally = scope.getStore();
  const budget = tally?.budget;
  let limitMs = timeoutMs;
  if (budget) {
    if (budget.down.has(store)) {
      throw new StoreUnavailableError(store, "it already failed during this request", { repeated: true });
    }
    const left = budget.limitMs - budget.spentMs;
    if (left <= 0) throw new StoreUnavailableError(store, "the request's store budget is spent", { repeated: true });
    limitMs = Math.min(limitMs, left, budget.perCallMs[store] ?? Number.POSITIVE_INFINITY);
  }
  const signal = AbortSignal.timeout(Math.max(1, Math.floor(limitMs)));
  const depth = tally ? tally.settledDepth[store] + 1 : 0;
  if (tally) {
    tally.roundTrips[store] += 1;
    tally.waits[store] = Math.max(tally.waits[store], depth);
  }
  const started = performance.now();
  try {
    return await call(signal);
  } catch (error) {
    const failure =
      error instanceof StoreUnavailableError
        ? error
        : signal.aborted
          ? new StoreUnavailableError(store, `no answer within ${Math.floor(limitMs)} ms`, { cause: error })
          : null;
    if (!failure) throw error;
    if (budget) budget.spentMs += performance.now() - started;
    throw failure;
  } finally {
    if (tally) {
      tally.settledDepth[store] = Math.max(tally.settledDepth[store], depth);
      tally.durationMs[store] += performance.now() - started;
    }
  }
}

/** Counts a durable record of owed work the current request left for after its answer (see `owed` above). */
export function countOwed(): void {
  const tally = scope.getStore();
  if (tally) tally.owed += 1;
}

/**
 * `Server-Timing` value: per store, its round-trip count as `desc` and total time as `dur`, then
 * `{store}.waits` with the number of sequential waits on it, then `owed` with the records of owed work left.
 */
export function serverTiming(tally: IoTally): string {
  const stores = Object.keys(tally.roundTrips) as Store[];
  return [
    ...stores.map((s) => `${s};desc="${tally.roundTrips[s]}";dur=${tally.durationMs[s].toFixed(1)}`),
    ...stores.map((s) => `${s}.waits;desc="${tally.waits[s]}"`),
    `owed;desc="${tally.owed}"`,
  ].join(", ");
}
