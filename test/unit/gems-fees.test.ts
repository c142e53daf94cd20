import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config";
import { giftFee } from "../../src/features/gems/gifts";
import { newGiftCardCode } from "../../src/features/gems/shop";
import { unitEnv as testEnv } from "./support/env";

describe("giftFee", () => {
  it("takes floor(amount × percent) and pays the rest", () => {
    expect(giftFee(100, 1_000)).toEqual({ platformFee: 10, payout: 90 });
    expect(giftFee(123, 1_000)).toEqual({ platformFee: 12, payout: 111 });
    expect(giftFee(19, 1_000)).toEqual({ platformFee: 1, payout: 18 });
    expect(giftFee(9, 1_000)).toEqual({ platformFee: 0, payout: 9 });
    expect(giftFee(1_000, 1_250)).toEqual({ platformFee: 125, payout: 875 });
    expect(giftFee(7, 1_250)).toEqual({ platformFee: 0, payout: 7 });
    expect(giftFee(50, 0)).toEqual({ platformFee: 0, payout: 50 });
    expect(giftFee(1, 9_999)).toEqual({ platformFee: 0, payout: 1 });
    expect(giftFee(10_000, 9_999)).toEqual({ platformFee: 9_999, payout: 1 });
  });

  it("never loses or invents a gem and always pays the receiver something", () => {
    for (const bp of [0, 1, 250, 1_000, 3_333, 5_000, 9_999]) {
      for (let amount = 1; amount <= 2_000; amount += 7) {
        const { platformFee, payout } = giftFee(amount, bp);
        expect(Number.isInteger(platformFee) && Number.isInteger(payout)).toBe(true);
        expect(platformFee + payout).toBe(amount);
        expect(platformFee).toBeGreaterThanOrEqual(0);
        expect(payout).toBeGreaterThanOrEqual(1);
        // Exact: the fee is the largest whole number not above the exact share.
        expect(platformFee * 10_000).toBeLessThanOrEqual(amount * bp);
        expect((platformFee + 1) * 10_000).toBeGreaterThan(amount * bp);
      }
    }
  });

  it("refuses amounts and rates it cannot honour", () => {
    for (const amount of [0, -1, 1.5, Number.NaN]) expect(() => giftFee(amount, 1_000)).toThrow(RangeError);
    for (const bp of [-1, 10_000, 12.5]) expect(() => giftFee(100, bp)).toThrow(RangeError);
  });
});

describe("store and gift settings", () => {
  it("turns GIFT_PLATFORM_FEE_PERCENT into basis points", () => {
    expect(loadConfig(testEnv({ GIFT_PLATFORM_FEE_PERCENT: "12.5" })).gifts.platformFeeBasisPoints).toBe(1_250);
    expect(() => loadConfig(testEnv({ GIFT_PLATFORM_FEE_PERCENT: "100" }))).toThrow(/GIFT_PLATFORM_FEE_PERCENT/);
  });

  it("reads a catalog from SHOP_CATALOG and names what is wrong with a bad one", () => {
    const catalog = [
      { sku: "model.flux", kind: "model_unlock", price: 10, title: "Flux", model: "flux" },
      { sku: "card.5", kind: "gift_card", price: 6, title: "Card", value: 5 },
    ];
    expect(loadConfig(testEnv({ SHOP_CATALOG: JSON.stringify(catalog) })).shop.catalog).toEqual(catalog);
    const bad = (items: unknown) => () => loadConfig(testEnv({ SHOP_CATALOG: JSON.stringify(items) }));
    expect(() => loadConfig(testEnv({ SHOP_CATALOG: "not json" }))).toThrow(/SHOP_CATALOG/);
    expect(bad([{ ...catalog[0], model: "dall-e" }])).toThrow(ConfigError);
    expect(bad([{ ...catalog[0], model: "dall-e" }])).toThrow(/model\.flux/);
    expect(bad([catalog[0], catalog[0]])).toThrow(/unique/);
    expect(bad([{ ...catalog[1], value: 7 }])).toThrow(/card\.5/);
    expect(bad([{ ...catalog[0], price: 0 }])).toThrow(/SHOP_CATALOG/);
    expect(bad([{ sku: "x", kind: "boat", price: 1, title: "Boat" }])).toThrow(/SHOP_CATALOG/);
  });
});

describe("gift card codes", () => {
  it("are 16 unambiguous characters in groups of four, and differ", () => {
    const codes = new Set(Array.from({ length: 200 }, newGiftCardCode));
    expect(codes.size).toBe(200);
    for (const code of codes) expect(code).toMatch(/^GC(-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{4}){4}$/);
  });
});
