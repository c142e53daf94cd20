import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { GemTransactionDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { isObjectIdHex, newObjectId, ObjectId } from "../../platform/ids";
import { notify } from "../notifications/service";
import { relationsFor } from "../relations/service";
import { isBanned } from "../users/schema";
import { moveGems } from "./ledger";
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
 * Sends gems to another user. Two ledger entries share a transferId: the sender's debit (written first; it
 * fails with 402 and moves nothing when the balance is short) and the receiver's credit (amount − fee), keyed
 * by the transfer, so writing it again is a no-op. If the process dies between the two, the debit stands
 * alone until `completeInterruptedTransfers` (or a retry with the same Idempotency-Key) writes the credit.
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
  const [people, relations] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: [new ObjectId(viewer.id), new ObjectId(recipientId)] } },
      { projection: { username: 1, deletedAt: 1, bannedAt: 1, banExpiresAt: 1, shadowBanned: 1, erasedAt: 1 } },
    ),
    relationsFor(deps, viewer),
  ]);
  const sender = people.find((u) => u._id.toHexString() === viewer.id);
  const recipient = people.find((u) => u._id.toHexString() === recipientId);
  if (!sender || sender.deletedAt) throw ApiError.notFound("Account not found.");
  // Same 404 for missing, deleted, banned, shadow-banned and blocked receivers: others may not learn which.
  if (!recipient || !canReceive(recipient, deps.clock.now()) || relations.blockedWith(recipientId)) {
    throw ApiError.notFound("User not found.");
  }

  const { transfer, ...result } = await transferGift(deps, {
    sender: { id: viewer.id, username: sender.username },
    recipient: { id: recipientId, username: recipient.username },
    amount: body.amount,
    message: body.message ?? null,
    idempotencyKey: ledgerKeys.giftDebit(viewer.id, requestKey),
  });
  return result;
}

/** One gift between two people, as `transferGift` moves it. */
export interface GiftTransfer {
  sender: { id: string; username: string };
  recipient: { id: string; username: string };
  amount: number;
  message: string | null;
  /** The debit's ledger key: one per sender and request (Idempotency-Key), so a retry moves nothing. */
  idempotencyKey: string;
  streamId?: string;
}

/**
 * The transfer itself, once the caller has checked who may give what to whom: the sender's debit (402 and
 * nothing moves when short), then the receiver's credit of amount − fee, keyed by the transfer. A repeat with
 * the same ledger key replays the first transfer; the same key for another gift is a 422.
 */
export async function transferGift(
  deps: Deps,
  gift: GiftTransfer,
): Promise<GiftResult & { transfer: TransferMetadata }> {
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
  const { entry: debit } = await moveGems(deps, {
    userId: new ObjectId(gift.sender.id),
    type: "spend",
    source: "gift",
    amount: -gift.amount,
    referenceType: "gift",
    referenceId: transfer.transferId,
    description: gift.streamId ? `Gift to @${gift.recipient.username}'s stream` : `Gift to @${gift.recipient.username}`,
    metadata: { ...transfer },
    idempotencyKey: gift.idempotencyKey,
  });
  // A replayed debit carries the first request's transfer; the same key for another gift is refused.
  const done = transferOf(debit);
  if (
    done.recipientId !== gift.recipient.id ||
    done.amount !== gift.amount ||
    (done.streamId ?? null) !== (gift.streamId ?? null)
  ) {
    throw new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for another gift.");
  }
  await creditTransfer(deps, done);
  return {
    transaction: toGemTransaction(debit),
    platformFee: done.platformFee,
    payout: done.payout,
    transferId: done.transferId,
    transfer: done,
  };
}

type Receiver = Pick<UserDoc, "deletedAt" | "bannedAt" | "banExpiresAt" | "shadowBanned" | "erasedAt">;

/** Who may be given gems: an account that exists, is not banned or shadow-banned, and was not erased. */
export function canReceive(u: Receiver, now: Date): boolean {
  return !u.deletedAt && !isBanned(u, now) && !u.shadowBanned && !u.erasedAt;
}

export function transferOf(debit: GemTransactionDoc): TransferMetadata {
  return debit.metadata as unknown as TransferMetadata;
}

/** Writes the receiver's side of a transfer (a no-op if it exists) and tells them, once. */
async function creditTransfer(deps: Deps, t: TransferMetadata): Promise<boolean> {
  const { replayed } = await moveGems(deps, {
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
  });
  if (!replayed) {
    await notify(deps, {
      type: "system",
      kind: "gem_earned",
      recipientId: t.recipientId,
      title: `@${t.senderUsername} sent you ${t.payout} gems`,
      body: t.message,
      actionType: "open_profile",
      actionPayload: { userId: t.senderId },
    });
  }
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
