import { ApiError } from "../../core/errors";
import { forgetSelfView } from "../../core/standing";
import type { GemTransactionDoc, OwedEffectDoc, TransactionSource, TransactionType, UserEffect } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { type BatchStep, type BulkOperation, expectMatch } from "../../platform/mongo/client";
import { earnsGems, gemsEarned, recordActivity } from "../analytics/activity";
import { countsOnLeaderboard, recordEarnings } from "../leaderboards/service";
import { defineOwed } from "../owed/effects";

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

/** Balances recorded on the user for entries applied inside a request's batch (see `ledgerBalances`). */
const BALANCES_MEMORY = 50;

/** Fields of the user a movement applied in a batch sets with its balance: update-pipeline expressions. */
export type PipelineEffect = Record<string, unknown>;

/**
 * A movement applied inside the caller's own Data API batch (one call with the write it belongs to, in a
 * transaction): its entry, inserted `applied`, and its balance move, one guarded pipeline update that must
 * match — never twice for one entry (`ledgerApplied`), a debit never overdraws, the movement's guard holds —
 * and records the balance it produced on the user (`ledgerBalances`). When the move does not match, the
 * transaction (entry included) does not happen, and the batch fails with a PreconditionFailedError at `move`.
 *
 * The entry's `balanceBefore`/`balanceAfter` come from the move's answer; the stored entry gets them after the
 * response from the user's record (`gems.balances`, owed with the write), so nothing is lost to a crash.
 */
export interface BatchMovement {
  entry: GemTransactionDoc;
  insert: BatchStep<unknown>;
  move: BatchStep<{ gemBalance: number } | null>;
}

export function batchMovement(
  deps: Deps,
  m: Omit<GemMovement, "effect">,
  now: Date,
  shape: MoveShape = {},
): BatchMovement {
  const entry: GemTransactionDoc = { ...pendingEntry(m, now), status: "applied", appliedAt: now };
  return {
    entry,
    insert: deps.db.gemTransactions.inBatch.insertOne(entry),
    move: expectMatch(
      deps.db.users.inBatch.findOneAndUpdate(
        { ...shape.filter, ...balanceGuard(entry), deletedAt: null },
        [...(shape.before ?? []), { $set: { ...shape.effect, ...balanceMove(entry) } }],
        { returnDocument: "after", projection: { ...shape.projection, gemBalance: 1 } },
      ),
    ) as BatchStep<{ gemBalance: number } | null>,
  };
}

/** What else the balance move's update does to the user: more conditions, earlier pipeline stages, more fields. */
export interface MoveShape {
  filter?: Record<string, unknown>;
  /** Stages before the balance move's (its `effect` may read what they computed). */
  before?: Record<string, unknown>[];
  effect?: PipelineEffect;
  /** More fields for the move's answer. */
  projection?: Record<string, 1>;
}

/** The condition a balance move is applied under: not yet applied, covered (debits), the movement's guard. */
function balanceGuard(entry: GemTransactionDoc): Record<string, unknown> {
  return {
    _id: entry.userId,
    ledgerApplied: { $ne: entry._id },
    ...(entry.amount > 0 ? {} : { gemBalance: { $gte: -entry.amount } }),
    ...(entry.guard ? { $and: [entry.guard] } : {}),
  };
}

/** The balance move as update-pipeline expressions (the balance it produces recorded beside it). */
function balanceMove(entry: GemTransactionDoc): Record<string, unknown> {
  const after = { $add: [{ $ifNull: ["$gemBalance", 0] }, entry.amount] };
  const total = entry.amount > 0 ? "totalGemsEarned" : "totalGemsSpent";
  const recent = (field: string, item: unknown, keep: number) => ({
    $slice: [{ $concatArrays: [{ $ifNull: [`$${field}`, []] }, [item]] }, -keep],
  });
  return {
    gemBalance: after,
    [total]: { $add: [{ $ifNull: [`$${total}`, 0] }, Math.abs(entry.amount)] },
    ledgerApplied: recent("ledgerApplied", { $literal: entry._id }, APPLIED_MEMORY),
    ledgerBalances: recent("ledgerBalances", { id: { $literal: entry._id }, balanceAfter: after }, BALANCES_MEMORY),
  };
}

/** The entry as the move left it: with the balances its answer reports. */
export function withBalance(entry: GemTransactionDoc, moved: { gemBalance?: number } | null): GemTransactionDoc {
  if (moved?.gemBalance === undefined) return entry;
  return { ...entry, balanceBefore: moved.gemBalance - entry.amount, balanceAfter: moved.gemBalance };
}

/**
 * What entries applied in a batch owe after the answer: their stored balances (from the users' records), a
 * place on the leaderboards for earnings that count there (once per entry), the users' cached self views.
 */
export const ledgerFollowUps = defineOwed<{
  entries: {
    id: ObjectId;
    userId: ObjectId;
    amount: number;
    createdAt: Date;
    leaderboard: boolean;
    /** Gems earned, for analytics (`gem_earned`, keyed by entry: recorded again, counted once). */
    earned?: boolean;
  }[];
}>(
  "gems.balances",
  async (deps, { entries }) => {
    const users = await deps.db.users.find(
      { _id: { $in: [...new Set(entries.map((e) => e.userId.toHexString()))].map((id) => new ObjectId(id)) } },
      { projection: { ledgerBalances: 1 } },
    );
    const balanceOf = new Map(
      users.flatMap((u) => (u.ledgerBalances ?? []).map((b) => [b.id.toHexString(), b.balanceAfter] as const)),
    );
    const fills = entries.flatMap((e): BulkOperation<GemTransactionDoc>[] => {
      const after = balanceOf.get(e.id.toHexString());
      if (after === undefined) return [];
      return [
        {
          updateOne: {
            filter: { _id: e.id, balanceAfter: null },
            update: { $set: { balanceBefore: after - e.amount, balanceAfter: after } },
          },
        },
      ];
    });
    const earnings = entries
      .filter((e) => e.earned)
      .map((e) => ({ _id: e.id, userId: e.userId, type: "earn" as const, amount: e.amount, createdAt: e.createdAt }));
    await Promise.all([
      fills.length ? deps.db.gemTransactions.bulkWrite(fills, { ordered: false }) : null,
      recordActivity(deps, ...gemsEarned(earnings)),
      recordEarnings(
        deps,
        entries
          .filter((e) => e.leaderboard)
          .map((e) => ({ _id: e.id, userId: e.userId, amount: e.amount, createdAt: e.createdAt })),
      ),
    ]);
    return { after: () => forgetSelfView(deps, ...new Set(entries.map((e) => e.userId.toHexString()))) };
  },
  ({ entries }) => entries.map((e) => e.userId),
);

/** The follow-ups of these batch movements, to owe with them. */
export function followUpsOf(movements: BatchMovement[]): OwedEffectDoc {
  return ledgerFollowUps({
    entries: movements.map(({ entry }) => ({
      id: entry._id,
      userId: entry.userId,
      amount: entry.amount,
      createdAt: entry.createdAt,
      leaderboard: countsOnLeaderboard(entry),
      earned: earnsGems(entry),
    })),
  });
}

/** The balance an entry applied in a batch produced, from its user's record (a replay's answer); null if gone. */
export async function recordedBalance(deps: Deps, entry: GemTransactionDoc): Promise<GemTransactionDoc> {
  if (entry.balanceAfter !== null || entry.status !== "applied") return entry;
  const user = await deps.db.users.findOne({ _id: entry.userId }, { projection: { ledgerBalances: 1 } });
  const after = user?.ledgerBalances?.find((b) => b.id.equals(entry._id))?.balanceAfter;
  return after === undefined ? entry : { ...entry, balanceBefore: after - entry.amount, balanceAfter: after };
}
