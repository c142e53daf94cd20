import { describe, expect, it } from "vitest";
import {
  AUTHOR_MOVES,
  freeSlots,
  LIFECYCLE_STATES,
  lifecycleStateOf,
  moveVerdict,
  pickSlot,
  publishAtProblem,
} from "../../src/features/posts/transitions";
import { planBatch, tagsToCount } from "../../src/features/tags/counts";
import { ObjectId } from "../../src/platform/ids";

describe("the lifecycle transition table", () => {
  it("allows exactly the author's moves of seed 004 and refuses every other pair", () => {
    const allowed = LIFECYCLE_STATES.flatMap((from) =>
      LIFECYCLE_STATES.filter((to) => moveVerdict(from, to) === "move").map((to) => `${from}→${to}`),
    );
    expect(allowed.sort()).toEqual(
      [
        "draft→published",
        "draft→scheduled",
        "scheduled→draft",
        "scheduled→published",
        "scheduled→scheduled",
        "published→archived",
        "archived→published",
        "pending_review→archived",
      ].sort(),
    );
    // Nobody asks for a moderation hold, and a held post is not published by its author.
    for (const from of LIFECYCLE_STATES) expect(AUTHOR_MOVES[from]).not.toContain("pending_review");
    expect(moveVerdict("pending_review", "published")).toBe("refused");
    expect(moveVerdict("published", "draft")).toBe("refused");
    expect(moveVerdict("archived", "scheduled")).toBe("refused");
  });

  it("treats asking for the current state as nothing to do (a retry succeeds), except a reschedule", () => {
    expect(moveVerdict("draft", "draft")).toBe("stay");
    expect(moveVerdict("published", "published")).toBe("stay");
    expect(moveVerdict("archived", "archived")).toBe("stay");
    expect(moveVerdict("scheduled", "scheduled")).toBe("move");
  });

  it("shows a published post that moderation holds as pending_review, and a post from before lifecycles as published", () => {
    expect(lifecycleStateOf({ status: "published", moderationStatus: "pending" })).toBe("pending_review");
    expect(lifecycleStateOf({ status: "published", moderationStatus: "flagged" })).toBe("pending_review");
    expect(lifecycleStateOf({ status: "published", moderationStatus: "approved" })).toBe("published");
    expect(lifecycleStateOf({ status: "draft", moderationStatus: "pending" })).toBe("draft");
    expect(lifecycleStateOf({ moderationStatus: "approved" })).toBe("published");
  });
});

describe("publishAt", () => {
  const now = new Date("2026-05-01T12:00:00Z");
  const window = { minLeadSeconds: 300, maxLeadDays: 30 };
  const at = (ms: number) => new Date(now.getTime() + ms);

  it("must lie 5 minutes to 30 days ahead", () => {
    expect(publishAtProblem(at(299_000), now, window)).toMatch(/5 minutes/);
    expect(publishAtProblem(at(-60_000), now, window)).toMatch(/5 minutes/);
    expect(publishAtProblem(at(300_000), now, window)).toBeNull();
    expect(publishAtProblem(at(30 * 86_400_000), now, window)).toBeNull();
    expect(publishAtProblem(at(30 * 86_400_000 + 1), now, window)).toMatch(/30 days/);
  });
});

describe("schedule slots", () => {
  it("offers only the slots below the limit nobody holds, and none when full", () => {
    expect(freeSlots([0, 2], 4)).toEqual([1, 3]);
    expect(freeSlots([0, 1, 2], 3)).toEqual([]);
    expect(pickSlot([], () => 0.5)).toBeNull();
    expect(pickSlot([1, 3], () => 0)).toBe(1);
    expect(pickSlot([1, 3], () => 0.999999)).toBe(3);
  });
});

describe("tag counts", () => {
  const visible = {
    tags: ["sea", "sun"],
    status: "published" as const,
    moderationStatus: "approved" as const,
    deletedAt: null,
    visibility: "public" as const,
    authorShadowBanned: false,
  };

  it("count a post's tags only while everyone can see it", () => {
    expect(tagsToCount(visible)).toEqual(["sea", "sun"]);
    expect(tagsToCount({ ...visible, status: "draft" })).toEqual([]);
    expect(tagsToCount({ ...visible, status: "archived" })).toEqual([]);
    expect(tagsToCount({ ...visible, moderationStatus: "pending" })).toEqual([]);
    expect(tagsToCount({ ...visible, visibility: "followers" })).toEqual([]);
    expect(tagsToCount({ ...visible, authorShadowBanned: true })).toEqual([]);
    expect(tagsToCount({ ...visible, deletedAt: new Date() })).toEqual([]);
  });

  it("move each tag by the difference between what is counted and what should be, summed over the batch", () => {
    const token = new ObjectId();
    const batch = planBatch(
      new ObjectId(),
      [
        { _id: new ObjectId(), ...visible, tags: ["sea", "sky"], countedTags: ["sea", "sun"], tagsDirty: token },
        { _id: new ObjectId(), ...visible, tags: ["sun"], countedTags: [], tagsDirty: token },
        { _id: new ObjectId(), ...visible, status: "archived", countedTags: ["sea"], tagsDirty: token },
      ],
      new Date(),
    );
    const moves = Object.fromEntries(batch.moves.map((m) => [m.tag, m.by]));
    // sun: −1 +1 = 0 (no move), sky: +1, sea: −1 (archived post).
    expect(moves).toEqual({ sky: 1, sea: -1 });
    expect(batch.posts.map((p) => p.countedTags)).toEqual([["sea", "sky"], ["sun"], []]);
    expect(batch.posts.every((p) => p.token?.equals(token))).toBe(true);
  });
});
