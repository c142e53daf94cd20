import { describe, expect, it } from "vitest";
import { Relations, relationMember } from "../../src/core/relations";

describe("Relations", () => {
  const a = "a".repeat(24);
  const b = "b".repeat(24);
  const c = "c".repeat(24);
  const r = Relations.fromMembers([relationMember.blocking(a), relationMember.blockedBy(b), relationMember.muting(c)]);

  it("treats a block as two-way and a mute as one-way", () => {
    expect(r.blockedWith(a)).toBe(true);
    expect(r.blockedWith(b)).toBe(true);
    expect(r.blockedWith(c)).toBe(false);
    expect(r.isBlocking(a)).toBe(true);
    expect(r.isBlocking(b)).toBe(false);
    expect(r.isMuting(c)).toBe(true);
  });

  it("hides blocked (either way) and muted people, and counts only the caller's own choices", () => {
    expect([a, b, c].every((id) => r.hides(id))).toBe(true);
    expect(r.hiddenIds().sort()).toEqual([a, b, c]);
    expect(r.blockedIds().sort()).toEqual([a, b]);
    expect(r.chosenCount()).toBe(2);
  });

  it("is empty for nobody", () => {
    expect(Relations.none.hides(a)).toBe(false);
    expect(Relations.none.hiddenIds()).toEqual([]);
  });
});
