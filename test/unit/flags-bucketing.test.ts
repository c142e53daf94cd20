import { describe, expect, it } from "vitest";
import {
  inRollout,
  murmur3x86_32,
  normalizedValue,
  pickVariant,
  VARIANT_SEED,
} from "../../src/features/flags/bucketing";
import { expectEvery } from "../support/expect";

describe("Unleash-compatible bucketing", () => {
  it("passes Unleash's published normalizedValue vectors", () => {
    expect(normalizedValue("123", "gr1")).toBe(73);
    expect(normalizedValue("999", "groupX")).toBe(25);
    expect(normalizedValue("123", "gr1", 100, VARIANT_SEED)).toBe(96);
    expect(normalizedValue("999", "groupX", 100, VARIANT_SEED)).toBe(60);
  });

  it("matches murmur3 x86_32 reference values", () => {
    expect(murmur3x86_32("", 0)).toBe(0);
    expect(murmur3x86_32("", 1)).toBe(0x514e28b7);
    expect(murmur3x86_32("hello", 0)).toBe(0x248bfa47);
    expect(murmur3x86_32("The quick brown fox jumps over the lazy dog", 0)).toBe(0x2e4ff723);
  });

  it("enables a 30% rollout for 30% ± 2% of 10,000 ids, the same ids every time", () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
    const enabled = ids.filter((id) => inRollout(id, "new_feed", 30));
    expect(enabled.length / ids.length).toBeGreaterThanOrEqual(0.28);
    expect(enabled.length / ids.length).toBeLessThanOrEqual(0.32);
    expect(ids.filter((id) => inRollout(id, "new_feed", 30))).toEqual(enabled);
    // Raising the rollout only adds users.
    const wider = new Set(ids.filter((id) => inRollout(id, "new_feed", 50)));
    expectEvery(enabled, (id) => wider.has(id));
  });

  it("splits variants by weight", () => {
    const variants = [
      { name: "control", weight: 50, config: {} },
      { name: "variant_a", weight: 30, config: {} },
      { name: "variant_b", weight: 20, config: {} },
    ];
    const counts: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) {
      const v = pickVariant(`u${i}`, "exp", variants)!;
      counts[v.name] = (counts[v.name] ?? 0) + 1;
    }
    expect(counts.control! / 10_000).toBeCloseTo(0.5, 1);
    expect(counts.variant_a! / 10_000).toBeCloseTo(0.3, 1);
    expect(counts.variant_b! / 10_000).toBeCloseTo(0.2, 1);
    expect(pickVariant("u1", "exp", [])).toBeNull();
  });
});
