import { describe, expect, it } from "vitest";
import { livedIn } from "../../src/features/referrals/service";

const rules = { minAccountAgeHours: 72, minActiveDays: 2 };
const now = new Date("2026-12-10T12:00:00Z");
const account = (createdAt: string, lastActiveDate: string | null, totalPosts = 1) => ({
  createdAt: new Date(createdAt),
  lastActiveDate,
  totalPosts,
});

describe("a referred account has lived", () => {
  it("when old enough, with a post, and active on a later day than its signup", () => {
    expect(livedIn(account("2026-12-06T09:00:00Z", "2026-12-10"), now, rules)).toBe(true);
  });
  it("not on its signup day however much it did", () => {
    expect(livedIn(account("2026-12-06T09:00:00Z", "2026-12-06"), now, rules)).toBe(false);
  });
  it("not before the minimum age, nor without a post", () => {
    expect(livedIn(account("2026-12-08T13:00:00Z", "2026-12-10"), now, rules)).toBe(false);
    expect(livedIn(account("2026-12-06T09:00:00Z", "2026-12-10", 0), now, rules)).toBe(false);
  });
});
