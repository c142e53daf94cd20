import { describe, expect, it } from "vitest";
import { meter, newTally, serverTiming, withIoTally } from "../../src/platform/io";

const answersIn = (ms: number) => () => new Promise((r) => setTimeout(r, ms));

describe("store waits", () => {
  it("count parallel calls as one wait and calls in sequence as one each", async () => {
    const tally = newTally();
    await withIoTally(tally, async () => {
      await Promise.all([meter("mongo", answersIn(5)), meter("mongo", answersIn(5)), meter("redis", answersIn(1))]);
      await meter("mongo", answersIn(1));
    });
    expect(tally.roundTrips).toMatchObject({ mongo: 3, redis: 1 });
    expect(tally.waits).toMatchObject({ mongo: 2, redis: 1, clickhouse: 0 });
    expect(serverTiming(tally)).toContain('mongo.waits;desc="2"');
  });
});
