import type { Viewer } from "../../core/viewer";
import type { TransactionType } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { activeReferralBonus } from "../users/schema";
import { loadSelf } from "../users/service";
import { type GemBalance, type GemTransactionPage, toGemTransaction } from "./schema";

export async function gemBalance(deps: Deps, viewer: Viewer): Promise<GemBalance> {
  const user = await loadSelf(deps, viewer);
  const bonusUntil = activeReferralBonus(user, deps.clock.now());
  return {
    balance: user.gemBalance ?? 0,
    totalEarned: user.totalGemsEarned ?? 0,
    totalSpent: user.totalGemsSpent ?? 0,
    multiplier: bonusUntil ? deps.config.gems.referralMultiplier : 1,
    multiplierExpiresAt: bonusUntil?.toISOString() ?? null,
  };
}

/** The caller's applied ledger entries, newest first, optionally of one type. */
export async function gemTransactions(
  deps: Deps,
  viewer: Viewer,
  query: { limit: number; cursor?: string | undefined; type?: TransactionType | undefined },
): Promise<GemTransactionPage> {
  const filter: Record<string, unknown> = { userId: new ObjectId(viewer.id), status: "applied" };
  if (query.type) filter.type = query.type;
  const page = await paginate(deps.db.gemTransactions, {
    filter,
    order: { direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  return { items: page.items.map(toGemTransaction), nextCursor: page.nextCursor };
}
