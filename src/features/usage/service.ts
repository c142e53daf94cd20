import type { Viewer } from "../../core/viewer";
import type { Deps } from "../../deps";
import type { RateLimitDecision } from "../../platform/ratelimit";
import { getValue, type RedisOp, runOps, slidingWindow } from "../../platform/redis-ops";
import { verificationMailLimit } from "../auth/limits";
import { generationQuota } from "../generations/service";
import { reportLimit } from "../moderation/reports";
import { voteQuota } from "../votes/service";
import type { Usage } from "./schema";

/**
 * Usage per metered feature, read from the very counters that enforce the limits (the features' own quota
 * definitions): the daily generation and vote counters, and the sliding windows of reports and verification
 * emails (read without counting). All in one pipeline, which rides with the rate limit (`prefetch`), so the
 * request costs one Redis round trip in all and no MongoDB call while the standing is cached.
 */
export function usageReads(deps: Deps, userId: string, now: Date): Record<string, RedisOp<unknown>> {
  // The tier only sets the daily limits, which are applied after the read; the counters are the same.
  const reports = reportLimit(deps, userId);
  const mails = verificationMailLimit(deps, userId);
  return {
    generations: getValue<number | string>(generationQuota(deps, userId, "free", now).key),
    votes: getValue<number | string>(voteQuota(deps, userId, "free", now).key),
    reports: slidingWindow(reports.key, reports.limit, reports.windowSeconds, "peek"),
    verification_emails: slidingWindow(mails.key, mails.limit, mails.windowSeconds, "peek"),
  };
}

export async function usageOf(deps: Deps, viewer: Viewer, prefetched?: Record<string, unknown>): Promise<Usage> {
  const now = deps.clock.now();
  const read = prefetched ?? (await runOps(deps.redis, usageReads(deps, viewer.id, now)));
  const endOfDay = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
  const count = (value: unknown) => Math.max(0, Number(value ?? 0) || 0);
  const daily = (feature: "generations" | "votes", limit: number) => ({
    feature,
    used: count(read[feature]),
    limit,
    resetsAt: endOfDay,
  });
  const windowed = (feature: "reports" | "verification_emails") => {
    const decision = read[feature] as RateLimitDecision;
    return {
      feature,
      used: Math.max(0, decision.limit - decision.remaining),
      limit: decision.limit,
      resetsAt: new Date(now.getTime() + decision.resetSeconds * 1000).toISOString(),
    };
  };
  return {
    items: [
      daily("generations", generationQuota(deps, viewer.id, viewer.tier, now).limit),
      daily("votes", voteQuota(deps, viewer.id, viewer.tier, now).limit),
      windowed("reports"),
      windowed("verification_emails"),
    ],
  };
}
