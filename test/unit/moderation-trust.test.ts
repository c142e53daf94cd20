import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import {
  clampTrust,
  mayAutoHide,
  overThreshold,
  reporterAccuracy,
  reportThreshold,
  reportWeight,
} from "../../src/features/moderation/trust";
import { unitEnv } from "./support/env";

const testConfig = (overrides: Record<string, string> = {}) => loadConfig(unitEnv(overrides));

const rules = { accuracyMinReports: 5, reporterFullWeightDays: 30, newReporterFactor: 0.2 };
const standing = (trustScore: number | null, reportsActioned = 0, reportsDismissed = 0) => ({
  trustScore,
  reportsActioned,
  reportsDismissed,
});

describe("clampTrust", () => {
  it("keeps scores within 0–100 and treats nonsense as the starting 50", () => {
    expect([clampTrust(-5), clampTrust(0), clampTrust(73), clampTrust(140), clampTrust(Number.NaN)]).toEqual([
      0, 0, 73, 100, 50,
    ]);
  });
});

describe("reporter age", () => {
  it("grows a reporter's weight from a fifth at sign-up to full at 30 days", () => {
    const at = (days: number) => reportWeight({ ...standing(50), accountAgeDays: days }, rules);
    expect([at(0), at(15), at(30), at(300)]).toEqual([0.2, 0.6, 1, 1]);
  });
  it("lets a crossing hide content at once only with an established reporter among the reports", () => {
    expect(mayAutoHide([0.2, 0.2, 0.2, 0.2], 0.75)).toBe(false);
    expect(mayAutoHide([0.2, 0.2, 1], 0.75)).toBe(true);
    expect(mayAutoHide([], 0.75)).toBe(false);
  });
});

describe("reportWeight", () => {
  it("weighs a new account's report 1 and scales with trust (0 → 0, 100 → 2)", () => {
    expect(reportWeight(standing(50), rules)).toBe(1);
    expect(reportWeight(standing(null), rules)).toBe(1);
    expect(reportWeight(standing(100), rules)).toBe(2);
    expect(reportWeight(standing(25), rules)).toBe(0.5);
    expect(reportWeight(standing(0), rules)).toBe(0);
  });

  it("ignores accuracy until the reporter has enough resolved reports", () => {
    expect(reporterAccuracy(standing(50, 0, 4), rules)).toBeNull();
    expect(reportWeight(standing(50, 0, 4), rules)).toBe(1);
  });

  it("then multiplies by 2 × accuracy: accurate reporters count double, false reporters barely count", () => {
    expect(reporterAccuracy(standing(50, 8, 2), rules)).toBeCloseTo(0.8);
    expect(reportWeight(standing(50, 10, 0), rules)).toBe(2);
    expect(reportWeight(standing(50, 5, 5), rules)).toBe(1);
    expect(reportWeight(standing(50, 8, 2), rules)).toBe(1.6);
    expect(reportWeight(standing(50, 0, 10), rules)).toBe(0.1);
    expect(reportWeight(standing(100, 10, 0), rules)).toBe(4);
  });

  it("gives shadow-banned reporters no weight", () => {
    expect(reportWeight({ ...standing(100, 10, 0), shadowBanned: true }, rules)).toBe(0);
  });
});

describe("reportThreshold", () => {
  const t = { reportThreshold: 5, newAccountDays: 7, newAccountThresholdFactor: 0.5 };
  const now = new Date("2026-11-23T12:00:00Z");
  const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);

  it("is the configured threshold for established accounts", () => {
    expect(reportThreshold(daysAgo(30), now, t)).toBe(5);
    expect(reportThreshold(daysAgo(7), now, t)).toBe(5);
  });

  it("is lower for content of accounts younger than the configured days", () => {
    expect(reportThreshold(daysAgo(6.9), now, t)).toBe(2.5);
    expect(reportThreshold(now, now, t)).toBe(2.5);
  });

  it("uses the defaults from config (5, 7 days, × 0.5)", () => {
    const m = testConfig().moderation;
    expect([m.reportThreshold, m.newAccountDays, m.newAccountThresholdFactor]).toEqual([5, 7, 0.5]);
  });
});

describe("overThreshold", () => {
  it("crosses at exactly the threshold, tolerant of floating-point sums", () => {
    expect(overThreshold(4.99, 5)).toBe(false);
    expect(overThreshold(5, 5)).toBe(true);
    expect(overThreshold(0.1 + 0.2 + 4.7, 5)).toBe(true);
  });

  it("five new-account reporters (weight 1 each) reach the default threshold; four do not", () => {
    const weights = Array.from({ length: 5 }, () => reportWeight(standing(50), rules));
    const sum = (n: number) => weights.slice(0, n).reduce((a, b) => a + b, 0);
    expect(overThreshold(sum(4), 5)).toBe(false);
    expect(overThreshold(sum(5), 5)).toBe(true);
  });
});
