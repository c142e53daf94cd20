import { describe, expect, it } from "vitest";
import type { Entry, SearchResult } from "../../src/features/journal/schema";
import { ObjectId } from "../../src/platform/ids";
import { type ApiResponse, call, roundTrips } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { completedGeneration } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

const today = (zone = "UTC") => new Date().toLocaleDateString("en-CA", { timeZone: zone });
const daysAgo = (n: number, zone = "UTC") => {
  const [y, m, d] = today(zone).split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d - n)).toISOString().slice(0, 10);
};

const write = (u: TestUser, body: Record<string, unknown>) =>
  call<Entry>("POST", "/v1/journal/entries", { token: u.accessToken, body: { title: "A day", content: "", ...body } });
const read = (u: TestUser, id: string) => call<Entry>("GET", `/v1/journal/entries/${id}`, { token: u.accessToken });
const edit = (u: TestUser, id: string, body: Record<string, unknown>, ifMatch?: string) =>
  call<Entry>("PATCH", `/v1/journal/entries/${id}`, {
    token: u.accessToken,
    body,
    headers: ifMatch === undefined ? {} : { "if-match": ifMatch },
  });
const remove = (u: TestUser, id: string, ifMatch?: string) =>
  call("DELETE", `/v1/journal/entries/${id}`, {
    token: u.accessToken,
    headers: ifMatch === undefined ? {} : { "if-match": ifMatch },
  });
const restore = (u: TestUser, id: string) =>
  call<Entry>("POST", `/v1/journal/entries/${id}/restore`, { token: u.accessToken });
const get = <T>(u: TestUser, path: string) => call<T>("GET", path, { token: u.accessToken });

async function entry(u: TestUser, body: Record<string, unknown>): Promise<Entry> {
  const res = await write(u, body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

describe("POST /v1/journal/entries", () => {
  it("writes the day's entry: 201 with its ETag, the zone it was written in, words and reading time counted", async () => {
    const [author] = await crowd(1);
    const res = await write(author, {
      date: today(),
      title: "  Spring  ",
      content: "# Garden\n\nPlanted **tomatoes** in [the beds](https://example.test/beds).",
      mood: "happy",
      location: "Home",
      weather: "Sunny, 18°C",
      tags: ["#Garden", "garden", "Work Life"],
    });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get("etag")).toBe('"1"');
    expect(res.body).toMatchObject({
      date: today(),
      timezone: "UTC",
      title: "Spring",
      mood: "happy",
      location: "Home",
      weather: "Sunny, 18°C",
      tags: ["garden", "work-life"],
      attachments: [],
      wordCount: 6,
      readingTimeSeconds: 2,
      version: 1,
      private: false,
      deletedAt: null,
    });
    expect(roundTrips(res.headers).mongo).toBe(1);
  });

  it("keeps one entry per date: of 10 concurrent writes exactly one is 201, the rest 409 entry_exists", async () => {
    const [author] = await crowd(1);
    const date = daysAgo(3);
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => write(author, { date, title: `try ${i}` })));
    expect(all.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of all.filter((r) => r.status !== 201)) {
      expect(expectProblem(r, 409, "conflict").reason).toBe("entry_exists");
    }
    const stored = await deps.db.journalEntries.find({ userId: new ObjectId(author.id), date });
    expect(stored).toHaveLength(1);
  });

  it("refuses bad fields with a 400 naming each: long title, long content, unknown mood, a future date", async () => {
    const [author] = await crowd(1);
    const cases: [Record<string, unknown>, string][] = [
      [{ date: today(), title: "t".repeat(201) }, "title"],
      [{ date: today(), content: "w".repeat(10_001) }, "content"],
      [{ date: today(), mood: "meh" }, "mood"],
      [{ date: "2024-02-30" }, "date"],
      [{ date: daysAgo(-2) }, "date"],
      [{ date: today(), tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, "tags"],
      [{ date: today(), timezone: "+05:00" }, "timezone"],
      [{ date: today(), private: true }, "private"],
    ];
    for (const [body, field] of cases) {
      const res = await write(author, body);
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res), JSON.stringify(body).slice(0, 80)).toContain(field);
    }
    // 10,000 characters counted as people count them: 10,000 emoji are fine.
    expect((await write(author, { date: today(), content: "🌱".repeat(10_000) })).status).toBe(201);
  });

  it("dates by the entry's zone: today in Kiritimati (UTC+14) may be tomorrow in UTC, and the entry keeps the zone", async () => {
    const [author] = await crowd(1);
    const ahead = today("Pacific/Kiritimati");
    const res = await write(author, { date: ahead, timezone: "pacific/kiritimati" });
    expect(res.status, res.text).toBe(201);
    expect(res.body.timezone).toBe("Pacific/Kiritimati");
    // In UTC the day after Kiritimati's today is still in the future.
    expectProblem(await write(author, { date: daysAgo(-1, "Pacific/Kiritimati") }), 400, "validation_failed");
  });

  it("attaches the caller's own completed generations as snapshots, and nobody else's", async () => {
    const [author, other] = await crowd(2);
    const mine = await completedGeneration(author);
    const theirs = await completedGeneration(other);
    const res = await write(author, { date: today(), attachmentIds: [mine] });
    expect(res.status, res.text).toBe(201);
    expect(res.body.attachments).toEqual([
      expect.objectContaining({
        source: "generation",
        id: mine,
        url: `https://cdn.example.test/${mine}.png`,
        width: 1024,
      }),
    ]);
    const refused = await write(author, { date: daysAgo(1), attachmentIds: [mine, theirs] });
    expectProblem(refused, 400, "validation_failed");
    expect(fieldPaths(refused)).toEqual(["attachmentIds.1"]);
    const many = await Promise.all(Array.from({ length: 11 }, () => completedGeneration(author)));
    expect(fieldPaths(await write(author, { date: daysAgo(2), attachmentIds: many }))).toEqual(["attachmentIds"]);
  });
});

describe("privacy of entries", () => {
  it("answers anyone but the author with the 404 of a missing entry, and lists and searches only the author's", async () => {
    const [author, stranger] = await crowd(2);
    const mine = await entry(author, { date: today(), title: "secret garden", content: "hidden words" });
    const missing = new ObjectId().toHexString();
    const forMissing = await read(stranger, missing);
    expectProblem(forMissing, 404, "not_found");
    const attempts = [
      read(stranger, mine.id),
      edit(stranger, mine.id, { title: "mine now" }, '"1"'),
      remove(stranger, mine.id, '"1"'),
      restore(stranger, mine.id),
    ];
    for (const res of await Promise.all(attempts)) {
      expectProblem(res, 404, "not_found");
      expect((res.body as unknown as { detail: string }).detail).toBe(
        (forMissing.body as unknown as { detail: string }).detail,
      );
    }
    expect((await get<{ items: Entry[] }>(stranger, "/v1/journal/entries")).body.items).toEqual([]);
    const search = await get<SearchResult>(stranger, "/v1/journal/search?q=garden");
    expect(search.body.items).toEqual([]);
    expect((await read(author, mine.id)).body.title).toBe("secret garden");
  });

  it("needs a token", async () => {
    expectProblem(await call("GET", "/v1/journal/entries"), 401, "unauthorized");
  });
});

describe("optimistic locking", () => {
  it("needs If-Match on PATCH and DELETE (428), refuses a stale one with 412 and the current version", async () => {
    const [author] = await crowd(1);
    const created = await entry(author, { date: today(), title: "v1" });
    const got = await read(author, created.id);
    expect(got.headers.get("etag")).toBe('"1"');

    expectProblem(await edit(author, created.id, { title: "no header" }), 428, "precondition_required");
    expectProblem(await edit(author, created.id, { title: "star" }, "*"), 428, "precondition_required");
    expectProblem(await remove(author, created.id), 428, "precondition_required");

    const v2 = await edit(author, created.id, { content: "one two three" }, '"1"');
    expect(v2.status, v2.text).toBe(200);
    expect(v2.headers.get("etag")).toBe('"2"');
    expect(v2.body).toMatchObject({ version: 2, wordCount: 3, title: "v1" });

    const stale = await edit(author, created.id, { title: "lost update" }, '"1"');
    expect(expectProblem(stale, 412, "precondition_failed")).toMatchObject({ currentVersion: 2 });
    expect(stale.headers.get("etag")).toBe('"2"');
    expectProblem(await remove(author, created.id, 'W/"2"'), 412, "precondition_failed");
    expect((await read(author, created.id)).body).toMatchObject({ version: 2, title: "v1", deletedAt: null });
  });

  it("lets exactly one of 10 concurrent edits made on the same version win", async () => {
    const [author] = await crowd(1);
    const created = await entry(author, { date: today(), title: "start", tags: ["base"] });
    const edits = await Promise.all(
      Array.from({ length: 10 }, (_, i) => edit(author, created.id, { title: `edit ${i}`, tags: [`t${i}`] }, '"1"')),
    );
    const winners = edits.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expectEvery(
      edits.filter((r) => r.status !== 200),
      (r) => r.status === 412 && (r.body as unknown as { currentVersion: number }).currentVersion === 2,
    );
    const stored = await read(author, created.id);
    expect(stored.body).toMatchObject({ version: 2, title: winners[0]?.body.title, tags: winners[0]?.body.tags });
    // The vocabulary counts what the entries hold: the winner's tag once, nobody else's.
    const vocabulary = await get<{ items: { tag: string; count: number }[] }>(author, "/v1/journal/tags");
    expect(vocabulary.body.items).toEqual([{ tag: winners[0]?.body.tags[0], count: 1 }]);
  });
});

describe("delete and restore", () => {
  it("deletes softly (restorable, listed in the bin), restores, and refuses a restore onto a re-used date", async () => {
    const [author] = await crowd(1);
    const date = daysAgo(1);
    const first = await entry(author, { date, title: "first" });
    const deleted = await remove(author, first.id, '"1"');
    expect(deleted.status, deleted.text).toBe(204);
    expectProblem(await remove(author, first.id, '"2"'), 404, "not_found");

    const inBin = await read(author, first.id);
    expect(inBin.body.deletedAt).not.toBeNull();
    expect(Date.parse(inBin.body.restorableUntil ?? "")).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect((await get<{ items: Entry[] }>(author, "/v1/journal/entries")).body.items).toEqual([]);
    expect(
      (await get<{ items: Entry[] }>(author, "/v1/journal/entries?state=deleted")).body.items.map((e) => e.id),
    ).toEqual([first.id]);

    const back = await restore(author, first.id);
    expect(back.status, back.text).toBe(200);
    expect(back.body).toMatchObject({ version: 3, deletedAt: null, restorableUntil: null, title: "first" });

    // Deleted again, and the date written anew: the old one can no longer come back.
    await remove(author, first.id, '"3"');
    await entry(author, { date, title: "second" });
    expect(expectProblem(await restore(author, first.id), 409, "conflict").reason).toBe("entry_exists");
  });

  it("purges entries past the restore window with the journal-purge job, and only those", async () => {
    const [author] = await crowd(1);
    const old = await entry(author, { date: daysAgo(5), title: "old" });
    const recent = await entry(author, { date: daysAgo(6), title: "recent" });
    await remove(author, old.id, '"1"');
    await remove(author, recent.id, '"1"');
    await deps.db.journalEntries.updateOne(
      { _id: new ObjectId(old.id) },
      { $set: { purgeAfter: new Date(Date.now() - 1_000) } },
    );
    expectProblem(await restore(author, old.id), 404, "not_found");
    const bin = await get<{ items: Entry[] }>(author, "/v1/journal/entries?state=deleted");
    expect(bin.body.items.map((e) => e.id)).toEqual([recent.id]);
    const { runUntilDone } = await import("../support/jobs");
    const { journalPurgeJob } = await import("../../src/features/journal/jobs");
    await runUntilDone(journalPurgeJob);
    expect(await deps.db.journalEntries.findOne({ _id: new ObjectId(old.id) })).toBeNull();
    expect((await restore(author, recent.id)).status).toBe(200);
  });
});

describe("GET /v1/journal/streak", () => {
  it("recomputes exactly when entries are back-filled and deleted", async () => {
    const [author] = await crowd(1);
    const streak = () => get<Record<string, unknown>>(author, "/v1/journal/streak");
    expect((await streak()).body).toEqual({
      current: 0,
      longest: 0,
      lastEntryDate: null,
      totalEntries: 0,
      totalWords: 0,
    });
    await entry(author, { date: today(), content: "one two" });
    await entry(author, { date: daysAgo(2), content: "three" });
    expect((await streak()).body).toMatchObject({ current: 1, longest: 1, totalEntries: 2, totalWords: 3 });
    // Back-filling yesterday joins the two into a run of three.
    const yesterday = await entry(author, { date: daysAgo(1), content: "four five six" });
    expect((await streak()).body).toMatchObject({ current: 3, longest: 3, lastEntryDate: today(), totalWords: 6 });
    const warm = await streak();
    expect(roundTrips(warm.headers).mongo ?? 0).toBe(0);
    await remove(author, yesterday.id, '"1"');
    expect((await streak()).body).toMatchObject({ current: 1, longest: 1, totalEntries: 2, totalWords: 3 });
  });

  it("counts today in the caller's zone: yesterday's entry keeps a streak alive only until the zone's midnight", async () => {
    const [author] = await crowd(1);
    await entry(author, { date: daysAgo(2, "Pacific/Kiritimati"), timezone: "Pacific/Kiritimati" });
    const setZone = (timezone: string) =>
      call("PATCH", "/v1/me/settings", { token: author.accessToken, body: { timezone } });
    // In Kiritimati that entry is two days old: no current streak.
    expect((await setZone("Pacific/Kiritimati")).status).toBe(200);
    expect((await get<{ current: number }>(author, "/v1/journal/streak")).body.current).toBe(0);
    // In Pago Pago (UTC−11, 25 hours behind) it is yesterday or today: alive.
    await setZone("Pacific/Pago_Pago");
    expect((await get<{ current: number }>(author, "/v1/journal/streak")).body.current).toBe(1);
  });
});

describe("GET /v1/journal/calendar", () => {
  it("shows each day's mood, is served warm without MongoDB, and a write to that month supersedes it", async () => {
    const [author] = await crowd(1);
    await entry(author, { date: "2024-02-03", mood: "sad" });
    await entry(author, { date: "2024-03-01", mood: "happy" });
    const calendar = () =>
      get<{ days: { date: string; mood: string | null; hasEntry: boolean }[] }>(
        author,
        "/v1/journal/calendar?month=2024-02",
      );
    const cold = await calendar();
    expect(cold.body.days).toHaveLength(29);
    expect(cold.body.days.filter((d) => d.hasEntry)).toEqual([{ date: "2024-02-03", mood: "sad", hasEntry: true }]);
    const warm = await calendar();
    expect(roundTrips(warm.headers)).toMatchObject({ redis: 2 });
    expect(roundTrips(warm.headers).mongo ?? 0).toBe(0);

    // A write to March leaves February's cache alone; a write to February supersedes it.
    await entry(author, { date: "2024-03-02", mood: "angry" });
    expect(roundTrips((await calendar()).headers).mongo ?? 0).toBe(0);
    await entry(author, { date: "2024-02-10", mood: "ecstatic" });
    const fresh = await calendar();
    expect(fresh.body.days.filter((d) => d.hasEntry).map((d) => d.mood)).toEqual(["sad", "ecstatic"]);
    expect(roundTrips(fresh.headers).mongo).toBe(1);
    expectProblem(await get(author, "/v1/journal/calendar?month=2024-13"), 400, "validation_failed");
  });
});

describe("GET /v1/journal/trends", () => {
  it("counts moods per week and weekday over the range, leaves private-mode entries out, and caches", async () => {
    const [author] = await crowd(1);
    await entry(author, { date: daysAgo(1), mood: "happy" });
    await entry(author, { date: daysAgo(40), mood: "sad" });
    await call("PATCH", "/v1/me/settings", { token: author.accessToken, body: { privateMode: true } });
    const secret = await entry(author, { date: today(), mood: "angry" });
    expect(secret.private).toBe(true);
    await call("PATCH", "/v1/me/settings", { token: author.accessToken, body: { privateMode: false } });

    const month = await get<{ entries: number; moods: Record<string, number>; weeks: unknown[]; to: string }>(
      author,
      "/v1/journal/trends?range=30d",
    );
    expect(month.body).toMatchObject({ entries: 1, moods: { happy: 1 }, to: today() });
    expect(month.body.weeks.length).toBeGreaterThanOrEqual(5);
    const quarter = await get<{ entries: number; moods: Record<string, number> }>(
      author,
      "/v1/journal/trends?range=90d",
    );
    expect(quarter.body).toMatchObject({ entries: 2, moods: { happy: 1, sad: 1 } });
    expect(roundTrips((await get(author, "/v1/journal/trends?range=90d")).headers).mongo ?? 0).toBe(0);
    await entry(author, { date: daysAgo(2), mood: "ecstatic" });
    expect((await get<{ entries: number }>(author, "/v1/journal/trends?range=90d")).body.entries).toBe(3);
  });
});

describe("GET /v1/journal/search", () => {
  async function journal(author: TestUser) {
    await entry(author, {
      date: "2024-03-02",
      title: "Garden notes",
      content: "Planted tomatoes in the raised beds.",
      mood: "happy",
      tags: ["garden", "spring"],
    });
    await entry(author, {
      date: "2024-03-20",
      title: "A long walk",
      content: `${"We talked about work and plans for a while. ".repeat(6)}Then we walked past the old garden on the way home.`,
      mood: "neutral",
      tags: ["walk", "spring"],
    });
    await entry(author, {
      date: "2024-04-11",
      title: "Rainy day",
      content: "Stayed in; the gardens can wait.",
      mood: "neutral",
      tags: ["rain"],
    });
    await entry(author, {
      date: "2024-04-12",
      title: "Work",
      content: "Deadlines all day",
      mood: "sad",
      tags: ["work"],
    });
  }

  it("ranks by relevance, counts facets over every match, and marks the matched words", async () => {
    const [author] = await crowd(1);
    await journal(author);
    const res = await get<SearchResult>(author, "/v1/journal/search?q=garden");
    expect(res.status, res.text).toBe(200);
    expect(roundTrips(res.headers).mongo).toBe(1);
    expect(res.body.total).toBe(3);
    // The title weighs most: the entry with the word in its title comes first.
    expect(res.body.items[0]?.entry.title).toBe("Garden notes");
    expect(res.body.items.map((i) => i.entry.date).sort()).toEqual(["2024-03-02", "2024-03-20", "2024-04-11"]);
    expect(res.body.facets).toEqual({
      mood: [
        { value: "neutral", count: 2 },
        { value: "happy", count: 1 },
      ],
      tags: [
        { value: "spring", count: 2 },
        { value: "garden", count: 1 },
        { value: "rain", count: 1 },
        { value: "walk", count: 1 },
      ],
      month: [
        { value: "2024-04", count: 1 },
        { value: "2024-03", count: 2 },
      ],
    });
    const walk = res.body.items.find((i) => i.entry.title === "A long walk");
    const snippet = walk?.snippet;
    expect(snippet?.field).toBe("content");
    expect(snippet?.text.startsWith("…")).toBe(true);
    expect(snippet?.highlights.map((h) => snippet.text.slice(h.start, h.end))).toEqual(["garden"]);
  });

  it("filters by mood (any), tags (all) and dates, with facets over the filtered set, and pages by relevance", async () => {
    const [author] = await crowd(1);
    await journal(author);
    const neutral = await get<SearchResult>(author, "/v1/journal/search?q=garden&mood=neutral,sad");
    expect(neutral.body.items.map((i) => i.entry.title).sort()).toEqual(["A long walk", "Rainy day"]);
    expect(neutral.body.facets.mood).toEqual([{ value: "neutral", count: 2 }]);
    const spring = await get<SearchResult>(author, "/v1/journal/search?tags=spring,Garden");
    expect(spring.body.items.map((i) => i.entry.title)).toEqual(["Garden notes"]);
    const april = await get<SearchResult>(author, "/v1/journal/search?from=2024-04-01&to=2024-04-30");
    expect(april.body.items.map((i) => i.entry.date)).toEqual(["2024-04-12", "2024-04-11"]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ApiResponse<SearchResult> = await get<SearchResult>(
        author,
        `/v1/journal/search?q=garden&limit=1${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(page.body.total).toBe(3);
      seen.push(...page.body.items.map((i) => i.entry.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(3);
    expectProblem(await get(author, "/v1/journal/search?q=x&cursor=bogus"), 400, "validation_failed");
  });
});

describe("GET /v1/journal/tags", () => {
  it("counts the caller's tags over live entries, most used first, with a prefix filter", async () => {
    const [author] = await crowd(1);
    await entry(author, { date: daysAgo(1), tags: ["Work", "run"] });
    const other = await entry(author, { date: daysAgo(2), tags: ["work"] });
    await entry(author, { date: daysAgo(3), tags: ["reading"] });
    const tags = () => get<{ items: { tag: string; count: number }[] }>(author, "/v1/journal/tags");
    expect((await tags()).body.items).toEqual([
      { tag: "work", count: 2 },
      { tag: "reading", count: 1 },
      { tag: "run", count: 1 },
    ]);
    await remove(author, other.id, '"1"');
    expect((await tags()).body.items[0]).toEqual({ tag: "reading", count: 1 });
    const prefixed = await get<{ items: { tag: string }[] }>(author, "/v1/journal/tags?prefix=R");
    expect(prefixed.body.items.map((t) => t.tag)).toEqual(["reading", "run"]);
  });
});
