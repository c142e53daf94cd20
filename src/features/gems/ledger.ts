import { ApiError } from "../../core/errors";
import { forgetSelfView } from "../../core/standing";
import type { GemTransactionDoc, TransactionSource, TransactionType, UserEffect } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, type ObjectId } from "../../platform/ids";
import { gemsEarned, recordActivity } from "../analytics/activity";
import { countsOnLeaderboard, recordEarnings } from "../leaderboards/service";

/** How many applied entry ids a user keeps to make re-applying an entry a no-op (settlement uses it too). */
export const APPLIED_MEMORY = 200;

export interface GemMovement {
  userId: ObjectId;
  type: TransactionType;
  source: TransactionSource;
  /** Positive to credit, negative to debit. */
  amount: number;
  baseAmount?: number;
  multiplier?: number;
  referenceType?: string;
  referenceId?: string;
  description: string;
  metadata?: Record<string, unknown>;
  /** Same key = same movement: a repeat returns the first result and moves nothing. */
  idempotencyKey: string;
  /**
   * What the movement buys, applied to the user in the same conditional update as the balance (so a purchase
   * and its debit happen together or not at all). Stored on the entry, so completing it later applies it too.
   */
  effect?: UserEffect;
  /**
   * A condition on the user that must hold when the balance moves (e.g. "does not own this model yet"),
   * checked in the same conditional update; if it fails, nothing moves and `GuardFailedError` is thrown.
   */
  guard?: Record<string, unknown>;
}

/** A movement's `guard` did not hold: nothing moved, and the entry is rejected for good. */
export class GuardFailedError extends Error {
  override name = "GuardFailedError";
}

/**
 * The one place gems move. Ledger first: the entry is written (pending) under its unique idempotency key,
 * then the balance moves with a conditional update that also remembers the entry id (so applying it twice is
 * impossible and a debit never overdraws), then the entry is marked applied with the balances it produced.
 * A crash between steps leaves a pending entry that the next attempt with the same key (or the
 * reconciliation job) completes; nothing is lost or applied twice.
 */
export interface MovementResult {
  entry: GemTransactionDoc;
  /** True when an earlier call with the same idempotency key had already applied it (nothing moved now). */
  replayed: boolean;
}

/** A movement's ledger entry before the balance moves (`pending`): what `moveGems` and settlement write. */
export function pendingEntry(m: GemMovement, now: Date): GemTransactionDoc {
  if (!Number.isInteger(m.amount) || m.amount === 0) throw new Error("gem amounts are non-zero integers");
  return {
    _id: newObjectId(),
    userId: m.userId,
    type: m.type,
    source: m.source,
    amount: m.amount,
    balanceBefore: null,
    balanceAfter: null,
    referenceId: m.referenceId ?? null,
    referenceType: m.referenceType ?? null,
    multiplier: m.multiplier ?? 1,
    baseAmount: m.baseAmount ?? Math.abs(m.amount),
    description: m.description,
    metadata: m.metadata ?? {},
    idempotencyKey: m.idempotencyKey,
    effect: m.effect ?? null,
    guard: m.guard ?? null,
    status: "pending",
    createdAt: now,
    appliedAt: null,
  };
}

export async function moveGems(deps: Deps, m: GemMovement): Promise<MovementResult> {
  let entry = pendingEntry(m, deps.clock.now());
  if (!(await deps.db.gemTransactions.insertUnique(entry))) {
    const existing = await deps.db.gemTransactions.findOne({ idempotencyKey: m.idempotencyKey });
    if (!existing) throw new Error(`ledger entry ${m.idempotencyKey} collided but cannot be read back`);
    if (existing.status === "applied") return { entry: existing, replayed: true };
    if (existing.status === "rejected")
      throw existing.rejectedReason === "guard" ? new GuardFailedError() : insufficient();
    entry = existing;
  }
  const applied = await applyEntry(deps, entry);
  // Concurrent callers with one key may both find the entry pending; only the one that moved the balance
  // reports it as its own.
  return { entry: applied.entry, replayed: !applied.movedNow };
}

function insufficient(): ApiError {
  return new ApiError("insufficient_gems", "Not enough gems for this.");
}

/**
 * Moves the balance for a pending entry exactly once and records the balances it produced. `movedNow` says
 * whether this call moved it (false when an earlier or concurrent attempt already had).
 */
export async function applyEntry(
  deps: Deps,
  entry: GemTransactionDoc,
): Promise<{ entry: GemTransactionDoc; movedNow: boolean }> {
  const credit = entry.amount > 0;
  const moved = await deps.db.users.findOneAndUpdate(
    {
      _id: entry.userId,
      ledgerApplied: { $ne: entry._id },
      ...(credit ? {} : { gemBalance: { $gte: -entry.amount } }),
      ...(entry.guard ? { $and: [entry.guard] } : {}),
    },
    {
      ...(entry.effect ?? {}),
      $inc: {
        ...entry.effect?.$inc,
        gemBalance: entry.amount,
        ...(credit ? { totalGemsEarned: entry.amount } : { totalGemsSpent: -entry.amount }),
      },
      $push: { ledgerApplied: { $each: [entry._id], $slice: -APPLIED_MEMORY } },
    },
    { returnDocument: "after", projection: { gemBalance: 1 } },
  );
  const now = deps.clock.now();
  if (moved) {
    const after = moved.gemBalance;
    const applied = {
      status: "applied" as const,
      balanceBefore: after - entry.amount,
      balanceAfter: after,
      appliedAt: now,
    };
    // Keyed on the missing balances, not on `pending`: a concurrent attempt with the same key may already have
    // marked the entry applied (it saw the balance moved), and the balances this update moved must still land.
    await Promise.all([
      deps.db.gemTransactions.updateOne({ _id: entry._id, balanceAfter: null }, { $set: applied }),
      forgetSelfView(deps, entry.userId.toHexString()),
    ]);
    if (countsOnLeaderboard(entry)) await recordEarnings(deps, [entry]);
    await recordActivity(deps, ...gemsEarned([entry]));
    return { entry: { ...entry, ...applied }, movedNow: true };
  }
  // Either a previous attempt already moved the balance (then only the entry needs finishing), or a debit
  // the balance cannot cover.
  const already = await deps.db.users.findOne(
    { _id: entry.userId, ledgerApplied: entry._id },
    { projection: { gemBalance: 1 } },
  );
  if (already) {
    const done = {
      status: "applied" as const,
      appliedAt: now,
      metadata: { ...entry.metadata, completedAfterInterruption: true },
    };
    await deps.db.gemTransactions.updateOne({ _id: entry._id, status: "pending" }, { $set: done });
    // The interrupted attempt may have stopped before its leaderboard update (adding is idempotent per entry).
    if (countsOnLeaderboard(entry)) await recordEarnings(deps, [entry]);
    // The interrupted attempt may not have recorded it for analytics either (a repeat counts once).
    await recordActivity(deps, ...gemsEarned([entry]));
    return { entry: { ...entry, ...done }, movedNow: false };
  }
  const guardFailed =
    entry.guard != null &&
    !(await deps.db.users.findOne({ _id: entry.userId, $and: [entry.guard] }, { projection: { _id: 1 } }));
  if (credit && !guardFailed) throw ApiError.notFound("Account not found.");
  const rejectedReason = guardFailed ? ("guard" as const) : ("insufficient" as const);
  await deps.db.gemTransactions.updateOne(
    { _id: entry._id, status: "pending" },
    { $set: { status: "rejected", rejectedReason, appliedAt: now } },
  );
  throw guardFailed ? new GuardFailedError() : insufficient();
}
