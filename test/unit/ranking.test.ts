import { describe, expect, it } from "vitest";
import type { RankingConstants } from "../../src/config";
import { loadConfig } from "../../src/config";
import {
  engagementScore,
  hotScore,
  rankedEngagementOf,
  scoresOf,
  trendingScore,
} from "../../src/features/ranking/scores";
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

describe("hotScore (Reddit's hot: log10 of engagement plus recency)", () => {
  const at = (iso: string) => new Date(iso);
  it("is the log of engagement plus seconds since the epoch over the time scale", () => {
    // engagement 100 → 2; 2026-01-02T00:00Z is 86,400 s after the epoch → 86,400 / 45,000 = 1.92.
    expect(hotScore(post(100, 0), at("2026-01-02T00:00:00Z"), c)).toBeCloseTo(2 + 86_400 / 45_000, 9);
    // Below one point of engagement the log is floored at 0: recency alone.
    expect(hotScore(post(0, 0), at("2026-01-01T00:00:00Z"), c)).toBe(0);
  });
  it("needs ten times the engagement to keep level with a post one time scale newer", () => {
    const older = hotScore(post(1_000, 0), at("2026-03-01T00:00:00Z"), c);
    const newer = hotScore(post(100, 0), new Date(Date.UTC(2026, 2, 1) + 45_000_000), c);
    expect(older).toBeCloseTo(newer, 9);
  });
  it("ranks a new quiet post above yesterday's moderately engaged one", () => {
    const yesterday = hotScore(post(30, 200), at("2026-05-01T00:00:00Z"), c);
    const today = hotScore(post(2, 10), at("2026-05-02T00:00:00Z"), c);
    expect(today).toBeGreaterThan(yesterday);
  });
  it("keeps the order of two posts as time passes (no recomputation needed)", () => {
    const a = scoresOf(post(50, 0), at("2026-05-01T00:00:00Z"), at("2026-05-01T06:00:00Z"), c);
    const b = scoresOf(post(5, 0), at("2026-05-01T03:00:00Z"), at("2026-05-01T06:00:00Z"), c);
    const aLater = scoresOf(post(50, 0), at("2026-05-01T00:00:00Z"), at("2026-05-09T00:00:00Z"), c);
    expect(aLater.hotScore).toBe(a.hotScore);
    expect(a.hotScore > b.hotScore).toBe(true);
    // …while trending decays with the clock.
    expect(aLater.trendingScore).toBeLessThan(a.trendingScore);
  });
});

describe("rankedEngagementOf", () => {
  const counters = { voteCount: 9, commentCount: 4, shareCount: 2, viewCount: 50 };
  it("ranks by the recounted engagement once the counters job has seen the post", () => {
    expect(rankedEngagementOf({ ...counters, rankedEngagement: { votes: 3, comments: 1, shares: 0 } })).toEqual({
      votes: 3,
      comments: 1,
      shares: 0,
      views: 50,
    });
  });
  it("falls back to the raw counters before that", () => {
    expect(rankedEngagementOf(counters)).toEqual({ votes: 9, comments: 4, shares: 2, views: 50 });
  });
});
