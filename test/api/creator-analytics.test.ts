import { describe, expect, it } from "vitest";
import { gemsEarned, recordActivity } from "../../src/features/analytics/activity";
import { flushAnalyticsJob } from "../../src/features/analytics/flush";
import { shiftDay } from "../../src/features/analytics/reports";
import { ObjectId } from "../../src/platform/ids";
import { canonicalTimeZone, localDay, utcDay } from "../../src/platform/time";
import { runJob } from "../../src/scheduler/runner";
import { type ApiResponse, call, roundTrips, waits } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { grant } from "../support/gems";
import { completedGeneration, publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser, users } from "../support/users";

const deps = testDeps();
const today = () => utcDay(new Date());
const localToday = (zone: string) => localDay(new Date(), zone);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// The session id of every app event this file sends, so a flush can be waited for (signed-out ones included).
const marker = crypto.randomUUID();

interface Day {
  date: string;
  profileViews: number;
  impressions: number;
  engagements: number;
  followersGained: number;
  followersLost: number;
  gemsEarned: number;
}
interface Series<D> {
  timezone: string;
  from: string;
  to: string;
  totals: Omit<D, "date">;
  items: D[];
}
interface PostDay {
  date: string;
  impressions: number;
  votes: number;
  comments: number;
  shares: number;
  saves: number;
  engagements: number;
}

/**
 * Flushes until the buffer holds no event by or about these people, twice in a row: what the API records
 * after an answer lands within milliseconds, and another file's flush may be the one that moves them.
 */
async function flushFor(people: { id: string }[]): Promise<void> {
  const ids = people.map((p) => p.id);
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

async function analyticsOf(user: TestUser, query = `?from=${today()}&to=${today()}`) {
  const res = await call<Series<Day>>("GET", `/v1/me/analytics${query}`, { token: user.accessToken });
  expect(res.status, res.text).toBe(200);
  return res;
}

async function todayOf(user: TestUser): Promise<Day> {
  const day = (await analyticsOf(user)).body.items[0];
  if (!day) throw new Error("no item for today");
  return day;
}

/** What `server_events` holds by or about these people, oldest first. */
async function recorded(people: { id: string }[]) {
  const result = await deps.clickhouse.query({
    query: `SELECT event_name, actor_id, owner_id, post_id, toInt64(amount) AS amount FROM server_events
            WHERE has({ids:Array(String)}, owner_id) OR has({ids:Array(String)}, actor_id)
            ORDER BY event_name = 'signed_up' DESC, if(event_name = 'signed_up', actor_id, ''), timestamp`,
    query_params: { ids: people.map((p) => p.id) },
    format: "JSONEachRow",
  });
  return result.json<{
    event_name: string;
    actor_id: string;
    owner_id: string;
    post_id: string;
    amount: string | number;
  }>();
}

function impression(postId: string, deviceId: string, timestamp = new Date().toISOString()) {
  return {
    event: "post_impression",
    timestamp,
    sessionId: marker,
    deviceId,
    platform: "ios",
    appVersion: "3.2.0",
    properties: { postId },
  };
}

async function sendEvents(events: unknown[], token?: string): Promise<void> {
  const res = await call("POST", "/v1/events", { body: { events }, ...(token ? { token } : {}) });
  expect(res.status, res.text).toBe(202);
}

const mongoCost = (res: ApiResponse) => ({
  waits: waits(res.headers).mongo,
  roundTrips: roundTrips(res.headers).mongo,
});

describe("events the API records itself", () => {
  it("are buffered after the answer: every write costs the MongoDB waits and round trips it did before", async () => {
    const [author, fan] = await users(2);
    // What each request cost with recording switched off (measured in this order and cache state): recording
    // adds no MongoDB round trip and no sequential wait (later work on the write path may only lower these).
    const step = async (name: string, request: Promise<ApiResponse>, cost: [waits: number, roundTrips: number]) => {
      const res = await request;
      expect(res.status, `${name}: ${res.text}`).toBeLessThan(300);
      expect(mongoCost(res).roundTrips, `${name}: round trips`).toBeLessThanOrEqual(cost[1]);
      expect(mongoCost(res).waits, `${name}: waits`).toBeLessThanOrEqual(cost[0]);
      return res;
    };
    const generationId = await completedGeneration(author);
    const first = await step(
      "post",
      call<{ id: string }>("POST", "/v1/posts", { token: author.accessToken, body: { generationId } }),
      [3, 4],
    );
    const post = await publishedPost(author);
    const follow = call("PUT", `/v1/users/${author.id}/follow`, { token: fan.accessToken });
    await step("follow", follow, [5, 6]);
    await step("unfollow", call("DELETE", `/v1/users/${author.id}/follow`, { token: fan.accessToken }), [3, 3]);
    await step("vote", call("PUT", `/v1/posts/${post.id}/vote`, { token: fan.accessToken }), [5, 7]);
    await step("unvote", call("DELETE", `/v1/posts/${post.id}/vote`, { token: fan.accessToken }), [2, 3]);
    const comment = { token: fan.accessToken, body: { content: "lovely light" } };
    await step("comment", call("POST", `/v1/posts/${post.id}/comments`, comment), [5, 6]);
    await step("share", call("POST", `/v1/posts/${post.id}/share`, { token: fan.accessToken }), [4, 5]);
    await step("profile", call("GET", `/v1/users/${author.username}`, { token: fan.accessToken }), [2, 2]);
    await step("cached profile", call("GET", `/v1/users/${author.username}`, { token: fan.accessToken }), [0, 0]);
    const signedOut = { headers: { "x-device-id": `device-${author.id}` } };
    await step("signed-out profile", call("GET", `/v1/users/${author.username}`, signedOut), [0, 0]);
    await step("check-in", call("POST", "/v1/me/checkin", { token: fan.accessToken }), [4, 4]);
    await grant(fan, 100);
    const gift = {
      token: fan.accessToken,
      body: { amount: 20 },
      headers: { "idempotency-key": crypto.randomUUID() },
    };
    await step("gift", call("POST", `/v1/users/${author.id}/gifts`, gift), [9, 9]);

    await flushFor([author, fan]);
    const [a, f, p, p0] = [author.id, fan.id, post.id, (first.body as { id: string }).id];
    expect(
      (await recorded([author, fan])).map((r) => [r.event_name, r.actor_id, r.owner_id, r.post_id, Number(r.amount)]),
    ).toEqual([
      ...[
        ["signed_up", a, a, "", 0],
        ["signed_up", f, f, "", 0],
      ].sort((x, y) => String(x[1]).localeCompare(String(y[1]))),
      ["post_created", a, a, p0, 0],
      ["post_created", a, a, p, 0],
      ["followed", f, a, "", 0],
      ["unfollowed", f, a, "", 0],
      ["vote_cast", f, a, p, 0],
      ["vote_removed", f, a, p, 0],
      ["comment_created", f, a, p, 0],
      ["shared", f, a, p, 0],
      ["profile_viewed", f, a, "", 0],
      ["profile_viewed", f, a, "", 0],
      ["profile_viewed", "", a, "", 0],
      ["gem_earned", "", f, "", 5],
      ["gem_earned", "", a, "", 18],
    ]);
  });

  it("records one follow when the same follow is sent 20 times at once, and one unfollow for 10", async () => {
    const [creator, follower] = await crowd(2);
    const follows = await Promise.all(
      Array.from({ length: 20 }, () => call("PUT", `/v1/users/${creator.id}/follow`, { token: follower.accessToken })),
    );
    expectEvery(follows, (r) => r.status === 204);
    const unfollows = await Promise.all(
      Array.from({ length: 10 }, () =>
        call("DELETE", `/v1/users/${creator.id}/follow`, { token: follower.accessToken }),
      ),
    );
    expectEvery(unfollows, (r) => r.status === 204);
    await flushFor([creator, follower]);
    expect(await todayOf(creator)).toMatchObject({ followersGained: 1, followersLost: 1 });
    expect((await recorded([creator])).map((r) => r.event_name)).toEqual(["followed", "unfollowed"]);
  });

  it("records one vote when it is sent 10 times at once, and nets a vote taken back", async () => {
    const [author, voter, other] = await crowd(3);
    const post = await publishedPost(author);
    const votes = await Promise.all(
      Array.from({ length: 10 }, () => call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken })),
    );
    expectEvery(votes, (r) => r.status === 200);
    expect((await call("PUT", `/v1/posts/${post.id}/vote`, { token: other.accessToken })).status).toBe(200);
    expect((await call("DELETE", `/v1/posts/${post.id}/vote`, { token: other.accessToken })).status).toBe(204);
    await flushFor([author, voter, other]);
    const postDays = await call<Series<PostDay>>("GET", `/v1/posts/${post.id}/analytics`, {
      token: author.accessToken,
    });
    expect(postDays.body.totals).toMatchObject({ votes: 1, engagements: 1 });
    expect((await todayOf(author)).engagements).toBe(1);
  });

  it("counts a follow a block ended as a follower lost, both ways", async () => {
    const [a, b] = await crowd(2);
    await call("PUT", `/v1/users/${b.id}/follow`, { token: a.accessToken });
    await call("PUT", `/v1/users/${a.id}/follow`, { token: b.accessToken });
    expect((await call("PUT", `/v1/users/${b.id}/block`, { token: a.accessToken })).status).toBe(204);
    await flushFor([a, b]);
    expect(await todayOf(a)).toMatchObject({ followersGained: 1, followersLost: 1 });
    expect(await todayOf(b)).toMatchObject({ followersGained: 1, followersLost: 1 });
  });

  it("never counts the author's own views, comments or impressions", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    await call("GET", `/v1/users/${author.username}`, { token: author.accessToken });
    await call("POST", `/v1/posts/${post.id}/comments`, { token: author.accessToken, body: { content: "mine" } });
    await call("POST", `/v1/posts/${post.id}/share`, { token: author.accessToken });
    await sendEvents([impression(post.id, `own-${author.id}`)], author.accessToken);
    await flushFor([author]);
    expect(await todayOf(author)).toMatchObject({ profileViews: 0, impressions: 0, engagements: 0 });
  });

  it("counts a gem credit recorded twice (a settlement run finishing a crashed one) once", async () => {
    const [earner] = await crowd(1);
    const entry = {
      _id: new ObjectId(),
      userId: new ObjectId(earner.id),
      type: "earn" as const,
      amount: 12,
      createdAt: new Date(),
    };
    await recordActivity(deps, ...gemsEarned([entry]));
    await flushFor([earner]);
    await recordActivity(deps, ...gemsEarned([entry]));
    await flushFor([earner]);
    expect(await recorded([earner])).toHaveLength(2);
    expect((await todayOf(earner)).gemsEarned).toBe(12);
  });
});

describe("GET /v1/me/analytics", () => {
  it("plots every day of the range, zeros included: impressions once per viewer per post per day", async () => {
    const [author, fan, other] = await crowd(3);
    const [first, second] = [await publishedPost(author), await publishedPost(author)];
    const yesterdayNoon = `${shiftDay(today(), -1)}T12:00:00.000Z`;
    await Promise.all([
      // The fan sees the first post three times today (one impression) and once yesterday, the second once.
      sendEvents(
        [
          impression(first.id, `fan-${fan.id}`),
          impression(first.id, `fan-${fan.id}`),
          impression(first.id, `fan-tablet-${fan.id}`),
          impression(first.id, `fan-${fan.id}`, yesterdayNoon),
          impression(second.id, `fan-${fan.id}`),
        ],
        fan.accessToken,
      ),
      sendEvents([impression(first.id, `other-${other.id}`)], other.accessToken),
      // Signed out: counted by device, twice the same device once.
      sendEvents([impression(first.id, `anon-${author.id}`), impression(first.id, `anon-${author.id}`)]),
    ]);
    await flushFor([author, fan, other]);
    // The buffered impressions carry no owner; the flush found it from the post.
    const week = await analyticsOf(author, `?from=${shiftDay(today(), -6)}&to=${today()}`);
    expect(week.body.items.map((d) => d.date)).toEqual([6, 5, 4, 3, 2, 1, 0].map((n) => shiftDay(today(), -n)));
    expect(week.body.items.map((d) => d.impressions)).toEqual([0, 0, 0, 0, 0, 1, 4]);
    expect(week.body).toMatchObject({ timezone: "UTC", from: shiftDay(today(), -6), to: today() });
    expect(week.body.totals.impressions).toBe(5);
    const firstDays = await call<Series<PostDay>>("GET", `/v1/posts/${first.id}/analytics`, {
      token: author.accessToken,
    });
    expect(firstDays.body.totals.impressions).toBe(3);
  });

  it("counts profile views once per viewer and day, signed-out devices by device", async () => {
    const [owner, fan] = await crowd(2);
    for (let i = 0; i < 3; i++) await call("GET", `/v1/users/${owner.username}`, { token: fan.accessToken });
    const device = { "x-device-id": `device-${owner.id}` };
    await call("GET", `/v1/users/${owner.username}`, { headers: device });
    await call("GET", `/v1/users/${owner.username}`, { headers: device });
    // Without a device id a signed-out view has no viewer to count once, so it counts nothing.
    await call("GET", `/v1/users/${owner.username}`);
    await flushFor([owner, fan]);
    expect((await todayOf(owner)).profileViews).toBe(2);
  });

  it("sums the gems earned: a check-in and a gift received", async () => {
    const [earner, giver] = await crowd(2);
    const checkin = await call<{ gemsAwarded: number }>("POST", "/v1/me/checkin", { token: earner.accessToken });
    expect(checkin.status, checkin.text).toBe(200);
    await grant(giver, 100);
    const gift = await call<{ payout: number }>("POST", `/v1/users/${earner.id}/gifts`, {
      token: giver.accessToken,
      body: { amount: 20 },
      headers: { "idempotency-key": crypto.randomUUID() },
    });
    expect(gift.status, gift.text).toBe(201);
    await flushFor([earner, giver]);
    expect((await todayOf(earner)).gemsEarned).toBe(checkin.body.gemsAwarded + gift.body.payout);
    // The giver spent; an admin grant is no earning.
    expect((await todayOf(giver)).gemsEarned).toBe(0);
  });

  it("costs one ClickHouse wait and no MongoDB call", async () => {
    const [user] = await crowd(1);
    const res = await analyticsOf(user, "");
    expect(waits(res.headers)).toMatchObject({ mongo: 0, clickhouse: 1 });
    expect(roundTrips(res.headers)).toMatchObject({ mongo: 0, clickhouse: 1 });
    // The default range: the 30 days up to today, every one of them.
    expect(res.body.items).toHaveLength(30);
    expect(res.body).toMatchObject({ from: shiftDay(today(), -29), to: today() });
  });

  it("refuses a reversed, malformed or too long range, naming the field", async () => {
    const [user] = await crowd(1);
    const reversed = await call("GET", "/v1/me/analytics?from=2026-03-02&to=2026-03-01", { token: user.accessToken });
    expectProblem(reversed, 400, "validation_failed");
    expect(fieldPaths(reversed)).toEqual(["to"]);
    const malformed = await call("GET", "/v1/me/analytics?from=yesterday", { token: user.accessToken });
    expectProblem(malformed, 400, "validation_failed");
    expect(new Set(fieldPaths(malformed))).toEqual(new Set(["from"]));
    const long = await call("GET", "/v1/me/analytics?from=2020-01-01&to=2026-01-01", { token: user.accessToken });
    expectProblem(long, 400, "validation_failed");
    expect(fieldPaths(long)).toEqual(["from"]);
  });

  it("answers 503 with Retry-After, not 500, when ClickHouse is down", async () => {
    const [user] = await crowd(1);
    const down = appWith({ CLICKHOUSE_URL: "http://127.0.0.1:9" });
    const res = await call("GET", "/v1/me/analytics", { token: user.accessToken }, down);
    expectProblem(res, 503, "unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("counts calendar days of the user's zone (settings), one impression per viewer per post per local day", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    // 23:50 and 00:10 UTC either side of midnight: two UTC days, but one day in Kolkata (+05:30) and in
    // Los Angeles (−08:00 or −07:00).
    const day = shiftDay(today(), -2);
    await sendEvents(
      [
        impression(post.id, `fan-${fan.id}`, `${shiftDay(day, -1)}T23:50:00.000Z`),
        impression(post.id, `fan-${fan.id}`, `${day}T00:10:00.000Z`),
      ],
      fan.accessToken,
    );
    await flushFor([author, fan]);
    const range = `?from=${shiftDay(day, -2)}&to=${shiftDay(day, 1)}`;
    const impressionsIn = async (zone: string) => {
      const set = await call("PATCH", "/v1/me/settings", { token: author.accessToken, body: { timezone: zone } });
      expect(set.status, set.text).toBe(200);
      const res = await analyticsOf(author, range);
      // Settings keep a zone in its canonical spelling (Asia/Kolkata may read Asia/Calcutta).
      const canonical = canonicalTimeZone(zone);
      expect(res.body.timezone).toBe(canonical);
      const postDays = await call<Series<PostDay>>("GET", `/v1/posts/${post.id}/analytics${range}`, {
        token: author.accessToken,
      });
      // The post's own series counts in the same zone (its days start at its creation, today).
      expect(postDays.body).toMatchObject({ timezone: canonical, from: localToday(zone) });
      const days = Object.fromEntries(
        res.body.items.filter((d) => d.impressions > 0).map((d) => [d.date, d.impressions]),
      );
      return days;
    };
    expect(await impressionsIn("UTC")).toEqual({ [shiftDay(day, -1)]: 1, [day]: 1 });
    expect(await impressionsIn("Asia/Kolkata")).toEqual({ [day]: 1 });
    expect(await impressionsIn("America/Los_Angeles")).toEqual({ [shiftDay(day, -1)]: 1 });
  });
});

describe("GET /v1/posts/{id}/analytics", () => {
  it("gives the author the post's days since it was created: impressions, votes, comments, shares", async () => {
    const [author, fan, other] = await crowd(3);
    const post = await publishedPost(author);
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: fan.accessToken });
    await call("POST", `/v1/posts/${post.id}/comments`, { token: fan.accessToken, body: { content: "one" } });
    await call("POST", `/v1/posts/${post.id}/comments`, { token: other.accessToken, body: { content: "two" } });
    await call("POST", `/v1/posts/${post.id}/share`, { token: other.accessToken });
    await sendEvents([impression(post.id, `fan-${fan.id}`)], fan.accessToken);
    await flushFor([author, fan, other]);
    const res = await call<Series<PostDay> & { postId: string }>(
      "GET",
      `/v1/posts/${post.id}/analytics?from=${shiftDay(today(), -10)}`,
      { token: author.accessToken },
    );
    expect(res.status, res.text).toBe(200);
    // The post is from today: the days before it existed are left out.
    expect(res.body).toMatchObject({ postId: post.id, from: today(), to: today() });
    expect(res.body.items).toEqual([
      { date: today(), impressions: 1, votes: 1, comments: 2, shares: 1, saves: 0, engagements: 4 },
    ]);
    expect(waits(res.headers)).toMatchObject({ mongo: 1, clickhouse: 1 });
  });

  it("is a 404 for anyone but the author, for a deleted post and for an unknown id", async () => {
    const [author, other] = await crowd(2);
    const post = await publishedPost(author);
    expectProblem(await call("GET", `/v1/posts/${post.id}/analytics`, { token: other.accessToken }), 404, "not_found");
    const ghost = new ObjectId().toHexString();
    expectProblem(await call("GET", `/v1/posts/${ghost}/analytics`, { token: author.accessToken }), 404, "not_found");
    expect((await call("DELETE", `/v1/posts/${post.id}`, { token: author.accessToken })).status).toBe(204);
    expectProblem(await call("GET", `/v1/posts/${post.id}/analytics`, { token: author.accessToken }), 404, "not_found");
  });
});

describe("POST /v1/events and impressions", () => {
  it("refuses a post_impression without the post's id, naming the field", async () => {
    const res = await call("POST", "/v1/events", {
      body: { events: [{ ...impression("x", "d"), properties: {} }, impression("not-an-id", "d")] },
    });
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toEqual(["events.0.properties.postId", "events.1.properties.postId"]);
  });

  it("counts nothing for an impression of a deleted post", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    expect((await call("DELETE", `/v1/posts/${post.id}`, { token: author.accessToken })).status).toBe(204);
    await sendEvents([impression(post.id, `fan-${fan.id}`)], fan.accessToken);
    await flushFor([author, fan]);
    expect((await todayOf(author)).impressions).toBe(0);
  });
});
