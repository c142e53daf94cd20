import { ApiError } from "../../core/errors";
import { accountFactsOf, forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { GemTransactionDoc } from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex, newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { type Notice, notify, notifyLater } from "../notifications/service";
import { defineOwed, owe } from "../owed/effects";
import { relationsFor } from "../relations/service";
import { batchMovement, followUpsOf, type GemMovement, moveGems, recordedBalance, withBalance } from "./ledger";
import { ledgerKeys } from "./ledger-keys";
import { type GiftBody, type GiftResult, toGemTransaction } from "./schema";

/** Gift debits checked per read by `completeInterruptedTransfers`. */

/**
 * The platform's cut of a gift, in whole gems: floor(amount × basis points / 10,000), integer math only.
 * Rounding down favours the receiver; the fee is always < amount (basis points < 10,000), so payout ≥ 1.
 */
export function giftFee(amount: number, feeBasisPoints: number): { platformFee: number; payout: number } {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError("gift amounts are positive integers");
  if (!Number.isInteger(feeBasisPoints) || feeBasisPoints < 0 || feeBasisPoints >= 10_000) {
    throw new RangeError("fee basis points are integers in [0, 10000)");
  }
  const platformFee = Math.floor((amount * feeBasisPoints) / 10_000);
  return { platformFee, payout: amount - platformFee };
}

/**
 * What a gift's debit carries in `metadata`: everything needed to write (or later complete) its credit. The
 * platform's fee is recorded here and only here, so the platform's total is the sum of `platformFee` over
 * applied gift debits (`giftPlatformFees`), and for every transfer amount = payout + platformFee.
 */
export interface TransferMetadata {
  transferId: string;
  senderId: string;
  senderUsername: string;
  recipientId: string;
  amount: number;
  platformFee: number;
  payout: number;
  message: string | null;
}

/**
 * Sends gems to another user, waiting on one Data API call: one transaction checks the receiver can receive,
 * writes the sender's debit (it must be covered, else nothing happens and the answer is 402) and the receiver's
 * credit (amount − fee), both applied at once under one transferId, and records what the gift owes after the
 * answer (the entries' balances, the receiver's notice and self view, the debit's description naming them).
 * A repeat of the same Idempotency-Key whose answer Redis lost collides with its debit's key and gets the
 * first transfer back. Debits from before gifts were one transaction may stand alone; `completeInterruptedTransfers`
 * writes their credit.
 */
export async function sendGift(
  deps: Deps,
  viewer: Viewer,
  recipientId: string,
  body: GiftBody,
  requestKey: string,
): Promise<GiftResult> {
  const { minGems, maxGems, platformFeeBasisPoints } = deps.config.gifts;
  if (body.amount < minGems || body.amount > maxGems) {
    throw ApiError.validation(
      [{ path: "amount", message: `between ${minGems} and ${maxGems} gems` }],
      `A gift must be between ${minGems} and ${maxGems} gems.`,
    );
  }
  if (recipientId === viewer.id) {
    throw ApiError.validation([{ path: "id", message: "you cannot send a gift to yourself" }]);
  }
  if (!isObjectIdHex(recipientId)) throw ApiError.notFound("User not found.");
  const [sender, relations] = await Promise.all([accountFactsOf(deps, viewer), relationsFor(deps, viewer)]);
  // Same 404 for missing, deleted, banned, shadow-banned and blocked receivers: others may not learn which.
  if (relations.blockedWith(recipientId)) throw ApiError.notFound("User not found.");

  const now = deps.clock.now();
  const { platformFee, payout } = giftFee(body.amount, platformFeeBasisPoints);
  const transfer: TransferMetadata = {
    transferId: newObjectId().toHexString(),
    senderId: viewer.id,
    senderUsername: sender.username,
    recipientId,
    amount: body.amount,
    platformFee,
    payout,
    message: body.message ?? null,
  };
  const receiver = new ObjectId(recipientId);
  const receivable = receivableNow(now);
  const debit = batchMovement(deps, debitOf(viewer.id, transfer, requestKey, GIFT_SENT), now);
  const credit = batchMovement(deps, creditOf(transfer), now, { filter: receivable });
  const owed = owe(deps, [
    followUpsOf([debit, credit]),
    giftDescribed({ debitId: debit.entry._id, recipientId: receiver }),
    notifyLater(giftNotice(transfer)),
  ]);
  let answers: unknown[];
  try {
    answers = await deps.db.batch(
      [
        expectMatch(deps.db.users.inBatch.findOne({ _id: receiver, ...receivable }, { projection: { username: 1 } })),
        debit.insert,
        debit.move,
        credit.insert,
        credit.move,
        owed.step,
      ],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof PreconditionFailedError && (error.failedIndex === 0 || error.failedIndex === 4)) {
      throw ApiError.notFound("User not found.");
    }
    // The balance cannot cover it: nothing moved. The rejected debit is kept, so the same key answers the same.
    if (error instanceof PreconditionFailedError && error.failedIndex === 2) {
      await deps.db.gemTransactions.insertUnique({
        ...debit.entry,
        status: "rejected",
        rejectedReason: "insufficient",
      });
      throw new ApiError("insufficient_gems", "Not enough gems for this.");
    }
    // This Idempotency-Key already made a transfer (or tried to): its first outcome, as the ledger keeps it.
    if (error instanceof DuplicateKeyError && error.failedIndex === 1)
      return replayGift(deps, viewer, body, transfer, requestKey);
    throw error;
  }
  owed.committed();
  const [named, , moved] = answers as [{ username: string } | null, unknown, { gemBalance: number } | null];
  await forgetSelfView(deps, viewer.id);
  const sent = { ...withBalance(debit.entry, moved), description: giftToDescription(named?.username) };
  return { transaction: toGemTransaction(sent), platformFee, payout, transferId: transfer.transferId };
}

/** The description of a debit until its receiver's name is filled in after the answer. */
const GIFT_SENT = "Gift sent";

function giftToDescription(username: string | undefined): string {
  return username ? `Gift to @${username}` : GIFT_SENT;
}

/** Who may receive a gift now: a live account, not banned (or its ban is over), not shadow-banned, not erased. */
function receivableNow(now: Date): Record<string, unknown> {
  return {
    deletedAt: null,
    erasedAt: null,
    shadowBanned: { $ne: true },
    $or: [{ bannedAt: null }, { banExpiresAt: { $ne: null, $lte: now } }],
  };
}

function debitOf(senderId: string, t: TransferMetadata, requestKey: string, description: string): GemMovement {
  return {
    userId: new ObjectId(senderId),
    type: "spend",
    source: "gift",
    amount: -t.amount,
    referenceType: "gift",
    referenceId: t.transferId,
    description,
    metadata: { ...t },
    idempotencyKey: ledgerKeys.giftDebit(senderId, requestKey),
  };
}

function creditOf(t: TransferMetadata): GemMovement {
  return {
    userId: new ObjectId(t.recipientId),
    type: "earn",
    source: "gift",
    amount: t.payout,
    referenceType: "gift",
    referenceId: t.transferId,
    description: `Gift from @${t.senderUsername}`,
    metadata: { transferId: t.transferId, senderId: t.senderId, amount: t.amount, platformFee: t.platformFee },
    idempotencyKey: ledgerKeys.giftCredit(t.transferId),
  };
}

/** "@sender sent you N gems": one notice per transfer (a retry joins it rather than adding another). */
function giftNotice(t: TransferMetadata): Notice {
  return {
    type: "system",
    kind: "gem_earned",
    recipientId: t.recipientId,
    title: `@${t.senderUsername} sent you ${t.payout} gems`,
    body: t.message,
    aggregationKey: `gift:${t.transferId}`,
    actionType: "open_profile",
    actionPayload: { userId: t.senderId },
  };
}

/** Names the receiver in the debit's description once the gift is in (the request did not read their name). */
const giftDescribed = defineOwed<{ debitId: ObjectId; recipientId: ObjectId }>(
  "gift.described",
  async (deps, d) => {
    const receiver = await deps.db.users.findOne({ _id: d.recipientId }, { projection: { username: 1 } });
    if (receiver) {
      await deps.db.gemTransactions.updateOne(
        { _id: d.debitId, description: GIFT_SENT },
        { $set: { description: giftToDescription(receiver.username) } },
      );
    }
    return undefined;
  },
  (d) => [d.recipientId],
);

/**
 * A gift whose debit key exists already: the first request's transfer, through the ledger's own replay (a
 * rejected debit answers 402 again; one from before gifts were one transaction gets its credit written now).
 */
async function replayGift(
  deps: Deps,
  viewer: Viewer,
  body: GiftBody,
  transfer: TransferMetadata,
  requestKey: string,
): Promise<GiftResult> {
  const { entry } = await moveGems(deps, debitOf(viewer.id, transfer, requestKey, GIFT_SENT));
  // A replayed debit carries the first request's transfer; the same key for another gift is refused.
  const done = transferOf(entry);
  if (done.recipientId !== transfer.recipientId || done.amount !== body.amount) {
    throw new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for another gift.");
  }
  await creditTransfer(deps, done);
  return {
    transaction: toGemTransaction(await recordedBalance(deps, entry)),
    platformFee: done.platformFee,
    payout: done.payout,
    transferId: done.transferId,
  };
}

function transferOf(debit: GemTransactionDoc): TransferMetadata {
  return debit.metadata as unknown as TransferMetadata;
}

/** Writes the receiver's side of a transfer (a no-op if it exists) and tells them, once. */
async function creditTransfer(deps: Deps, t: TransferMetadata): Promise<boolean> {
  const { replayed } = await moveGems(deps, creditOf(t));
  if (!replayed) await notify(deps, giftNotice(t));
  return !replayed;
}

/**
 * Reconciliation: finds applied gift debits since `since` whose credit is missing (the process died between
 * the two writes) and writes those credits. Safe to run any time, concurrently with requests: the credit's
 * ledger key makes each one happen once. Costs 2 MongoDB reads per 500 debits plus the writes of the
 * credits it completes. A credit that cannot be written (receiver erased) is logged and counted as failed.
 */
export async function completeInterruptedTransfers(
  deps: Deps,
  since: Date,
): Promise<{ completed: number; failed: number }> {
  let completed = 0;
  let failed = 0;
  let after: ObjectId | null = null;
  for (;;) {
    const debits: GemTransactionDoc[] = await deps.db.gemTransactions.find(
      {
        source: "gift",
        type: "spend",
        status: "applied",
        createdAt: { $gte: since },
        ...(after ? { _id: { $gt: after } } : {}),
      },
      { sort: { _id: 1 }, limit: deps.config.gems.reconcile.transfersPerPage, projection: { metadata: 1 } },
    );
    if (debits.length === 0) break;
    const transfers = debits.map(transferOf);
    const credits = await deps.db.gemTransactions.find(
      { idempotencyKey: { $in: transfers.map((t) => ledgerKeys.giftCredit(t.transferId)) }, status: "applied" },
      { projection: { idempotencyKey: 1 } },
    );
    const credited = new Set(credits.map((c) => c.idempotencyKey));
    for (const t of transfers.filter((t) => !credited.has(ledgerKeys.giftCredit(t.transferId)))) {
      try {
        if (await creditTransfer(deps, t)) completed += 1;
      } catch (error) {
        failed += 1;
        deps.log.error("gift credit could not be completed", { transferId: t.transferId, error: String(error) });
      }
    }
    if (debits.length < deps.config.gems.reconcile.transfersPerPage) break;
    after = debits[debits.length - 1]?._id ?? null;
  }
  return { completed, failed };
}

/**
 * The platform's gift fees: the sum of `platformFee` over applied gift debits, optionally only since a date
 * or from some senders. One aggregation.
 */
export async function giftPlatformFees(
  deps: Deps,
  filter: { since?: Date; senderIds?: string[] } = {},
): Promise<number> {
  const match: Record<string, unknown> = { source: "gift", type: "spend", status: "applied" };
  if (filter.since) match.createdAt = { $gte: filter.since };
  if (filter.senderIds) match.userId = { $in: filter.senderIds.map((id) => new ObjectId(id)) };
  const [row] = await deps.db.gemTransactions.aggregate<{ total: number }>([
    { $match: match },
    { $group: { _id: null, total: { $sum: "$metadata.platformFee" } } },
  ]);
  return row?.total ?? 0;
}
