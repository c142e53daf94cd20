import type { RankingConstants } from "../../config";
import type { PostDoc } from "../../db";
import { HOUR_MS } from "../../platform/time";

/** The counters a post's scores are computed from. */
export interface Engagement {
  votes: number;
  comments: number;
  shares: number;
  views: number;
}

/** Weighted composite of everything people did with a post (the `top` feed). */
export function engagementScore(e: Engagement, c: RankingConstants): number {
  const w = c.weights;
  return w.vote * e.votes + w.comment * e.comments + w.share * e.shares + w.view * e.views;
}

/**
 * Time-decayed engagement (the `trending` feed), Hacker-News style:
 * engagement / (ageHours + offset)^gravity. A post keeps rising only while engagement outpaces its age.
 */
export function trendingScore(e: Engagement, ageHours: number, c: RankingConstants): number {
  const age = Math.max(0, ageHours) + c.trendingAgeOffsetHours;
  return engagementScore(e, c) / age ** c.trendingGravity;
}

/**
 * Reddit's hot rank (`_hot` in reddit's r2/lib/db/_sorts.pyx), applied to our weighted engagement:
 * `log10(max(engagement, 1)) + (createdAt − epoch) / timeScale`. Recency is part of the score itself — a post
 * needs 10× the engagement to rank with one `timeScale` seconds (12.5 h by default) newer — so the order needs
 * no periodic recomputation as time passes, only when engagement moves.
 */
export function hotScore(e: Engagement, createdAt: Date, c: RankingConstants): number {
  const order = Math.log10(Math.max(engagementScore(e, c), 1));
  return order + (createdAt.getTime() / 1000 - HOT_EPOCH_SECONDS) / c.hotTimeScaleSeconds;
}

/** Any fixed instant works (only differences matter); a recent one keeps the numbers small. */
const HOT_EPOCH_SECONDS = Date.UTC(2026, 0, 1) / 1000;

/** All three scores of a post from its qualified engagement and age. */
export function scoresOf(
  e: Engagement,
  createdAt: Date,
  now: Date,
  c: RankingConstants,
): { engagementScore: number; trendingScore: number; hotScore: number } {
  const ageHours = (now.getTime() - createdAt.getTime()) / HOUR_MS;
  return {
    engagementScore: engagementScore(e, c),
    trendingScore: trendingScore(e, ageHours, c),
    hotScore: hotScore(e, createdAt, c),
  };
}

/** What a post is ranked by: its recounted engagement, or its raw counters before the first recount. */
export function rankedEngagementOf(
  p: Pick<PostDoc, "rankedEngagement" | "voteCount" | "commentCount" | "shareCount" | "viewCount">,
): Engagement {
  const ranked = p.rankedEngagement ?? { votes: p.voteCount, comments: p.commentCount, shares: p.shareCount };
  return { ...ranked, views: p.viewCount ?? 0 };
}
