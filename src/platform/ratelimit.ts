import type { Redis } from "./redis";

/**
 * Sliding-window rate limiter (the two-window approximation used by Cloudflare and Upstash): the count of
 * the previous fixed window is weighted by how much of it still overlaps the sliding window. One key per
 * subject holds both windows as hash fields; one EVAL per check (one round trip), using Redis's clock so
 * isolates with skewed clocks agree.
 */
const SLIDING_WINDOW = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = math.floor(now / window)
local counts = redis.call('HMGET', key, current, current - 1)
local cur = tonumber(counts[1] or '0')
local prev = tonumber(counts[2] or '0')
local elapsed = (now % window) / window
local allowed = 0
if prev * (1 - elapsed) + cur < limit then
  allowed = 1
  cur = redis.call('HINCRBY', key, current, 1)
  redis.call('HDEL', key, current - 2)
  redis.call('PEXPIRE', key, window * 2)
end
return {allowed, cur, prev, now}
`;

export interface WindowState {
  allowed: boolean;
  current: number;
  previous: number;
  nowMs: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the current window ends (RateLimit-Reset). */
  resetSeconds: number;
  /** Seconds until a request would be allowed again (Retry-After); 0 when allowed. */
  retryAfterSeconds: number;
}

/** What SLIDING_WINDOW returns: allowed (1/0), current and previous window counts, Redis time in ms. */
type WindowReply = [number, number, number, number];

function decisionOf([allowed, current, previous, nowMs]: WindowReply, limit: number, windowSeconds: number) {
  return decide({ allowed: allowed === 1, current, previous, nowMs }, limit, windowSeconds);
}

export async function checkSlidingWindow(
  redis: Redis,
  key: string,
  limit: number,
  windowSeconds: number,
): Promise<RateLimitDecision> {
  const reply = await redis.eval<[number, number], WindowReply>(SLIDING_WINDOW, [key], [limit, windowSeconds * 1000]);
  return decisionOf(reply, limit, windowSeconds);
}

/**
 * The sliding-window check plus one plain GET in the same pipelined round trip (a cache read, or the auth
 * middleware's session cut-off, read before anyone knows whether the request will need it).
 */
export async function checkSlidingWindowWithGet<T>(
  redis: Redis,
  key: string,
  limit: number,
  windowSeconds: number,
  getKey: string,
): Promise<{ decision: RateLimitDecision; value: T | null }> {
  const pipeline = redis.pipeline();
  pipeline.eval(SLIDING_WINDOW, [key], [limit, windowSeconds * 1000]);
  pipeline.get(getKey);
  const [reply, value] = (await pipeline.exec()) as [WindowReply, T | null];
  return { decision: decisionOf(reply, limit, windowSeconds), value };
}

export interface PiggybackedCheck {
  /** A Redis client whose first `get` also carries the rate-limit check, in the same pipeline. */
  redis: Redis;
  /** The check's decision; runs the check on its own if no `get` carried it. */
  decision(): Promise<RateLimitDecision>;
}

/**
 * A rate-limit check that rides along with the request's first cache read, so a cached response costs one
 * round trip in total. `onDecided` runs as soon as the decision is known (it may throw to refuse the request
 * before any further work); other commands of the returned client behave as usual.
 */
export function piggybackSlidingWindow(
  redis: Redis,
  key: string,
  limit: number,
  windowSeconds: number,
  onDecided: (decision: RateLimitDecision) => void,
): PiggybackedCheck {
  let settled: Promise<RateLimitDecision> | null = null;
  const primed = Object.create(redis) as Redis;
  primed.get = async <T>(cacheKey: string): Promise<T | null> => {
    if (settled) return redis.get<T>(cacheKey);
    const both = checkSlidingWindowWithGet<T>(redis, key, limit, windowSeconds, cacheKey);
    settled = both.then((r) => r.decision);
    const { decision, value } = await both;
    onDecided(decision);
    return value;
  };
  return {
    redis: primed,
    decision: () => {
      settled ??= checkSlidingWindow(redis, key, limit, windowSeconds);
      return settled;
    },
  };
}

/** Several independent windows (e.g. per IP and per account) checked in one pipelined round trip. */
export async function checkSlidingWindows(
  redis: Redis,
  checks: { key: string; limit: number; windowSeconds: number }[],
): Promise<RateLimitDecision[]> {
  const pipeline = redis.pipeline();
  for (const c of checks) pipeline.eval(SLIDING_WINDOW, [c.key], [c.limit, c.windowSeconds * 1000]);
  const replies = (await pipeline.exec()) as WindowReply[];
  return replies.map((reply, i) => decisionOf(reply, checks[i]!.limit, checks[i]!.windowSeconds));
}

/** Pure: turns the window counts into the numbers the RateLimit-* headers carry. */
export function decide(state: WindowState, limit: number, windowSeconds: number): RateLimitDecision {
  const windowMs = windowSeconds * 1000;
  const intoWindow = state.nowMs % windowMs;
  const elapsed = intoWindow / windowMs;
  const weighted = state.previous * (1 - elapsed) + state.current;
  const resetSeconds = Math.max(1, Math.ceil((windowMs - intoWindow) / 1000));
  const remaining = Math.max(0, Math.floor(limit - weighted));
  if (state.allowed) return { allowed: true, limit, remaining, resetSeconds, retryAfterSeconds: 0 };

  // The script admits a request when previous × (1 − elapsed) + current < limit. Wait until that holds: later
  // in this window as the previous window's weight decays, or in the next window (where this window's count
  // becomes the decaying one) if the current window alone is full.
  let waitMs: number;
  if (state.current >= limit || state.previous === 0) {
    const elapsedNeeded = Math.max(0, 1 - limit / state.current);
    waitMs = windowMs - intoWindow + elapsedNeeded * windowMs;
  } else {
    const elapsedNeeded = 1 - (limit - state.current) / state.previous;
    waitMs = Math.max(0, elapsedNeeded * windowMs - intoWindow);
  }
  waitMs += 1; // strictly past the boundary
  return {
    allowed: false,
    limit,
    remaining: 0,
    resetSeconds,
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  };
}
