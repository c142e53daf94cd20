import { describe, expect, it } from "vitest";
import { voteFraudScore } from "../../src/features/fraud/rules";

const rules = { accountsPerIp: 3, accountsPerDevice: 2, youngAccountDays: 14 };
const clean = { accountsOnIp: 1, accountsOnDevice: 1, trustScore: 50, hasDevice: true, accountAgeDays: 400 };

describe("vote fraud score", () => {
  it("is 0 for one account on its own IP and device with ordinary trust", () => {
    expect(voteFraudScore(clean, rules)).toBe(0);
  });

  it("tolerates what a household or a shared phone explains", () => {
    expect(voteFraudScore({ ...clean, accountsOnIp: 3, accountsOnDevice: 2 }, rules)).toBe(0);
  });

  it("grows with every account beyond that, and reaches 1 for a device farm", () => {
    const scores = [3, 4, 5, 6, 9].map((n) => voteFraudScore({ ...clean, accountsOnIp: n }, rules));
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeGreaterThan(scores[i - 1] ?? 0);
    expect(voteFraudScore({ ...clean, accountsOnDevice: 4 }, rules)).toBe(1);
  });

  it("adds a little for low trust and for a missing device id, and stays within [0, 1]", () => {
    expect(voteFraudScore({ ...clean, trustScore: 0 }, rules)).toBeCloseTo(0.3);
    expect(voteFraudScore({ ...clean, hasDevice: false }, rules)).toBeCloseTo(0.1);
    const worst = voteFraudScore(
      { accountsOnIp: 100, accountsOnDevice: 100, trustScore: 0, hasDevice: false, accountAgeDays: 0 },
      rules,
    );
    expect(worst).toBe(1);
  });

  it("counts a brand-new account for less, fading out at FRAUD_YOUNG_ACCOUNT_DAYS", () => {
    expect(voteFraudScore({ ...clean, accountAgeDays: 0 }, rules)).toBeCloseTo(0.3);
    expect(voteFraudScore({ ...clean, accountAgeDays: 7 }, rules)).toBeCloseTo(0.15);
    expect(voteFraudScore({ ...clean, accountAgeDays: 14 }, rules)).toBe(0);
    // Young accounts crowding one address are flagged (≥ 0.7) by the seventh, not the eighth.
    const young = { ...clean, accountAgeDays: 0 };
    expect(voteFraudScore({ ...young, accountsOnIp: 7 }, rules)).toBeGreaterThanOrEqual(0.7);
  });
});
