import { describe, expect, it } from "vitest";
import { finishedPeriod, journalInsightsJob } from "../../src/features/journal/jobs";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { runUntilDone } from "../support/jobs";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const week = finishedPeriod("weekly", new Date());
const day = (offset: number) => {
  const [y, m, d] = week.start.split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + offset)).toISOString().slice(0, 10);
};

const write = async (u: TestUser, body: Record<string, unknown>) => {
  const res = await call("POST", "/v1/journal/entries", {
    token: u.accessToken,
    body: { title: "t", content: "", ...body },
  });
  expect(res.status, res.text).toBe(201);
};
const setPrivate = (u: TestUser, privateMode: boolean) =>
  call("PATCH", "/v1/me/settings", { token: u.accessToken, body: { privateMode } });

/** Each test walks the finished week anew (the job records how far it got per period). */
async function runInsights(options: Parameters<typeof runJob>[2] = { trigger: "test" }) {
  await deps.db.journalInsightRuns.deleteMany({});
  return runJob(deps, journalInsightsJob, options);
}

const insightsOf = (u: TestUser) =>
  deps.db.journalInsights.find({ userId: new ObjectId(u.id), kind: "weekly", periodStart: week.start });
// The weekly notices only: on the first days of a month the finished month's insight is announced too.
const noticesOf = (u: TestUser) =>
  deps.db.notifications.find({
    userId: new ObjectId(u.id),
    aggregationKey: { $regex: "^journal_insight:" },
    title: "Your week in your journal",
  });

describe("journal-insights job", () => {
  it("writes the finished week's statistics against the week before, once, and announces it once", async () => {
    const [author] = await crowd(1);
    await write(author, { date: day(0), mood: "happy", tags: ["work"], content: "one two three four" });
    await write(author, { date: day(1), mood: "happy", tags: ["work", "run"], content: "five six" });
    await write(author, { date: day(4), mood: "sad", tags: ["family"], content: "seven" });
    await write(author, { date: day(-3), mood: "angry", content: "before" });

    const run = await runInsights();
    expect(run.outcome, run.error ?? "").toBe("succeeded");
    const [insight, ...more] = await insightsOf(author);
    expect(more).toEqual([]);
    expect(insight).toMatchObject({
      periodStart: week.start,
      periodEnd: week.end,
      stats: {
        entries: 3,
        words: 7,
        longestStreak: 2,
        moods: [
          { mood: "happy", count: 2 },
          { mood: "sad", count: 1 },
        ],
        tags: [
          { tag: "work", count: 2 },
          { tag: "family", count: 1 },
          { tag: "run", count: 1 },
        ],
      },
      previous: { entries: 1, words: 1 },
      shift: { entries: 2, words: 6 },
    });
    const notices = await noticesOf(author);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ type: "system", title: "Your week in your journal", aggregationCount: 1 });

    await runUntilDone(journalInsightsJob);
    await runInsights();
    expect(await insightsOf(author)).toHaveLength(1);
    expect((await noticesOf(author))[0]?.aggregationCount).toBe(1);

    const listed = await call<{ items: { periodStart: string; summary: string }[] }>(
      "GET",
      "/v1/journal/insights?kind=weekly",
      { token: author.accessToken },
    );
    expect(listed.body.items[0]).toMatchObject({ periodStart: week.start });
    expect(listed.body.items[0]?.summary).toContain("3 entries");
  });

  it("never reads private-mode entries, and writes nothing for someone in private mode", async () => {
    const [mixed, hidden] = await crowd(2);
    await write(mixed, { date: day(0), mood: "happy" });
    await setPrivate(mixed, true);
    await write(mixed, { date: day(1), mood: "angry", tags: ["secret"] });
    await setPrivate(mixed, false);
    await write(hidden, { date: day(2), mood: "sad" });
    await setPrivate(hidden, true);

    await runInsights();
    const [insight] = await insightsOf(mixed);
    expect(insight?.stats).toMatchObject({ entries: 1, moods: [{ mood: "happy", count: 1 }], tags: [] });
    expect(await insightsOf(hidden)).toEqual([]);
    expect(await noticesOf(hidden)).toEqual([]);
  });

  it("still announces an insight when a run crashed after writing it", async () => {
    const [author] = await crowd(1);
    await write(author, { date: day(3), mood: "neutral" });
    const crashed = await runInsights({
      trigger: "test",
      onCheckpoint: (name) => {
        if (name === "insights-written") throw new Error("killed at insights-written");
      },
    });
    expect(crashed.outcome).toBe("failed");
    expect(await insightsOf(author)).toHaveLength(1);
    expect(await noticesOf(author)).toEqual([]);
    await runUntilDone(journalInsightsJob);
    expect(await noticesOf(author)).toHaveLength(1);
    expect((await insightsOf(author))[0]?.notifiedAt).toBeInstanceOf(Date);
  });
});
