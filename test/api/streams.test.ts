import { describe, expect, it } from "vitest";
import { announceLive } from "../../src/features/streams/announce";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, waits } from "../support/api";
import { pushesArrive, pushesTo, registrationToken } from "../support/delivery";
import { appWith, testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import {
  act,
  beat,
  createdStream,
  encoder,
  eventually,
  getStream,
  liveInputOf,
  liveList,
  providerInput,
  type StreamBody,
  type StreamPageBody,
  scheduledFor,
} from "../support/streams";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

const follow = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/follow`, { token: who.accessToken });

async function everyLiveId(who: TestUser): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res: { body: StreamPageBody } = await liveList(
      who,
      `?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    ids.push(...res.body.items.map((s) => s.id));
    cursor = res.body.nextCursor;
  } while (cursor);
  return ids;
}

describe("POST /v1/streams", () => {
  it("goes live now with a live input at the provider: ingest to the streamer only, playback to everyone", async () => {
    const [streamer, viewer] = await crowd(2);
    const res = await call<StreamBody>("POST", "/v1/streams", {
      token: streamer.accessToken,
      body: { title: "  Sunset timelapse ", description: "Live from the roof", category: "art", tags: ["Sky", "sky"] },
    });
    expect(res.status, res.text).toBe(201);
    const stream = res.body;
    expect(stream).toMatchObject({
      userId: streamer.id,
      user: { id: streamer.id, username: streamer.username },
      title: "Sunset timelapse",
      description: "Live from the roof",
      category: "art",
      tags: ["sky"],
      status: "live",
      viewerCount: 0,
      giftTotal: 0,
      scheduledFor: null,
      viewer: { role: "streamer" },
    });
    expect(stream.startedAt).not.toBeNull();
    const uid = liveInputOf(stream);
    const input = await providerInput(uid);
    expect(input).toMatchObject({ uid, meta: { streamId: stream.id }, defaultCreator: streamer.id });
    expect(stream.ingest).toEqual({
      url: "rtmps://live.cloudflare.com:443/live/",
      streamKey: (input?.rtmps as { streamKey: string } | undefined)?.streamKey,
    });

    // Viewers get the playback URL, which plays once the encoder sends (204 before, as Stream answers).
    const seen = await getStream(viewer, stream.id);
    expect(seen.status).toBe(200);
    expect(seen.body.ingest).toBeUndefined();
    expect(seen.text).not.toContain(stream.ingest?.streamKey ?? "?");
    expect(seen.body).toMatchObject({ playbackUrl: stream.playbackUrl, viewer: { role: "viewer" } });
    expect((await fetch(stream.playbackUrl ?? "")).status).toBe(204);
    await encoder(uid, "connected");
    const playing = await fetch(stream.playbackUrl ?? "");
    expect(playing.status).toBe(200);
    expect(await playing.text()).toContain("#EXTM3U");
    // The streamer reading their stream gets the key again, from the provider (it is stored nowhere).
    expect((await getStream(streamer, stream.id)).body.ingest).toEqual(stream.ingest);
    expect(JSON.stringify(await deps.db.liveStreams.findOne({ _id: new ObjectId(stream.id) }))).not.toContain(
      stream.ingest?.streamKey ?? "?",
    );
  });

  it("makes one stream for one Idempotency-Key, even when the first answer was lost", async () => {
    const [streamer] = await crowd(1);
    const key = crypto.randomUUID();
    const create = (title = "Once") =>
      call<StreamBody>("POST", "/v1/streams", {
        token: streamer.accessToken,
        body: { title },
        headers: { "Idempotency-Key": key },
      });
    const first = await create();
    expect(first.status, first.text).toBe(201);
    const replayed = await create();
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.body.id).toBe(first.body.id);
    // The answer's Redis record gone (as if the first attempt's answer was lost to a 503): still the same stream.
    await deps.redis.del(deps.keys.idempotency(`stream:${streamer.id}`, key));
    const retried = await create();
    expect(retried.status).toBe(201);
    expect(retried.body).toMatchObject({ id: first.body.id, ingest: first.body.ingest });
    expect(await deps.db.liveStreams.find({ userId: new ObjectId(streamer.id) })).toHaveLength(1);
    expectProblem(await create("Another"), 422, "idempotency_mismatch");
  });

  it("names each field that is out of bounds, and creates nothing at the provider for them", async () => {
    const [streamer] = await crowd(1);
    const bad = async (body: Record<string, unknown>) =>
      fieldPaths(await call("POST", "/v1/streams", { token: streamer.accessToken, body }));
    expect(await bad({ title: "x".repeat(101) })).toEqual(["title"]);
    expect(await bad({ title: "ok", description: "d".repeat(501) })).toEqual(["description"]);
    expect(await bad({ title: "ok", scheduledFor: new Date(Date.now() - 60_000).toISOString() })).toEqual([
      "scheduledFor",
    ]);
    expect(await bad({ title: "ok", scheduledFor: "tomorrow" })).toEqual(["scheduledFor"]);
    expect(await bad({ title: "ok", tags: Array.from({ length: 11 }, (_, i) => `t${i}`) })).toEqual(["tags"]);
    expect(await bad({ title: "ok", streamKey: "mine" })).toEqual(["streamKey"]);
    const theirs = await deps.db.liveStreams.find({ userId: new ObjectId(streamer.id) });
    expect(theirs).toEqual([]);
  });

  it("answers 503 with Retry-After when the provider cannot be reached, and writes nothing", async () => {
    const { appWith } = await import("../support/deps");
    const [streamer] = await crowd(1);
    const unreachable = appWith({ LIVE_VIDEO_API_URL: "http://127.0.0.1:9/client/v4" });
    const res = await call("POST", "/v1/streams", { token: streamer.accessToken, body: { title: "x" } }, unreachable);
    expectProblem(res, 503, "unavailable");
    expect(res.headers.get("retry-after")).not.toBeNull();
    const wrongToken = appWith({ LIVE_VIDEO_API_TOKEN: "not-the-token" });
    expectProblem(
      await call("POST", "/v1/streams", { token: streamer.accessToken, body: { title: "x" } }, wrongToken),
      503,
      "unavailable",
    );
    expect(await deps.db.liveStreams.find({ userId: new ObjectId(streamer.id) })).toEqual([]);
  });
});

describe("a stream's lifecycle", () => {
  it("moves scheduled → live → ended only by the streamer, repeats change nothing, and ended is final", async () => {
    const [streamer, other] = await crowd(2);
    const stream = await createdStream(streamer, { scheduledFor: scheduledFor(30) });
    expect(stream).toMatchObject({ status: "scheduled", startedAt: null });
    expect(stream.ingest?.streamKey).toBeTruthy();
    expectProblem(await act(other, stream.id, "start"), 403, "forbidden");
    expectProblem(await act(streamer, stream.id, "end"), 409, "conflict");

    const started = await act(streamer, stream.id, "start");
    expect(started.status, started.text).toBe(200);
    expect(started.body).toMatchObject({ status: "live" });
    expect((await act(streamer, stream.id, "start")).body.startedAt).toBe(started.body.startedAt);
    expectProblem(await act(other, stream.id, "end"), 403, "forbidden");
    expect((await expectProblem(await act(streamer, stream.id, "cancel"), 409, "conflict")).reason).toBe("stream_live");

    const ended = await act(streamer, stream.id, "end");
    expect(ended.body).toMatchObject({ status: "ended", endReason: "streamer", playbackUrl: null });
    expect(ended.body.ingest).toBeUndefined();
    expect((await act(streamer, stream.id, "end")).body.endedAt).toBe(ended.body.endedAt);
    expect((await expectProblem(await act(streamer, stream.id, "start"), 409, "conflict")).reason).toBe("stream_over");
    // The live input goes once the stream is over, so its key streams nothing any more.
    await eventually(
      () => providerInput(liveInputOf(stream)),
      (input) => input === null,
    );
  });

  it("lets a scheduled stream that never starts be cancelled: gone for others, kept for its streamer", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer, { scheduledFor: scheduledFor(120) });
    const cancelled = await act(streamer, stream.id, "cancel");
    expect(cancelled.body).toMatchObject({ status: "cancelled", endReason: "streamer" });
    expect(cancelled.body.cancelledAt).not.toBeNull();
    expect((await act(streamer, stream.id, "cancel")).status).toBe(200);
    expect((await expectProblem(await act(streamer, stream.id, "start"), 409, "conflict")).reason).toBe("stream_over");
    expectProblem(await getStream(viewer, stream.id), 404, "not_found");
    expect((await getStream(streamer, stream.id)).body.status).toBe("cancelled");
    expectProblem(await beat(viewer, stream.id), 404, "not_found");
    const theirs = await call<StreamPageBody>("GET", `/v1/users/${streamer.id}/streams`, { token: viewer.accessToken });
    expect(theirs.body.items).toEqual([]);
    const mine = await call<StreamPageBody>("GET", `/v1/users/${streamer.id}/streams`, { token: streamer.accessToken });
    expect(mine.body.items.map((s) => s.id)).toEqual([stream.id]);
    await eventually(
      () => providerInput(liveInputOf(stream)),
      (input) => input === null,
    );
  });

  it("starts exactly once when the streamer taps start on two devices at once", async () => {
    const [streamer, follower] = await crowd(2);
    await follow(follower, streamer);
    const stream = await createdStream(streamer, { scheduledFor: scheduledFor(10) });
    const answers = await Promise.all(Array.from({ length: 6 }, () => act(streamer, stream.id, "start")));
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(new Set(answers.map((a) => a.body.startedAt)).size).toBe(1);
    const notes = await eventually(
      () => deps.db.notifications.find({ userId: new ObjectId(follower.id), type: "live" }),
      (n) => n.length > 0,
    );
    expect(notes).toHaveLength(1);
  });
});

describe("round trips of a stream's state changes", () => {
  it("wait on 2 MongoDB calls in a row each: create, start, end and cancel", async () => {
    const [streamer] = await crowd(1);
    const created = await call<StreamBody>("POST", "/v1/streams", {
      token: streamer.accessToken,
      body: { title: "counted", scheduledFor: scheduledFor(30) },
    });
    expect(waits(created.headers)).toMatchObject({ mongo: 2, redis: 1 });
    const started = await act(streamer, created.body.id, "start");
    expect(waits(started.headers)).toMatchObject({ mongo: 2, redis: 2 });
    const ended = await act(streamer, created.body.id, "end");
    expect(waits(ended.headers)).toMatchObject({ mongo: 2, redis: 3 });
    const other = await createdStream(streamer, { scheduledFor: scheduledFor(30) });
    const cancelled = await act(streamer, other.id, "cancel");
    expect(waits(cancelled.headers)).toMatchObject({ mongo: 2, redis: 2 });
  });
});

describe("followers told “X is live”", () => {
  it("tells each follower once per stream, with the stream to open; muting followers hear nothing", async () => {
    const [streamer, fan, other, muter, stranger] = await crowd(5);
    for (const f of [fan, other, muter]) await follow(f, streamer);
    await call("PUT", `/v1/users/${streamer.id}/mute`, { token: muter.accessToken });
    const stream = await createdStream(streamer, { title: "Night sky" });
    const liveNotes = (who: TestUser) => deps.db.notifications.find({ userId: new ObjectId(who.id), type: "live" });
    await eventually(
      () => liveNotes(other),
      (n) => n.length === 1,
    );
    // Telling again (a crash re-run, the maintenance job) adds nothing.
    await deps.db.liveStreams.updateOne(
      { _id: new ObjectId(stream.id) },
      { $set: { liveNotice: { state: "pending", after: null, told: 0, updatedAt: new Date() } } },
    );
    await announceLive(deps, stream.id);
    const list = await call<{
      items: {
        type: string;
        title: string;
        body: string;
        actionPayload: Record<string, string>;
        aggregationCount: number;
      }[];
    }>("GET", "/v1/notifications", { token: fan.accessToken });
    const live = list.body.items.filter((n) => n.type === "live");
    expect(live).toEqual([
      expect.objectContaining({
        title: `${streamer.username} is live`,
        body: "Night sky",
        aggregationCount: 1,
        actionPayload: { screen: "stream", streamId: stream.id },
      }),
    ]);
    expect(await liveNotes(other)).toHaveLength(1);
    expect(await liveNotes(muter)).toEqual([]);
    expect(await liveNotes(stranger)).toEqual([]);
  });
});

describe("“X is live” on followers' phones", () => {
  it("reaches a follower's device as a push, once per stream, with the stream to open", async () => {
    const [streamer, fan] = await crowd(2);
    await follow(fan, streamer);
    const pushToken = registrationToken();
    const installed = await call("PUT", `/v1/me/devices/${crypto.randomUUID()}`, {
      token: fan.accessToken,
      body: { platform: "android", pushToken, appVersion: "3.1.0" },
    });
    expect(installed.status, installed.text).toBe(200);
    const stream = await createdStream(streamer, { title: "Studio session" });
    const [push] = await pushesArrive(pushToken, 1);
    const message = push?.message as { notification: { title: string; body: string }; data: Record<string, string> };
    expect(message.notification).toMatchObject({ title: `${streamer.username} is live`, body: "Studio session" });
    expect(message.data).toMatchObject({ screen: "stream", streamId: stream.id });
    await announceLive(deps, stream.id);
    await new Promise((r) => setTimeout(r, 500));
    expect(await pushesTo(pushToken)).toHaveLength(1);
  });
});

describe("GET /v1/streams/live", () => {
  it("ranks by current viewers, then the most recently started, and pages without repeats", async () => {
    const people = await crowd(9);
    const [a, b, c, d, ...viewers] = people as [TestUser, TestUser, TestUser, TestUser, ...TestUser[]];
    const sa = await createdStream(a);
    const sb = await createdStream(b);
    const sc = await createdStream(c);
    const sd = await createdStream(d);
    // b: 3 viewers, c: 1, a and d: none (d started later than a, so it comes first of the two).
    await Promise.all([...viewers.slice(0, 3).map((v) => beat(v, sb.id)), beat(viewers[3] as TestUser, sc.id)]);
    const mine = [sa.id, sb.id, sc.id, sd.id];
    const order = (await everyLiveId(viewers[4] as TestUser)).filter((id) => mine.includes(id));
    expect(order).toEqual([sb.id, sc.id, sd.id, sa.id]);
    const listed = await liveList(viewers[4], "?limit=100");
    expect(listed.body.items.find((s) => s.id === sb.id)?.viewerCount).toBe(3);

    // Two at a time: the same order, each stream once.
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: StreamPageBody } = await liveList(
        viewers[4],
        `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      );
      paged.push(...res.body.items.map((s) => s.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    // (Other suites' streams move while the walk goes on; these four hold still, so each shows once, in order.)
    expect(paged.filter((id) => mine.includes(id))).toEqual(order);
    expect(fieldPaths(await liveList(a, "?cursor=bm90LWEtY3Vyc29y"))).toEqual(["cursor"]);
  });

  it("leaves out blocked, muted, banned and shadow-banned streamers (a shadow-banned one still sees their own)", async () => {
    const [viewer, blocked, blocker, muted, banned, shadowed, plain] = await crowd(7);
    const streams = new Map<TestUser, StreamBody>();
    for (const s of [blocked, blocker, muted, banned, shadowed, plain]) streams.set(s, await createdStream(s));
    await call("PUT", `/v1/users/${blocked.id}/block`, { token: viewer.accessToken });
    await call("PUT", `/v1/users/${viewer.id}/block`, { token: blocker.accessToken });
    await call("PUT", `/v1/users/${muted.id}/mute`, { token: viewer.accessToken });
    await deps.db.users.updateOne({ _id: new ObjectId(banned.id) }, { $set: { bannedAt: new Date() } });
    await deps.db.users.updateOne({ _id: new ObjectId(shadowed.id) }, { $set: { shadowBanned: true } });
    const id = (u: TestUser) => streams.get(u)?.id ?? "";
    const listed = await everyLiveId(viewer);
    expect(listed).toContain(id(plain));
    for (const hidden of [blocked, blocker, muted, banned, shadowed]) expect(listed).not.toContain(id(hidden));
    // A muted streamer's stream still opens from a link; blocked, banned and shadow-banned ones do not.
    expect((await getStream(viewer, id(muted))).status).toBe(200);
    for (const gone of [blocked, blocker, banned, shadowed]) {
      expectProblem(await getStream(viewer, id(gone)), 404, "not_found");
    }
    expect(await everyLiveId(shadowed)).toContain(id(shadowed));
    expect((await getStream(shadowed, id(shadowed))).status).toBe(200);
    // Signed out: the same, without the viewer's own blocks and mutes.
    const anonymous = (await liveList(undefined, "?limit=100")).body.items.map((s) => s.id);
    expect(anonymous).not.toContain(id(banned));
    expect(anonymous).not.toContain(id(shadowed));
  });

  it("costs 2 MongoDB waits and 1 Redis wait beyond the rate limit when ranked anew", async () => {
    const [streamer, viewer] = await crowd(2);
    await createdStream(streamer);
    const res = await liveList(viewer);
    expect(res.status).toBe(200);
    expect(waits(res.headers)).toMatchObject({ mongo: 2, redis: 2 });
    expect(roundTrips(res.headers).mongo).toBe(2);
  });

  it("serves the ranked directory from Redis for STREAM_LIVE_CACHE_TTL_SECONDS, filtered per caller", async () => {
    const cached = appWith({ STREAM_LIVE_CACHE_TTL_SECONDS: "60" });
    const [plain, blocked, shadowed, viewer, blocker] = await crowd(5);
    const streams = {
      plain: await createdStream(plain),
      blocked: await createdStream(blocked),
      shadowed: await createdStream(shadowed),
    };
    await deps.db.users.updateOne({ _id: new ObjectId(shadowed.id) }, { $set: { shadowBanned: true } });
    await call("PUT", `/v1/users/${blocked.id}/block`, { token: blocker.accessToken });
    await beat(viewer, streams.plain.id);
    await deps.redis.del(deps.keys.streamDirectory());
    const ids = (res: { body: StreamPageBody }) => res.body.items.map((s) => s.id);

    const ranked = await liveList(viewer, "?limit=100", cached);
    expect(waits(ranked.headers)).toMatchObject({ mongo: 2 });
    expect(ranked.body.items.find((s) => s.id === streams.plain.id)).toMatchObject({
      viewerCount: 1,
      viewer: { role: "viewer" },
    });
    // From the cache: one Redis round trip (rate limit, directory and the caller's blocks together), no MongoDB.
    // (The block just dropped the caller's cached relations: the first read rebuilds them.)
    await liveList(blocker, "?limit=1", cached);
    const hit = await liveList(blocker, "?limit=100", cached);
    expect(roundTrips(hit.headers)).toMatchObject({ redis: 1, mongo: 0 });
    expect(ids(hit)).toContain(streams.plain.id);
    expect(ids(hit)).not.toContain(streams.blocked.id);
    expect(ids(hit)).not.toContain(streams.shadowed.id);
    const own = await liveList(shadowed, "?limit=100", cached);
    expect(roundTrips(own.headers).mongo).toBe(0);
    expect(own.body.items.find((s) => s.id === streams.shadowed.id)).toMatchObject({ viewer: { role: "streamer" } });
    expect(ids(await liveList(undefined, "?limit=100", cached))).not.toContain(streams.shadowed.id);
    // Counts are as ranked until the directory is ranked again.
    await beat(blocker, streams.plain.id);
    expect(
      (await liveList(viewer, "?limit=100", cached)).body.items.find((s) => s.id === streams.plain.id)?.viewerCount,
    ).toBe(1);
    await deps.redis.del(deps.keys.streamDirectory());
    expect(
      (await liveList(viewer, "?limit=100", cached)).body.items.find((s) => s.id === streams.plain.id)?.viewerCount,
    ).toBe(2);
  });
});

describe("GET /v1/users/{id}/streams", () => {
  it("lists a person's streams newest first, live numbers included, and hides a blocked person's (404)", async () => {
    const [streamer, viewer, blocker] = await crowd(3);
    const first = await createdStream(streamer, { scheduledFor: scheduledFor(60) });
    const second = await createdStream(streamer);
    await beat(viewer, second.id);
    const res = await call<StreamPageBody>("GET", `/v1/users/${streamer.id}/streams`, { token: viewer.accessToken });
    expect(res.body.items.map((s) => [s.id, s.status, s.viewerCount])).toEqual([
      [second.id, "live", 1],
      [first.id, "scheduled", 0],
    ]);
    const live = await call<StreamPageBody>("GET", `/v1/users/${streamer.id}/streams?status=live`, {});
    expect(live.body.items.map((s) => s.id)).toEqual([second.id]);
    await call("PUT", `/v1/users/${viewer.id}/block`, { token: blocker.accessToken });
    await createdStream(blocker);
    expectProblem(
      await call("GET", `/v1/users/${blocker.id}/streams`, { token: viewer.accessToken }),
      404,
      "not_found",
    );
    expect(
      fieldPaths(await call("GET", `/v1/users/${streamer.id}/streams?status=cancelled`, { token: viewer.accessToken })),
    ).toEqual(["status"]);
  });
});
