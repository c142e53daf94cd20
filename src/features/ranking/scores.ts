import type { RankingConstants } from "../../config";

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
 * Wilson score lower bound (the `hot` feed) over votes out of views: the share of viewers who voted, taken
 * at the pessimistic end of its confidence interval, so 3 votes from 4 views does not outrank 300 from 500.
 * Votes can exceed recorded views (views are counted loosely), so votes are capped at views.
 */
export function hotScore(e: Pick<Engagement, "votes" | "views">, c: RankingConstants): number {
  const n = Math.max(e.views, e.votes);
  if (n === 0) return 0;
  const p = Math.min(e.votes, n) / n;
  const z = c.hotConfidenceZ;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const margin = z * Math.sqrt((p * (1 - p) + z2 / (4 * n)) / n);
  return (centre - margin) / (1 + z2 / n);
}
