import { describe, expect, it } from "vitest";
import { creatorAnalytics } from "../../src/features/analytics/creator";
import { eraseUser, exportSections } from "../../src/features/analytics/creator-privacy";
import { flushAnalyticsJob } from "../../src/features/analytics/flush";
import { utcDay } from "../../src/platform/time";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { publishedPost } from "../support/posts";
import { signupUser, type TestUser } from "../support/users";

const deps = testDeps();
const marker = crypto.randomUUID();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function flushFor(ids: string[]): Promise<void> {
  let quiet = 0;
  for (let attempt = 0; attempt < 150; attempt++) {
    await runJob(deps, flushAnalyticsJob, { trigger: "test" });
    const left = await deps.db.analyticsEvents.findOne(
      { $or: [{ ownerId: { $in: ids } }, { userId: { $in: ids } }, { sessionId: marker }] },
      { projection: { _id: 1 } },
    );
    quiet = left ? 0 : quiet + 1;
    if (quiet === 2) return;
    await pause(150);
  }
  throw new Error("the events were never flushed");
}

/** Where any of `values` appears in ClickHouse: every table of the database, materialized views' included. */
async function foundInClickHouse(values: string[]): Promise<string[]> {
  const tables = await (
    await deps.clickhouse.query({
      query: "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View'",
      format: "JSONEachRow",
    })
  ).json<{ name: string }>();
  const found: string[] = [];
  for (const { name } of tables) {
    const rows = await (
      await deps.clickhouse.query({
        query: `SELECT toString(tuple(*)) AS row FROM \`${name.replace(/`/g, "")}\` WHERE multiSearchAny(toString(tuple(*)), {values:Array(String)})`,
        query_params: { values },
        format: "JSONEachRow",
      })
    ).json<{ row: string }>();
    for (const { row } of rows) found.push(`${name}: ${row}`);
  }
  return found;
}

const asViewer = (user: TestUser) => ({ id: user.id, sessionId: "s", role: "user" as const, tier: "free" as const });

async function collect(userId: string) {
  const sections: Record<string, unknown[]> = {};
  for await (const page of exportSections(deps, userId)) {
    sections[page.section] = [...(sections[page.section] ?? []), ...page.items];
  }
  return sections;
}

/** A creator everywhere in analytics: others follow, vote, comment, view and see their posts; they do too. */
async function creatorEverywhere() {
  const victimDevice = `victim-device-${marker}`;
  const victim = await signupUser({
    deviceId: victimDevice,
    platform: "ios",
    attribution: { source: `src-${marker}`, referrer: "https://ref.example/page" },
  });
  const fan = await signupUser();
  const post = await publishedPost(victim);
  const fansPost = await publishedPost(fan);
  const as = (who: TestUser) => ({ token: who.accessToken });
  await call("PUT", `/v1/users/${victim.id}/follow`, as(fan));
  await call("PUT", `/v1/users/${fan.id}/follow`, as(victim));
  await call("PUT", `/v1/posts/${post.id}/vote`, as(fan));
  await call("PUT", `/v1/posts/${fansPost.id}/vote`, as(victim));
  await call("POST", `/v1/posts/${post.id}/comments`, { ...as(fan), body: { content: "great" } });
  await call("GET", `/v1/users/${victim.username}`, as(fan));
  await call("GET", `/v1/users/${fan.username}`, as(victim));
  // The victim's phone, signed out, looks at the fan's profile.
  await call("GET", `/v1/users/${fan.username}`, { headers: { "x-device-id": victimDevice } });
  await call("POST", "/v1/me/checkin", as(victim));
  const impression = {
    event: "post_impression",
    timestamp: new Date().toISOString(),
    sessionId: marker,
    deviceId: `fan-${marker}`,
    platform: "android",
    appVersion: "3.2.0",
    properties: { postId: post.id },
  };
  expect((await call("POST", "/v1/events", { ...as(fan), body: { events: [impression] } })).status).toBe(202);
  await flushFor([victim.id, fan.id]);
  return { victim, fan, post, victimDevice };
}

describe("creator analytics: export and erasure", () => {
  it("exports the user's attribution, days, posts' days and what they were recorded doing, without secrets", async () => {
    const { victim, fan, post, victimDevice } = await creatorEverywhere();
    const sections = await collect(victim.id);
    const day = utcDay(new Date());
    expect(sections.attribution).toEqual([
      { source: `src-${marker}`, medium: null, campaign: null, referrer: "https://ref.example/page" },
    ]);
    expect(sections.creatorAnalytics).toEqual([
      {
        date: day,
        profileViews: 1,
        impressions: 1,
        engagements: 2,
        followersGained: 1,
        followersLost: 0,
        gemsEarned: expect.any(Number),
      },
    ]);
    expect(sections.postAnalytics).toEqual([
      { postId: post.id, date: day, impressions: 1, votes: 1, comments: 1, shares: 0, saves: 0 },
    ]);
    expect((sections.recordedActivity as { event: string }[]).map((e) => e.event).sort()).toEqual(
      ["followed", "post_created", "profile_viewed", "signed_up", "vote_cast"].sort(),
    );
    const text = JSON.stringify(sections);
    for (const secret of [victim.email, fan.email, victimDevice, victim.password]) expect(text).not.toContain(secret);
  });

  it("erases the user from every ClickHouse table and the buffer, leaves others' numbers, and can run again", async () => {
    const { victim, fan } = await creatorEverywhere();
    // One more event still buffered when erasure starts: it must not reach ClickHouse afterwards.
    await call("GET", `/v1/users/${victim.username}`, { token: fan.accessToken });
    const today = { from: utcDay(new Date()), to: utcDay(new Date()) };
    const fansBefore = await creatorAnalytics(deps, asViewer(fan), today);
    const before = await foundInClickHouse([victim.id]);
    for (const table of [
      "server_events",
      "creator_stats",
      "post_stats",
      "creator_gems",
      "user_attribution",
      "events",
    ]) {
      expect(
        before.some((f) => f.startsWith(`${table}: `)),
        table,
      ).toBe(true);
    }

    await eraseUser(deps, victim.id);
    await flushFor([victim.id, fan.id]);
    expect(await foundInClickHouse([victim.id])).toEqual([]);
    expect(await deps.db.analyticsEvents.findOne({ $or: [{ userId: victim.id }, { ownerId: victim.id }] })).toBeNull();
    // The fan's numbers are theirs: a follower gained and a profile view stay, though the victim's follow and
    // view are gone from the raw events.
    expect((await creatorAnalytics(deps, asViewer(fan), today)).totals).toEqual(fansBefore.totals);
    expect(fansBefore.totals).toMatchObject({ followersGained: 1, profileViews: 2, engagements: 1 });
    expect((await creatorAnalytics(deps, asViewer(victim), today)).totals).toMatchObject({
      profileViews: 0,
      impressions: 0,
      engagements: 0,
      followersGained: 0,
      gemsEarned: 0,
    });

    await eraseUser(deps, victim.id);
    expect(await foundInClickHouse([victim.id])).toEqual([]);
  });
});
