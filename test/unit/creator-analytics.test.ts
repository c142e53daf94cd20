import { describe, expect, it } from "vitest";
import { gemsEarned, stableEventId } from "../../src/features/analytics/activity";
import { attributionLine, attributionOf, cleanReferrer } from "../../src/features/analytics/attribution";
import { analyticsZone } from "../../src/features/analytics/creator";
import { daysOf, totalsOf, zeroFilled } from "../../src/features/analytics/series";
import { ObjectId } from "../../src/platform/ids";

describe("creator analytics series", () => {
  it("has every day of the range, in order, with zeros where nothing happened", () => {
    const series = zeroFilled("2026-02-27", "2026-03-02", ["views", "gems"] as const, [
      { date: "2026-03-01", views: "3", gems: 12 },
      { date: "2026-02-27", views: 1 },
    ]);
    expect(series).toEqual([
      { date: "2026-02-27", views: 1, gems: 0 },
      { date: "2026-02-28", views: 0, gems: 0 },
      { date: "2026-03-01", views: 3, gems: 12 },
      { date: "2026-03-02", views: 0, gems: 0 },
    ]);
    expect(totalsOf(["views", "gems"] as const, series)).toEqual({ views: 4, gems: 12 });
  });

  it("walks leap days and year ends", () => {
    expect(daysOf("2028-02-28", "2028-03-01")).toEqual(["2028-02-28", "2028-02-29", "2028-03-01"]);
    expect(daysOf("2026-12-31", "2027-01-01")).toEqual(["2026-12-31", "2027-01-01"]);
    expect(daysOf("2026-05-05", "2026-05-05")).toEqual(["2026-05-05"]);
  });

  it("counts days in a zone the runtime knows, UTC otherwise", () => {
    expect(analyticsZone("Europe/Paris")).toBe("Europe/Paris");
    expect(analyticsZone(undefined)).toBe("UTC");
    expect(analyticsZone("asia/kolkata")).toMatch(/^Asia\/(Kolkata|Calcutta)$/);
    expect(analyticsZone("Mars/Olympus_Mons")).toBe("UTC");
    expect(analyticsZone("+05:30")).toBe("UTC");
  });
});

describe("attribution", () => {
  it("keeps a web referrer's page but not its query, fragment or credentials", () => {
    expect(cleanReferrer("https://user:pw@www.example.com/some/page?token=secret&utm_source=x#top")).toBe(
      "https://www.example.com/some/page",
    );
    expect(cleanReferrer("http://example.org")).toBe("http://example.org/");
    // Not a web address: an app id or a Play install-referrer string is kept as sent.
    expect(cleanReferrer("android-app://com.example.app")).toBe("android-app://com.example.app");
    expect(cleanReferrer("utm_source=google-play&utm_medium=organic")).toBe(
      "utm_source=google-play&utm_medium=organic",
    );
  });

  it("stores what the app sent, and nothing when it sent nothing", () => {
    expect(attributionOf(undefined)).toBeNull();
    expect(attributionOf({})).toBeNull();
    expect(attributionOf({ source: "tiktok", referrer: "https://t.example/v/1?s=2" })).toEqual({
      source: "tiktok",
      medium: null,
      campaign: null,
      referrer: "https://t.example/v/1",
    });
  });

  it("reports a source's day-7 rate over the signups whose seventh day has ended", () => {
    expect(attributionLine({ source: "ads", signups: "10", day7_eligible: "8", day7: "2" })).toEqual({
      source: "ads",
      signups: 10,
      day7Eligible: 8,
      day7: 2,
      day7Rate: 0.25,
    });
    expect(attributionLine({ source: "", signups: 3, day7_eligible: 0, day7: 0 })).toEqual({
      source: null,
      signups: 3,
      day7Eligible: 0,
      day7: 0,
      day7Rate: null,
    });
    expect(attributionLine({ source: "x", signups: 3, day7_eligible: 3, day7: 1 }).day7Rate).toBe(0.3333);
  });
});

describe("stable event ids", () => {
  it("are RFC 9562 version 8 UUIDs, the same for the same input and different for any other", () => {
    const id = new ObjectId().toHexString();
    const uuid = stableEventId("9e4e00", id);
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stableEventId("9e4e00", id.toUpperCase())).toBe(uuid);
    expect(stableEventId("9e4e01", id)).not.toBe(uuid);
    // Lossless: the tag and all 24 digits of the id are in it.
    expect(uuid.replace(/-/g, "").replace(/^(.{12})8(.{3})a/, "$1$2")).toBe(`9e4e00${id}`);
    const ids = Array.from({ length: 2000 }, () => stableEventId("9e4e00", new ObjectId().toHexString()));
    expect(new Set(ids).size).toBe(2000);
  });

  it("key gem_earned by ledger entry, for credits only", () => {
    const userId = new ObjectId();
    const entry = { _id: new ObjectId(), userId, amount: 7, createdAt: new Date("2026-03-01T10:00:00Z") };
    const [earned, ...rest] = gemsEarned([
      { ...entry, type: "earn" },
      { ...entry, _id: new ObjectId(), type: "spend", amount: -7 },
      { ...entry, _id: new ObjectId(), type: "refund", amount: 7 },
    ]);
    expect(rest).toEqual([]);
    expect(earned).toMatchObject({ event: "gem_earned", actorId: null, ownerId: userId.toHexString(), amount: 7 });
    expect(gemsEarned([{ ...entry, type: "earn" }])[0]?.eventId).toBe(earned?.eventId);
  });
});
