import { describe, expect, it } from "vitest";
import type { RankingConstants } from "../../src/config";
import { loadConfig } from "../../src/config";
import { engagementScore, hotScore, trendingScore } from "../../src/features/ranking/scores";
import { unitEnv } from "./support/env";

const testConfig = (overrides: Record<string, string> = {}) => loadConfig(unitEnv(overrides));

const c: RankingConstants = testConfig().ranking;
const post = (votes: number, views: number, comments = 0, shares = 0) => ({ votes, views, comments, shares });

describe("engagementScore", () => {
  it("weights every kind of engagement by its configured weight", () => {
    expect(engagementScore(post(10, 100, 2, 1), c)).toBeCloseTo(10 * 1 + 2 * 2 + 1 * 3 + 100 * 0.05);
  });
  it("is zero for an untouched post", () => {
    expect(engagementScore(post(0, 0), c)).toBe(0);
  });
});

describe("trendingScore", () => {
  it("decays with age for the same engagement", () => {
    const fresh = trendingScore(post(50, 500), 1, c);
    const day = trendingScore(post(50, 500), 24, c);
    expect(fresh).toBeGreaterThan(day);
    expect(fresh / day).toBeCloseTo(((24 + 2) / (1 + 2)) ** 1.5, 5);
  });
  it("lets a young post with less engagement outrank an old one with more", () => {
    expect(trendingScore(post(20, 100), 2, c)).toBeGreaterThan(trendingScore(post(100, 1000), 48, c));
  });
});

describe("hotScore (Wilson lower bound of votes over views)", () => {
  it("matches the closed form at z = 1.96", () => {
    // p = 0.6, n = 100: (0.6 + 1.96²/200 − 1.96·√((0.24 + 1.96²/400)/100)) / (1 + 1.96²/100) ≈ 0.5020
    expect(hotScore({ votes: 60, views: 100 }, c)).toBeCloseTo(0.502, 3);
  });
  it("ranks a large sample above a tiny one with a higher raw rate", () => {
    expect(hotScore({ votes: 300, views: 500 }, c)).toBeGreaterThan(hotScore({ votes: 3, views: 4 }, c));
  });
  it("is 0 without views and stays within [0, 1]", () => {
    expect(hotScore({ votes: 0, views: 0 }, c)).toBe(0);
    expect(hotScore({ votes: 10, views: 3 }, c)).toBeLessThanOrEqual(1);
    expect(hotScore({ votes: 0, views: 1000 }, c)).toBeGreaterThanOrEqual(0);
  });
});
