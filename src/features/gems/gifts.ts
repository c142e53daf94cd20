import { ApiError } from "../../core/errors";
import { accountFactsOf, forgetSelfView } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import type { GemTransactionDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex, newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { type Notice, notify, notifyLater } from "../notifications/service";
import { defineOwed, owe } from "../owed/effects";
import { relationsFor } from "../relations/service";
import { isBanned } from "../users/schema";
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
  /** A gift during a live stream (features/streams records it on the stream). */
  streamId?: string;
}

/** GIFT_MIN_GEMS ≤ amount ≤ GIFT_MAX_GEMS, else a 400 naming `amount`. */
export function checkGiftAmount(deps: Deps, amount: number): void {
  const { minGems, maxGems } = deps.config.gifts;
  if (amount < minGems || amount > maxGems) {
    throw ApiError.validation(
      [{ path: "amount", message: `between ${minGems} and ${maxGems} gems` }],
      `A gift must be between ${minGems} and ${maxGems} gems.`,
    );
  }
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
  checkGiftAmount(deps, body.amount);
  if (recipientId === viewer.id) {
    throw ApiError.validation([{ path: "id", message: "you cannot send a gift to yourself" }]);
  }
  if (!isObjectIdHex(recipientId)) throw ApiError.notFound("User not found.");
  const [sender, relations] = await Promise.all([accountFactsOf(deps, viewer), relationsFor(deps, viewer)]);
  // Same 404 for missing, deleted, banned, shadow-banned and blocked receivers: others may not learn which.
  if (relations.blockedWith(recipientId)) throw ApiError.notFound("User not found.");
  const { transfer: _, ...result } = await transferGift(deps, {
    sender: { id: viewer.id, username: sender.username },
    recipient: { id: recipientId },
    amount: body.amount,
    message: body.message ?? null,
    idempotencyKey: ledgerKeys.giftDebit(viewer.id, requestKey),
  });
  return result;
}

/** One gift between two people, as `transferGift` moves it. */
export interface GiftTransfer {
  sender: { id: string; username: string };
  /** The receiver's username when the caller has read it; otherwise it is filled in after the answer. */
  recipient: { id: string; username?: string };
  amount: number;
  message: string | null;
  /** The debit's ledger key: one per sender and request (Idempotency-Key), so a retry moves nothing. */
  idempotencyKey: string;
  streamId?: string;
  /** The answer when the receiver cannot receive (is gone, banned, shadow-banned or erased); a 404 by default. */
  notFound?: () => ApiError;
}

/**
 * The transfer itself, once the caller has checked who may give what to whom, waiting on one Data API call: one
 * transaction checks the receiver can receive, writes the sender's debit (it must be covered, else nothing
 * happens and the answer is 402) and the receiver's credit (amount − fee), both applied at once under one
 * transferId, and records what the gift owes after the answer (the entries' balances, the receiver's notice
 * and self view, the debit's description naming them). A repeat of the same ledger key whose answer Redis
 * lost collides with its debit's key and gets the first transfer back; the same key for another gift is a 422.
 */
export async function transferGift(
  deps: Deps,
  gift: GiftTransfer,
): Promise<GiftResult & { transfer: TransferMetadata }> {
  const now = deps.clock.now();
  const { platformFee, payout } = giftFee(gift.amount, deps.config.gifts.platformFeeBasisPoints);
  const transfer: TransferMetadata = {
    transferId: newObjectId().toHexString(),
    senderId: gift.sender.id,
    senderUsername: gift.sender.username,
    recipientId: gift.recipient.id,
    amount: gift.amount,
    platformFee,
    payout,
    message: gift.message,
    ...(gift.streamId ? { streamId: gift.streamId } : {}),
  };
  const receiver = new ObjectId(gift.recipient.id);
  const receivable = receivableNow(now);
  const described = describeDebit(transfer, gift.recipient.username);
  const debit = batchMovement(deps, debitOf(transfer, gift.idempotencyKey, described), now);
  const credit = batchMovement(deps, creditOf(transfer), now, { filter: receivable });
  const owed = owe(deps, [
    followUpsOf([debit, credit]),
    // The request did not read the receiver's name: the debit's description gets it after the answer.
    ...(gift.recipient.username ? [] : [giftDescribed({ debitId: debit.entry._id, recipientId: receiver })]),
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
      throw gift.notFound?.() ?? ApiError.notFound("User not found.");
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
    // This key already made a transfer (or tried to): its first outcome, as the ledger keeps it.
    if (error instanceof DuplicateKeyError && error.failedIndex === 1) return replayGift(deps, gift, transfer);
    throw error;
  }
  owed.committed();
  const [named, , moved] = answers as [{ username: string } | null, unknown, { gemBalance: number } | null];
  await forgetSelfView(deps, gift.sender.id);
  const sent = { ...withBalance(debit.entry, moved), description: describeDebit(transfer, named?.username) };
  return { transaction: toGemTransaction(sent), platformFee, payout, transferId: transfer.transferId, transfer };
}

/** The description of a debit until its receiver's name is filled in after the answer. */
const GIFT_SENT = "Gift sent";

function describeDebit(t: Pick<TransferMetadata, "streamId">, username: string | undefined): string {
  if (!username) return GIFT_SENT;
  return t.streamId ? `Gift to @${username}'s stream` : `Gift to @${username}`;
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

/** Who may be given gems, judged on a loaded account (the transfer itself checks `receivableNow` again). */
export function canReceive(
  u: Pick<UserDoc, "deletedAt" | "bannedAt" | "banExpiresAt" | "shadowBanned" | "erasedAt">,
  now: Date,
): boolean {
  return !u.deletedAt && !isBanned(u, now) && !u.shadowBanned && !u.erasedAt;
}

function debitOf(t: TransferMetadata, idempotencyKey: string, description: string): GemMovement {
  return {
    userId: new ObjectId(t.senderId),
    type: "spend",
    source: "gift",
    amount: -t.amount,
    referenceType: "gift",
    referenceId: t.transferId,
    description,
    metadata: { ...t },
    idempotencyKey,
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
    metadata: {
      transferId: t.transferId,
      senderId: t.senderId,
      amount: t.amount,
      platformFee: t.platformFee,
      ...(t.streamId ? { streamId: t.streamId } : {}),
    },
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
        { $set: { description: describeDebit({}, receiver.username) } },
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
  gift: GiftTransfer,
  transfer: TransferMetadata,
): Promise<GiftResult & { transfer: TransferMetadata }> {
  const { entry } = await moveGems(deps, debitOf(transfer, gift.idempotencyKey, GIFT_SENT));
  // A replayed debit carries the first request's transfer; the same key for another gift is refused.
  const done = transferOf(entry);
  if (
    done.recipientId !== transfer.recipientId ||
    done.amount !== gift.amount ||
    (done.streamId ?? null) !== (gift.streamId ?? null)
  ) {
    throw new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for another gift.");
  }
  await creditTransfer(deps, done);
  return {
    transaction: toGemTransaction(await recordedBalance(deps, entry)),
    platformFee: done.platformFee,
    payout: done.payout,
    transferId: done.transferId,
    transfer: done,
  };
}

export function transferOf(debit: GemTransactionDoc): TransferMetadata {
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
