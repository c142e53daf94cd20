import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { signAccessToken, tokenSettingsOf } from "../../src/platform/tokens";
import { roundTrips, uniqueIp, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem } from "../support/problems";
import {
  act,
  beat,
  clockedApp,
  createdStream,
  getStream,
  inWaves,
  liveList,
  type StreamBody,
  scheduledFor,
} from "../support/streams";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const LIFETIME_MS = deps.config.streams.viewerLifetimeSeconds * 1000;
const BEAT_MS = 15_000;

const numbers = (s: StreamBody) => ({ viewers: s.viewerCount, peak: s.peakViewers, unique: s.uniqueViewers });

describe("POST /v1/streams/{id}/heartbeat", () => {
  it("counts 200 viewers beating 5 times each as 200, and none once the lifetime has passed", async () => {
    const app = clockedApp();
    const [streamer, ...viewers] = await crowd(201);
    const stream = await createdStream(streamer, {}, app.fetch);
    let lastRound = 0;
    for (let round = 0; round < 5; round++) {
      lastRound = app.at();
      const answers = await inWaves(viewers.map((v) => () => beat(v, stream.id, app.fetch)));
      expect(answers.map((a) => a.status)).toEqual(Array(200).fill(204));
      const seen = await getStream(streamer, stream.id, app.fetch);
      expect(numbers(seen.body)).toEqual({ viewers: 200, peak: 200, unique: 200 });
      app.advance(BEAT_MS);
    }
    // Nobody says goodbye: a viewer stops counting once their last beat is older than the lifetime.
    app.set(lastRound + LIFETIME_MS - 1);
    expect((await getStream(streamer, stream.id, app.fetch)).body.viewerCount).toBe(200);
    app.set(lastRound + LIFETIME_MS);
    const after = await getStream(streamer, stream.id, app.fetch);
    expect(numbers(after.body)).toEqual({ viewers: 0, peak: 200, unique: 200 });
    const listed = (await liveList(streamer, "?limit=100", app.fetch)).body.items.find((s) => s.id === stream.id);
    expect(listed?.viewerCount).toBe(0);
  }, 180_000);

  it("counts a viewer once however many devices (sessions, addresses) they watch on", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer);
    const devices = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => ({
        ...viewer,
        accessToken: await signAccessToken(
          { sub: viewer.id, sid: new ObjectId().toHexString(), role: "user", tier: "free" },
          tokenSettingsOf(deps.config.auth),
          new Date(),
        ),
        device: `device-${i}`,
      })),
    );
    const answers = await Promise.all(
      devices.flatMap((d) =>
        Array.from({ length: 3 }, () =>
          beat(d, stream.id, undefined, { "x-device-id": d.device, "cf-connecting-ip": uniqueIp() }),
        ),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(204));
    expect(numbers((await getStream(streamer, stream.id)).body)).toEqual({ viewers: 1, peak: 1, unique: 1 });
  });

  it("keeps the peak when viewers leave, and counts those who come back once in the unique total", async () => {
    const app = clockedApp();
    const [streamer, a, b, c] = await crowd(4);
    const stream = await createdStream(streamer, {}, app.fetch);
    await Promise.all([a, b, c].map((v) => beat(v, stream.id, app.fetch)));
    app.advance(LIFETIME_MS - 1_000);
    await beat(a, stream.id, app.fetch);
    app.advance(2_000);
    // b and c left without a word; a is still there.
    expect(numbers((await getStream(a, stream.id, app.fetch)).body)).toEqual({ viewers: 1, peak: 3, unique: 3 });
    await beat(b, stream.id, app.fetch);
    expect(numbers((await getStream(a, stream.id, app.fetch)).body)).toEqual({ viewers: 2, peak: 3, unique: 3 });
  });

  it("freezes the numbers into the stream when it ends; later beats are refused and change nothing", async () => {
    const app = clockedApp();
    const [streamer, a, b, late] = await crowd(4);
    const stream = await createdStream(streamer, {}, app.fetch);
    await Promise.all([a, b].map((v) => beat(v, stream.id, app.fetch)));
    app.advance(LIFETIME_MS + 1);
    await beat(a, stream.id, app.fetch);
    const ended = await act(streamer, stream.id, "end", app.fetch);
    expect(numbers(ended.body)).toEqual({ viewers: 0, peak: 2, unique: 2 });
    const stored = await deps.db.liveStreams.findOne({ _id: new ObjectId(stream.id) });
    expect(stored).toMatchObject({ status: "ended", peakViewers: 2, uniqueViewers: 2 });
    const refused = await beat(late, stream.id, app.fetch);
    expect(expectProblem(refused, 409, "conflict").reason).toBe("stream_not_live");
    app.advance(LIFETIME_MS * 10);
    expect(numbers((await getStream(late, stream.id, app.fetch)).body)).toEqual({ viewers: 0, peak: 2, unique: 2 });
  });

  it("does not count the streamer or a co-host as a viewer, nor anyone blocked with the streamer (404)", async () => {
    const [streamer, cohost, viewer, blocked] = await crowd(4);
    const stream = await createdStream(streamer);
    const { call } = await import("../support/api");
    await call("PUT", `/v1/streams/${stream.id}/cohosts/${cohost.id}`, { token: streamer.accessToken });
    await call("POST", `/v1/streams/${stream.id}/cohosts/accept`, { token: cohost.accessToken });
    await call("PUT", `/v1/users/${blocked.id}/block`, { token: streamer.accessToken });
    expect((await beat(streamer, stream.id)).status).toBe(204);
    expect((await beat(cohost, stream.id)).status).toBe(204);
    expect((await beat(viewer, stream.id)).status).toBe(204);
    expectProblem(await beat(blocked, stream.id), 404, "not_found");
    expect(numbers((await getStream(streamer, stream.id)).body)).toEqual({ viewers: 1, peak: 1, unique: 1 });
  });

  it("answers 409 for a stream that has not started and 404 for one that does not exist", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer, { scheduledFor: scheduledFor(30) });
    expect(expectProblem(await beat(viewer, stream.id), 409, "conflict").reason).toBe("stream_not_live");
    expectProblem(await beat(viewer, new ObjectId().toHexString()), 404, "not_found");
  });

  it("costs one Redis round trip of its own and no MongoDB call", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer);
    await beat(viewer, stream.id);
    const res = await beat(viewer, stream.id);
    expect(res.status).toBe(204);
    // The rate limit (with the caller's standing and blocks) plus the beat itself.
    expect(waits(res.headers)).toMatchObject({ redis: 2, mongo: 0 });
    expect(roundTrips(res.headers)).toMatchObject({ redis: 2, mongo: 0 });
  });

  it("restores a live stream's state that Redis lost, and counts the beat that found it missing", async () => {
    const [streamer, viewer, other] = await crowd(3);
    const stream = await createdStream(streamer);
    await beat(viewer, stream.id);
    await deps.redis.del(deps.keys.streamLive(stream.id));
    expect((await getStream(other, stream.id)).body.viewerCount).toBe(0);
    expect((await beat(other, stream.id)).status).toBe(204);
    expect((await beat(streamer, stream.id)).status).toBe(204);
    expect((await getStream(other, stream.id)).body.viewerCount).toBe(2);
  });
});

describe("GET /v1/streams/{id}", () => {
  it("costs 2 MongoDB waits and 1 Redis wait beyond the rate limit", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer);
    const res = await getStream(viewer, stream.id);
    expect(res.status).toBe(200);
    expect(waits(res.headers)).toMatchObject({ mongo: 2, redis: 2 });
  });

  it("is a 404 for missing ids and for viewers blocked with the streamer, whichever blocked", async () => {
    const [streamer, blocker] = await crowd(2);
    const stream = await createdStream(streamer);
    await deps.redis.del(deps.keys.relations(blocker.id));
    const { call } = await import("../support/api");
    await call("PUT", `/v1/users/${streamer.id}/block`, { token: blocker.accessToken });
    expectProblem(await getStream(blocker, stream.id), 404, "not_found");
    expectProblem(await getStream(blocker as TestUser, new ObjectId().toHexString()), 404, "not_found");
  });
});

describe("streams with Redis unreachable", () => {
  it("still show streams and the directory (with no live numbers), and refuse beats and gifts with 503, writing nothing", async () => {
    const { appWith } = await import("../support/deps");
    const { CLOSED_PORT_URL, FAULT_TIMEOUTS } = await import("../support/faults");
    const { grant, balanceOf } = await import("../support/gems");
    const { call } = await import("../support/api");
    const down = appWith({ UPSTASH_REDIS_REST_URL: CLOSED_PORT_URL, ...FAULT_TIMEOUTS });
    const [streamer, viewer] = await crowd(2);
    await grant(viewer, 200);
    const stream = await createdStream(streamer);
    await beat(viewer, stream.id);
    const seen = await getStream(viewer, stream.id, down);
    expect(seen.status, seen.text).toBe(200);
    expect(seen.body).toMatchObject({ status: "live", viewerCount: 0 });
    expect((await liveList(viewer, "?limit=100", down)).status).toBe(200);
    const refused = await beat(viewer, stream.id, down);
    expectProblem(refused, 503, "unavailable");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const gift = await call(
      "POST",
      `/v1/streams/${stream.id}/gifts`,
      { token: viewer.accessToken, body: { amount: 50 }, headers: { "Idempotency-Key": crypto.randomUUID() } },
      down,
    );
    expectProblem(gift, 503, "unavailable");
    expect(await balanceOf(viewer)).toBe(200);
    expect(await deps.db.streamGifts.find({ streamId: new ObjectId(stream.id) })).toEqual([]);
    // Back up: the beat from before still counts.
    expect((await getStream(viewer, stream.id)).body.viewerCount).toBe(1);
  });
});
