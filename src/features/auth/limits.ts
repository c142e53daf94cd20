import { ApiError } from "../../core/errors";
import type { Deps } from "../../deps";
import { runOps, slidingWindow } from "../../platform/redis-ops";

export interface LimitCheck {
  key: string;
  limit: number;
  windowSeconds: number;
}

/** Several independent sliding windows (per IP, per account) checked in one round trip; any refusal is a 429. */
export async function enforceLimits(deps: Deps, checks: LimitCheck[]): Promise<void> {
  const decisions = await runOps(
    deps.redis,
    Object.fromEntries(checks.map((c, i) => [String(i), slidingWindow(c.key, c.limit, c.windowSeconds)])),
  );
  const denied = Object.values(decisions).find((d) => !d.allowed);
  if (denied) throw ApiError.rateLimited(denied, "attempts");
}

/**
 * Password guesses against one account, wherever they are made (login, password change, email change): one
 * budget, so a stolen access token buys no more guesses than the sign-in form. `account` is the user id (or,
 * at login, a hash of an unknown login name).
 */
export function accountPasswordLimit(deps: Deps, account: string): LimitCheck {
  const l = deps.config.auth.limits;
  return {
    key: deps.keys.rateAuth("login", `account:${account}`),
    limit: l.loginPerAccount,
    windowSeconds: l.loginWindowSeconds,
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
