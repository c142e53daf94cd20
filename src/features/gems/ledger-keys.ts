/**
 * Every ledger idempotency key, built in one place. Keys are stored durably with each entry and are what
 * makes a repeat (a retry, a re-run after a crash, two racing runs) move nothing: a key that changed shape
 * by accident would let an old movement apply again. Tests pin each shape.
 */
export const ledgerKeys = {
  /** The daily check-in reward: once per user and UTC day. */
  checkin: (userId: string, day: string) => `checkin:${userId}:${day}`,
  /** A streak milestone bonus: once per user, streak length and day. */
  streakBonus: (userId: string, streak: number, day: string) => `streak:${userId}:${streak}:${day}`,
  /** The trending bonus: once per post per UTC day. */
  trendingBonus: (postId: string, day: string) => `trending:${postId}:${day}`,
  /** A settlement batch's credit to one author. */
  settlement: (batchId: string, authorId: string) => `settle:${batchId}:${authorId}`,
  /** The referrer's bonus for one referral. */
  referralBonus: (referralId: string) => `referral:${referralId}`,
  /** A shop purchase: one per user and Idempotency-Key, so a retry can never debit twice. */
  purchase: (userId: string, requestKey: string) => `purchase:${userId}:${requestKey}`,
  /** A gift card's redemption: once per code, whoever redeems it. */
  giftCardRedemption: (code: string) => `gift_card:redeem:${code}`,
  /** A gift's debit: one per sender and Idempotency-Key. */
  giftDebit: (senderId: string, requestKey: string) => `gift:${senderId}:${requestKey}`,
  /** A gift during a live stream: one per sender, stream and Idempotency-Key. */
  streamGiftDebit: (senderId: string, streamId: string, requestKey: string) =>
    `stream_gift:${streamId}:${senderId}:${requestKey}`,
  /** A gift's credit to the receiver: one per transfer. */
  giftCredit: (transferId: string) => `gift:credit:${transferId}`,
} as const;
