import { describe, expect, it } from "vitest";
import type { StreamStatus } from "../../src/db";
import {
  canSeeStream,
  compareLive,
  decodeLiveCursor,
  encodeLiveCursor,
  isAbandoned,
  type LivePosition,
  pageLive,
  transition,
  viewerRole,
} from "../../src/features/streams/rules";
import { ObjectId } from "../../src/platform/ids";
import { InvalidCursorError } from "../../src/platform/mongo/paginate";

describe("stream states", () => {
  const table: [StreamStatus, "start" | "end" | "cancel", string][] = [
    ["scheduled", "start", "live*"],
    ["live", "start", "live"],
    ["ended", "start", "stream_over"],
    ["cancelled", "start", "stream_over"],
    ["live", "end", "ended*"],
    ["ended", "end", "ended"],
    ["scheduled", "end", "not_live"],
    ["cancelled", "end", "stream_over"],
    ["scheduled", "cancel", "cancelled*"],
    ["cancelled", "cancel", "cancelled"],
    ["live", "cancel", "is_live"],
    ["ended", "cancel", "stream_over"],
  ];
  it("move scheduled → live → ended, or scheduled → cancelled; repeats change nothing; over is final", () => {
    for (const [from, action, expected] of table) {
      const move = transition(from, action);
      const got = "refused" in move ? move.refused : `${move.to}${move.changes ? "*" : ""}`;
      expect(`${from} ${action} → ${got}`).toBe(`${from} ${action} → ${expected}`);
    }
  });
});

describe("who sees a stream", () => {
  const streamerId = new ObjectId();
  const stream = (status: StreamStatus) => ({ userId: streamerId, status });
  const streamer = { _id: streamerId, deletedAt: null, bannedAt: null, shadowBanned: false };
  const now = new Date("2026-06-01T12:00:00Z");
  const sees = (over: Partial<Parameters<typeof canSeeStream>[0]>) =>
    canSeeStream({
      stream: stream("live"),
      streamer,
      viewerId: new ObjectId().toHexString(),
      blockedWith: () => false,
      now,
      ...over,
    });

  it("is everyone's, but not across a block, nor a banned, shadow-banned or deleted streamer's; the streamer always", () => {
    expect(sees({})).toBe(true);
    expect(sees({ viewerId: undefined })).toBe(true);
    expect(sees({ blockedWith: (id) => id === streamerId.toHexString() })).toBe(false);
    expect(sees({ streamer: { ...streamer, shadowBanned: true } })).toBe(false);
    expect(sees({ streamer: { ...streamer, deletedAt: now } })).toBe(false);
    expect(sees({ streamer: { ...streamer, bannedAt: now } })).toBe(false);
    expect(sees({ streamer: { ...streamer, bannedAt: now, banExpiresAt: new Date(now.getTime() - 1) } })).toBe(true);
    expect(sees({ stream: stream("cancelled") })).toBe(false);
    expect(
      sees({
        viewerId: streamerId.toHexString(),
        stream: stream("cancelled"),
        streamer: { ...streamer, shadowBanned: true },
      }),
    ).toBe(true);
  });

  it("gives the caller their place in it", () => {
    const [cohost, invited, moderator, viewer] = [new ObjectId(), new ObjectId(), new ObjectId(), new ObjectId()];
    const at = new Date();
    const doc = {
      userId: streamerId,
      participants: [
        { userId: cohost, state: "accepted" as const, invitedAt: at, acceptedAt: at },
        { userId: invited, state: "invited" as const, invitedAt: at, acceptedAt: null },
      ],
      moderators: [{ userId: moderator, appointedAt: at }],
    };
    expect([streamerId, cohost, invited, moderator, viewer].map((id) => viewerRole(doc, id.toHexString()))).toEqual([
      "streamer",
      "cohost",
      "viewer",
      "moderator",
      "viewer",
    ]);
  });
});

describe("the live directory's order", () => {
  const id = (n: number) => n.toString(16).padStart(24, "0");
  const at = (viewers: number, startedAt: number, n: number): { position: LivePosition } => ({
    position: { viewers, startedAt, id: id(n) },
  });

  it("puts more current viewers first, then the most recently started", () => {
    const entries = [at(2, 100, 1), at(5, 50, 2), at(2, 300, 3), at(0, 900, 4), at(5, 60, 5)];
    const { items } = pageLive(entries, 10, null);
    expect(items.map((e) => e.position.id)).toEqual([id(5), id(2), id(3), id(1), id(4)]);
    expect(compareLive(at(1, 1, 1).position, at(1, 1, 2).position)).toBeGreaterThan(0);
  });

  it("pages strictly after the cursor, with the counts as they were when the page was cut", () => {
    const entries = Array.from({ length: 7 }, (_, i) => at(i % 3, 1_000 + i, i + 1));
    const all = pageLive(entries, 100, null).items.map((e) => e.position.id);
    const seen: string[] = [];
    let cursor: LivePosition | null = null;
    do {
      const page: ReturnType<typeof pageLive<{ position: LivePosition }>> = pageLive(entries, 3, cursor);
      seen.push(...page.items.map((e) => e.position.id));
      cursor = page.next ? decodeLiveCursor(encodeLiveCursor(page.next)) : null;
    } while (cursor);
    expect(seen).toEqual(all);
  });

  it("refuses cursors it did not issue", () => {
    for (const bad of [
      "",
      "x",
      btoa("[]"),
      btoa(JSON.stringify({ v: -1, s: 1, id: id(1) })),
      btoa(JSON.stringify({ v: 1, s: 1, id: "zz" })),
      btoa(JSON.stringify({ v: 1, s: 1, id: id(1), extra: 1 })),
    ]) {
      expect(() => decodeLiveCursor(bad)).toThrow(InvalidCursorError);
    }
  });
});

describe("abandoned live streams", () => {
  const now = new Date("2026-06-01T12:00:00Z");
  const minutesAgo = (m: number) => now.getTime() - m * 60_000;

  it("are the ones whose hosts have been quiet longer than the timeout and whose encoder is not sending", () => {
    const base = { startedAt: new Date(minutesAgo(60)), now, abandonAfterMs: 5 * 60_000 };
    expect(isAbandoned({ ...base, hostSeenAt: minutesAgo(6) })).toBe(true);
    expect(isAbandoned({ ...base, hostSeenAt: minutesAgo(4) })).toBe(false);
    expect(isAbandoned({ ...base, hostSeenAt: minutesAgo(5) })).toBe(false);
    expect(isAbandoned({ ...base, hostSeenAt: minutesAgo(6), encoderConnected: true })).toBe(false);
    // Never heard from: counted from the start.
    expect(isAbandoned({ ...base, hostSeenAt: 0 })).toBe(true);
    expect(isAbandoned({ ...base, startedAt: new Date(minutesAgo(1)), hostSeenAt: 0 })).toBe(false);
  });
});
