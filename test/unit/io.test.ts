import { describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/platform/errors";
import { budgetLeftMs, markDown, newTally, roundTrip, serverTiming, withIoTally } from "../../src/platform/io";

const answersIn = (ms: number) => () => new Promise((r) => setTimeout(r, ms));
/** A call that never answers until its signal aborts (a paused store). */
const hangs = (signal: AbortSignal) =>
  new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));

describe("store waits", () => {
  it("count parallel calls as one wait and calls in sequence as one each", async () => {
    const tally = newTally();
    await withIoTally(tally, async () => {
      await Promise.all([
        roundTrip("mongo", 1_000, answersIn(5)),
        roundTrip("mongo", 1_000, answersIn(5)),
        roundTrip("redis", 1_000, answersIn(1)),
      ]);
      await roundTrip("mongo", 1_000, answersIn(1));
    });
    expect(tally.roundTrips).toMatchObject({ mongo: 3, redis: 1 });
    expect(tally.waits).toMatchObject({ mongo: 2, redis: 1, clickhouse: 0 });
    expect(serverTiming(tally)).toContain('mongo.waits;desc="2"');
  });
});

describe("the request store budget", () => {
  it("cuts a round trip's timeout to the per-store cap and charges the failure to the budget", async () => {
    const tally = newTally({ limitMs: 1_000, perCallMs: { redis: 30 } });
    await withIoTally(tally, async () => {
      const started = performance.now();
      await expect(roundTrip("redis", 5_000, hangs)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(performance.now() - started).toBeLessThan(500);
      expect(budgetLeftMs()).toBeLessThanOrEqual(1_000 - 25);
    });
  });

  it("gives later calls only what is left, then refuses every store at once", async () => {
    const tally = newTally({ limitMs: 100 });
    await withIoTally(tally, async () => {
      const started = performance.now();
      await expect(roundTrip("mongo", 5_000, hangs)).rejects.toThrow(/no answer within 100 ms/);
      // Whatever crumb of the budget is left, this one gets no more than that.
      await expect(roundTrip("mongo", 5_000, hangs)).rejects.toBeInstanceOf(StoreUnavailableError);
      let called = false;
      const refused = roundTrip("clickhouse", 5_000, async () => {
        called = true;
      });
      await expect(refused).rejects.toMatchObject({ repeated: true });
      expect(called).toBe(false);
      expect(performance.now() - started).toBeLessThan(160);
    });
  });

  it("refuses a store that failed earlier in the request without calling it; healthy answers cost nothing", async () => {
    const tally = newTally({ limitMs: 1_000 });
    await withIoTally(tally, async () => {
      await roundTrip("mongo", 1_000, answersIn(20));
      expect(budgetLeftMs()).toBe(1_000);
      markDown("redis");
      await expect(roundTrip("redis", 1_000, answersIn(1))).rejects.toMatchObject({ store: "redis", repeated: true });
      expect(tally.roundTrips.redis).toBe(0);
    });
  });

  it("leaves jobs (no budget) with each call's own timeout", async () => {
    await withIoTally(newTally(), async () => {
      markDown("redis");
      await expect(roundTrip("redis", 1_000, answersIn(1))).resolves.toBeUndefined();
      expect(budgetLeftMs()).toBe(Number.POSITIVE_INFINITY);
    });
  });
});
