import { describe, expect, it } from "vitest";
import { collapseIdFor, groupMessage, summaryMessage } from "../../src/features/push/compose";
import {
  capWindow,
  localMinutes,
  type OwedPush,
  type PushRecipient,
  planPushes,
  quietHoursEnd,
  resolveTimeZone,
} from "../../src/features/push/rules";

const at = (iso: string) => new Date(iso);

describe("quiet hours", () => {
  it("are read in the given zone, with the start inclusive and the end exclusive", () => {
    const quiet = { start: "22:00", end: "07:00" };
    expect(quietHoursEnd(at("2026-05-01T21:59:00Z"), quiet, "UTC")).toBeNull();
    expect(quietHoursEnd(at("2026-05-01T22:00:00Z"), quiet, "UTC")).toEqual(at("2026-05-02T07:00:00Z"));
    expect(quietHoursEnd(at("2026-05-02T06:59:30Z"), quiet, "UTC")).toEqual(at("2026-05-02T07:00:00Z"));
    expect(quietHoursEnd(at("2026-05-02T07:00:00Z"), quiet, "UTC")).toBeNull();
    // 23:30 UTC is 01:30 in Berlin (summer time): quiet until 07:00 Berlin = 05:00 UTC.
    expect(quietHoursEnd(at("2026-05-01T23:30:00Z"), quiet, "Europe/Berlin")).toEqual(at("2026-05-02T05:00:00Z"));
    expect(quietHoursEnd(at("2026-05-01T12:00:00Z"), { start: "09:00", end: "17:00" }, "UTC")).toEqual(
      at("2026-05-01T17:00:00Z"),
    );
    expect(quietHoursEnd(at("2026-05-01T12:00:00Z"), null, "UTC")).toBeNull();
  });

  it("end at the local wall-clock time across a daylight-saving change", () => {
    // Berlin springs forward on 2026-03-29 at 02:00 → 03:00: 22:00–07:00 that night lasts 8 hours.
    const night = { start: "22:00", end: "07:00" };
    expect(quietHoursEnd(at("2026-03-28T21:00:00Z"), night, "Europe/Berlin")).toEqual(at("2026-03-29T05:00:00Z"));
    // And falls back on 2026-10-25 at 03:00 → 02:00: 07:00 local is 06:00 UTC.
    expect(quietHoursEnd(at("2026-10-24T20:00:00Z"), night, "Europe/Berlin")).toEqual(at("2026-10-25T06:00:00Z"));
    expect(localMinutes(at("2026-10-25T06:00:00Z"), "Europe/Berlin")).toBe(7 * 60);
  });

  it("fall back to UTC when no (or no valid) time zone is stored", () => {
    expect(resolveTimeZone(undefined)).toBe("UTC");
    expect(resolveTimeZone("Mars/Olympus_Mons")).toBe("UTC");
    expect(resolveTimeZone("America/New_York")).toBe("America/New_York");
  });
});

describe("the hourly cap's window", () => {
  it("is the UTC clock hour", () => {
    expect(capWindow(at("2026-05-01T08:59:59.999Z"))).toEqual({
      hour: "2026-05-01T08",
      endsAt: at("2026-05-01T09:00:00Z"),
    });
  });
});

describe("planPushes", () => {
  const reachable: PushRecipient = { reachable: true, pushEnabled: true, marketing: false, quietUntil: null };
  const ends = at("2026-05-01T09:00:00Z");
  const owed = (id: string, minute: number, extra: Partial<OwedPush> = {}): OwedPush => ({
    id,
    updatedAt: at(`2026-05-01T08:${String(minute).padStart(2, "0")}:00Z`),
    held: false,
    marketing: false,
    ...extra,
  });

  it("pushes each group on its own, newest first, within the budget", () => {
    expect(planPushes(reachable, [owed("a", 1), owed("b", 5)], 10, ends)).toEqual({
      individual: ["b", "a"],
      fold: [],
      drop: [],
      hold: null,
      pushes: 2,
    });
  });

  it("folds what exceeds the budget into one summary, so the budget is never exceeded", () => {
    const plan = planPushes(reachable, [owed("a", 1), owed("b", 2), owed("c", 3), owed("d", 4)], 2, ends);
    expect(plan).toMatchObject({ individual: ["d"], fold: ["c", "b", "a"], pushes: 2 });
    expect(planPushes(reachable, [owed("a", 1), owed("b", 2)], 1, ends)).toMatchObject({
      individual: [],
      fold: ["b", "a"],
      pushes: 1,
    });
  });

  it("holds everything until the window ends when the budget is spent", () => {
    expect(planPushes(reachable, [owed("a", 1)], 0, ends)).toMatchObject({
      hold: { ids: ["a"], until: ends },
      pushes: 0,
    });
  });

  it("folds anything held earlier together with what is new", () => {
    const plan = planPushes(reachable, [owed("a", 1, { held: true }), owed("b", 2)], 10, ends);
    expect(plan).toMatchObject({ individual: [], fold: ["b", "a"], pushes: 1 });
    // A single held one goes as itself.
    expect(planPushes(reachable, [owed("a", 1, { held: true })], 10, ends)).toMatchObject({ individual: ["a"] });
  });

  it("holds until quiet hours end, whatever the budget", () => {
    const quiet = { ...reachable, quietUntil: at("2026-05-01T10:00:00Z") };
    expect(planPushes(quiet, [owed("a", 1)], 10, ends)).toMatchObject({
      hold: { ids: ["a"], until: at("2026-05-01T10:00:00Z") },
      pushes: 0,
    });
  });

  it("drops everything for someone with pushes off or no way to reach them, and promos without consent", () => {
    expect(planPushes({ ...reachable, pushEnabled: false }, [owed("a", 1)], 10, ends)).toMatchObject({
      drop: ["a"],
      pushes: 0,
    });
    expect(planPushes({ ...reachable, reachable: false }, [owed("a", 1)], 10, ends)).toMatchObject({ drop: ["a"] });
    const mixed = [owed("promo", 3, { marketing: true }), owed("vote", 2)];
    expect(planPushes(reachable, mixed, 10, ends)).toMatchObject({ individual: ["vote"], drop: ["promo"], pushes: 1 });
    expect(planPushes({ ...reachable, marketing: true }, mixed, 10, ends)).toMatchObject({
      individual: ["promo", "vote"],
      drop: [],
    });
  });
});

describe("push messages", () => {
  const group = {
    notificationId: "n1",
    type: "vote",
    aggregationKey: "vote:6650f0c2a1b2c3d4e5f60718",
    aggregationCount: 5,
    title: "ada and 4 others voted on your post",
    body: null,
    imageUrl: "https://cdn.example/p.thumb.png",
    actionType: "open_post",
    actionPayload: { postId: "6650f0c2a1b2c3d4e5f60718", from: "reserved by FCM" },
  };

  it("collapse on every platform by aggregation key and carry the unread count as the badge", () => {
    const message = groupMessage("tok", group, 3);
    expect(message).toEqual({
      token: "tok",
      notification: { title: group.title, image: group.imageUrl },
      data: {
        postId: group.actionPayload.postId,
        notificationId: "n1",
        type: "vote",
        aggregationKey: group.aggregationKey,
        aggregationCount: "5",
        actionType: "open_post",
      },
      android: {
        collapse_key: group.aggregationKey,
        notification: { tag: group.aggregationKey, notification_count: 3 },
      },
      apns: {
        headers: { "apns-collapse-id": group.aggregationKey },
        payload: { aps: { badge: 3, "thread-id": group.aggregationKey } },
      },
      webpush: { notification: { tag: group.aggregationKey } },
    });
  });

  it("keep collapse ids within APNs' 64 bytes, one per key", () => {
    const long = `custom:${"x".repeat(100)}`;
    const id = collapseIdFor(long);
    expect(id.length).toBeLessThanOrEqual(64);
    expect(collapseIdFor(long)).toBe(id);
    expect(collapseIdFor(`${long}y`)).not.toBe(id);
    expect(collapseIdFor("vote:abc")).toBe("vote:abc");
  });

  it("summarize held notifications in one replaceable push", () => {
    const summary = summaryMessage("tok", 5, ["a voted", "b followed you", "c replied", "d commented"], 7);
    expect(summary.notification).toEqual({
      title: "5 new notifications",
      body: "a voted · b followed you · c replied · and 2 more",
    });
    expect(summary.android).toMatchObject({ notification: { tag: "summary", notification_count: 7 } });
  });
});
