import { describe, expect, it } from "vitest";
import { ledgerKeys } from "../../src/features/gems/ledger-keys";

// Ledger keys are stored with every entry and decide what a retry or re-run may move again: a key whose shape
// changed would let an old movement apply a second time. These shapes are the ones already in databases.
describe("ledger idempotency keys", () => {
  it("keep the shapes stored entries carry", () => {
    expect(ledgerKeys.checkin("u1", "2026-11-30")).toBe("checkin:u1:2026-11-30");
    expect(ledgerKeys.streakBonus("u1", 7, "2026-11-30")).toBe("streak:u1:7:2026-11-30");
    expect(ledgerKeys.trendingBonus("p1", "2026-11-30")).toBe("trending:p1:2026-11-30");
    expect(ledgerKeys.settlement("b1", "a1")).toBe("settle:b1:a1");
    expect(ledgerKeys.referralBonus("r1")).toBe("referral:r1");
    expect(ledgerKeys.purchase("u1", "key-1")).toBe("purchase:u1:key-1");
    expect(ledgerKeys.giftCardRedemption("GC-AAAA")).toBe("gift_card:redeem:GC-AAAA");
    expect(ledgerKeys.giftDebit("u1", "key-1")).toBe("gift:u1:key-1");
    expect(ledgerKeys.giftCredit("t1")).toBe("gift:credit:t1");
    expect(ledgerKeys.streamGiftDebit("u1", "s1", "key-1")).toBe("stream_gift:s1:u1:key-1");
  });

  it("never give two kinds of movement the same key", () => {
    const keys = [
      ledgerKeys.checkin("x", "d"),
      ledgerKeys.streakBonus("x", 1, "d"),
      ledgerKeys.trendingBonus("x", "d"),
      ledgerKeys.settlement("x", "d"),
      ledgerKeys.referralBonus("x"),
      ledgerKeys.purchase("x", "d"),
      ledgerKeys.giftCardRedemption("x"),
      ledgerKeys.giftDebit("x", "d"),
      ledgerKeys.giftCredit("x"),
      ledgerKeys.streamGiftDebit("x", "d", "d"),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
