/**
 * The pure half of the sliding-window rate limiter (the Lua half is `slidingWindow` in redis-ops.ts): turns the
 * two windows' counts into the numbers the RateLimit-* headers and Retry-After carry.
 */
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
