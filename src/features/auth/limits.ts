import { ApiError } from "../../core/errors";
import type { Deps } from "../../deps";
import { runOps, slidingWindow, type WindowMode } from "../../platform/redis-ops";

export interface LimitCheck {
  key: string;
  limit: number;
  windowSeconds: number;
  /** `check` (default) counts the attempt; `peek` only asks whether the budget has room. */
  mode?: Exclude<WindowMode, "add">;
}

/** Several independent sliding windows (per IP, per account) checked in one round trip; any refusal is a 429. */
export async function enforceLimits(deps: Deps, checks: LimitCheck[]): Promise<void> {
  const decisions = await runOps(
    deps.redis,
    Object.fromEntries(
      checks.map((c, i) => [String(i), slidingWindow(c.key, c.limit, c.windowSeconds, c.mode ?? "check")]),
    ),
  );
  const denied = Object.values(decisions).find((d) => !d.allowed);
  if (denied) throw ApiError.rateLimited(denied, "attempts");
}

/** Counts an attempt that failed in each of these windows (one round trip). */
export async function recordFailure(deps: Deps, checks: LimitCheck[]): Promise<void> {
  await runOps(
    deps.redis,
    Object.fromEntries(checks.map((c, i) => [String(i), slidingWindow(c.key, c.limit, c.windowSeconds, "add")])),
  );
}

/**
 * Wrong-password budgets of one account, wherever the password is asked for (login, password change, email
 * change), so a stolen access token buys no more guesses than the sign-in form. Failures are counted per
 * (account, address) pair — ten from one place lock that place out, not the owner elsewhere — and per account
 * from anywhere, with a far higher cap for guessing spread over many addresses (NIST SP 800-63B §5.2.2: at
 * most 100 consecutive failures); at login a device the account already signed in on is exempt from the
 * latter, so a distributed attack cannot lock the owner out of their own phone. `account` is the user id
 * (or, at login, a hash of an unknown login name).
 */
export function passwordFailureLimits(
  deps: Deps,
  account: string,
  ip: string,
): { fromHere: LimitCheck; fromAnywhere: LimitCheck } {
  const l = deps.config.auth.limits;
  return {
    fromHere: {
      key: deps.keys.rateAuth("login", `pair:${account}:${ip}`),
      limit: l.loginFailuresPerAccountAndIp,
      windowSeconds: l.loginWindowSeconds,
    },
    fromAnywhere: {
      key: deps.keys.rateAuth("login", `account:${account}`),
      limit: l.loginFailuresPerAccount,
      windowSeconds: l.loginWindowSeconds,
    },
  };
}

/**
 * Verification emails one account may have sent (resends and email-change links). The key lives with the
 * other mail limits (`rate:auth:forgot:*`, whose own subjects are address hashes, so they cannot collide).
 */
export function verificationMailLimit(deps: Deps, userId: string): LimitCheck {
  const l = deps.config.auth.limits;
  return {
    key: deps.keys.rateAuth("verify", userId),
    limit: l.verificationMailsPerAccount,
    windowSeconds: l.verificationMailWindowSeconds,
  };
}

export function passwordPolicy(deps: Deps) {
  return { iterations: deps.config.auth.pbkdf2Iterations };
}
