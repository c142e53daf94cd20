import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { type RunningStreamServer, startStreamServer } from "../../scripts/local/stream-server";
import { type Receiver, startReceiver } from "./receiver";

const ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN = "test-stream-token-0123456789abcdefghijkl";

let stream: RunningStreamServer;
let receiver: Receiver;

type Envelope = { result: unknown; success: boolean; errors: { code: number; message: string }[]; messages: unknown[] };
type LiveInput = Record<string, unknown> & { uid: string };

beforeAll(async () => {
  stream = await startStreamServer({ port: await freePort(), accountId: ACCOUNT, apiToken: TOKEN });
  receiver = await startReceiver();
});

afterAll(async () => {
  await stream?.stop();
  await receiver?.stop();
});

beforeEach(() => {
  receiver.deliveries.length = 0;
  receiver.answer(200, { ok: true });
});

async function api(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const res = await fetch(`${stream.apiBaseUrl}/accounts/${ACCOUNT}/stream${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { Authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: (text ? JSON.parse(text) : undefined) as Envelope };
}

async function createInput(body: unknown = { meta: { name: "room-1" }, recording: { mode: "automatic" } }) {
  const { status, json } = await api("POST", "/live_inputs", body);
  expect(status).toBe(200);
  return json.result as LiveInput;
}

async function control(path: string, body: unknown) {
  const res = await fetch(`${stream.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

describe("Cloudflare Stream stand-in: live inputs API", () => {
  it("creates a live input answering Cloudflare's envelope and credential shapes", async () => {
    const { status, json } = await api("POST", "/live_inputs", {
      meta: { name: "room-1", roomId: "r1" },
      recording: { mode: "automatic" },
      deleteRecordingAfterDays: 45,
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({ success: true, errors: [], messages: [] });
    const input = json.result as LiveInput;
    expect(input.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(input).toMatchObject({
      rtmps: { url: "rtmps://live.cloudflare.com:443/live/", streamKey: expect.stringMatching(/\S{32,}/) },
      rtmpsPlayback: { url: "rtmps://live.cloudflare.com:443/live/", streamKey: expect.any(String) },
      srt: { url: "srt://live.cloudflare.com:778", streamId: expect.any(String), passphrase: expect.any(String) },
      srtPlayback: {
        url: "srt://live.cloudflare.com:778",
        streamId: expect.any(String),
        passphrase: expect.any(String),
      },
      webRTC: { url: expect.stringMatching(new RegExp(`^${stream.playbackOrigin}/\\S+/webRTC/publish$`)) },
      webRTCPlayback: { url: `${stream.playbackOrigin}/${input.uid}/webRTC/play` },
      status: null,
      meta: { name: "room-1", roomId: "r1" },
      recording: { mode: "automatic", requireSignedURLs: false, allowedOrigins: null, hideLiveViewerCount: false },
      enabled: true,
      deleteRecordingAfterDays: 45,
      preferLowLatency: false,
    });
    // Ingest and playback credentials are distinct secrets.
    expect((input.rtmps as { streamKey: string }).streamKey).not.toBe(
      (input.rtmpsPlayback as { streamKey: string }).streamKey,
    );
    expect(Number.isNaN(Date.parse(String(input.created)))).toBe(false);
  });

  it("gets, lists, updates and deletes", async () => {
    const input = await createInput();
    const got = await api("GET", `/live_inputs/${input.uid}`);
    expect(got.json.result).toEqual(input);

    const list = await api("GET", "/live_inputs");
    const result = list.json.result as { liveInputs: Record<string, unknown>[]; range: number; total: number };
    const summary = result.liveInputs.find((i) => i.uid === input.uid);
    expect(summary).toEqual({
      uid: input.uid,
      created: input.created,
      modified: input.modified,
      meta: input.meta,
      deleteRecordingAfterDays: null,
      enabled: true,
    });
    expect(result.total).toBe(result.liveInputs.length);

    const updated = await api("PUT", `/live_inputs/${input.uid}`, { meta: { name: "renamed" }, enabled: false });
    expect(updated.json.result).toMatchObject({
      uid: input.uid,
      meta: { name: "renamed" },
      enabled: false,
      recording: { mode: "automatic" },
    });

    const deleted = await api("DELETE", `/live_inputs/${input.uid}`);
    expect(deleted.status).toBe(200);
    expect(deleted.text).toBe("");
    const gone = await api("GET", `/live_inputs/${input.uid}`);
    expect(gone.status).toBe(404);
    expect(gone.json).toMatchObject({
      success: false,
      result: null,
      errors: [{ code: expect.any(Number), message: expect.any(String) }],
    });
  });

  it("validates bodies as documented", async () => {
    for (const body of [
      { deleteRecordingAfterDays: 10 },
      { deleteRecordingAfterDays: 2000 },
      { recording: { mode: "sometimes" } },
      { meta: "not an object" },
      "{not json",
    ]) {
      const { status, json } = await api("POST", "/live_inputs", body);
      expect(status).toBe(400);
      expect(json.success).toBe(false);
    }
    expect((await api("POST", "/live_inputs", { deleteRecordingAfterDays: 30 })).status).toBe(200);
  });

  it("answers authentication and routing errors in the envelope", async () => {
    const missing = await api("GET", "/live_inputs", undefined, null);
    expect(missing.status).toBe(403);
    expect(missing.json).toEqual({
      result: null,
      success: false,
      errors: [{ code: 10000, message: "Authentication error" }],
      messages: [],
    });
    expect((await api("GET", "/live_inputs", undefined, "wrong-token")).status).toBe(403);

    const malformed = await fetch(`${stream.apiBaseUrl}/accounts/${ACCOUNT}/stream/live_inputs`, {
      headers: { Authorization: "Basic abc" },
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as Envelope).errors[0]).toMatchObject({
      code: 6003,
      error_chain: [{ code: 6111 }],
    });

    const otherAccount = await fetch(`${stream.apiBaseUrl}/accounts/${"f".repeat(32)}/stream/live_inputs`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(otherAccount.status).toBe(403);

    const noRoute = await api("GET", "/nothing-here");
    expect(noRoute.status).toBe(404);
    expect(noRoute.json.success).toBe(false);
  });
});

describe("Cloudflare Stream stand-in: status, playback and webhooks", () => {
  it("serves the live input's manifest only while connected, as viewing by input id does", async () => {
    const input = await createInput();
    const manifest = `${stream.playbackOrigin}/${input.uid}/manifest/video.m3u8`;
    const lifecycle = `${stream.playbackOrigin}/${input.uid}/lifecycle`;

    expect((await fetch(manifest)).status).toBe(204);
    expect(await (await fetch(lifecycle)).json()).toEqual({ isInput: true, videoUID: null, live: false });

    expect((await control(`/__inputs/${input.uid}/status`, { status: "connected" })).status).toBe(200);
    expect((await api("GET", `/live_inputs/${input.uid}`)).json.result).toMatchObject({ status: "connected" });
    const live = await fetch(manifest);
    expect(live.status).toBe(200);
    expect(live.headers.get("content-type")).toBe("application/vnd.apple.mpegurl");
    const master = await live.text();
    expect(master.split("\n")[0]).toBe("#EXTM3U");
    expect(master).toMatch(/#EXT-X-STREAM-INF:BANDWIDTH=\d+,RESOLUTION=1280x720/);
    const variant = master.trim().split("\n").at(-1) ?? "";
    const media = await fetch(new URL(variant, manifest));
    expect(media.status).toBe(200);
    expect(await media.text()).toMatch(/^#EXTM3U\n[\s\S]*#EXT-X-TARGETDURATION:\d+/);
    const state = (await (await fetch(lifecycle)).json()) as { isInput: boolean; videoUID: string; live: boolean };
    expect(state).toMatchObject({ isInput: true, live: true, videoUID: expect.stringMatching(/^[0-9a-f]{32}$/) });

    const videos = await api("GET", `/live_inputs/${input.uid}/videos`);
    expect(videos.json.result).toEqual([
      expect.objectContaining({ uid: state.videoUID, status: expect.objectContaining({ state: "live-inprogress" }) }),
    ]);

    await control(`/__inputs/${input.uid}/status`, { status: "disconnected" });
    expect((await api("GET", `/live_inputs/${input.uid}`)).json.result).toMatchObject({ status: "client_disconnect" });
    expect((await fetch(manifest)).status).toBe(204);
    const recorded = (await api("GET", `/live_inputs/${input.uid}/videos`)).json.result as Record<string, unknown>[];
    expect(recorded[0]).toMatchObject({
      uid: state.videoUID,
      readyToStream: true,
      liveInput: input.uid,
      playback: { hls: `${stream.playbackOrigin}/${state.videoUID}/manifest/video.m3u8` },
    });
    const replay = await fetch(`${stream.playbackOrigin}/${state.videoUID}/manifest/stream_720p.m3u8`);
    expect(await replay.text()).toContain("#EXT-X-ENDLIST");

    expect((await control(`/__inputs/${input.uid}/status`, { status: "asleep" })).status).toBe(400);
    expect((await control(`/__inputs/${"0".repeat(32)}/status`, { status: "connected" })).status).toBe(404);
  });

  it("delivers live input events as Cloudflare Notifications does, with cf-webhook-auth", async () => {
    const input = await createInput();
    const { status, json } = await control("/__notify", {
      target: receiver.url,
      uid: input.uid,
      event: "live_input.connected",
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({ status: 200, body: { ok: true }, event: "live_input.connected" });

    const delivery = receiver.deliveries[0];
    expect(delivery?.headers["cf-webhook-auth"]).toBe(stream.notificationSecret);
    const body = JSON.parse(delivery?.body ?? "{}") as Record<string, unknown> & { data: Record<string, unknown> };
    expect(body).toEqual({
      name: expect.any(String),
      text: expect.stringContaining(`Input ID: ${input.uid}\nEvent type: live_input.connected\nUpdated at: `),
      data: {
        notification_name: "Stream Live Input",
        input_id: input.uid,
        event_type: "live_input.connected",
        updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/),
      },
      ts: expect.any(Number),
    });
    expect((await api("GET", `/live_inputs/${input.uid}`)).json.result).toMatchObject({ status: "connected" });

    await control("/__notify", { target: receiver.url, uid: input.uid, event: "live_input.disconnected" });
    expect((await api("GET", `/live_inputs/${input.uid}`)).json.result).toMatchObject({ status: "client_disconnect" });

    await control("/__notify", {
      target: receiver.url,
      uid: input.uid,
      event: "live_input.errored",
      errorCode: "ERR_UNSUPPORTED_VIDEO_CODEC",
    });
    const errored = JSON.parse(receiver.deliveries[2]?.body ?? "{}") as { text: string; data: Record<string, unknown> };
    expect(errored.data.live_input_errored).toEqual({
      error: {
        code: "ERR_UNSUPPORTED_VIDEO_CODEC",
        message: "The input video codec is unsupported for the protocol used.",
      },
      video_codec: "",
      audio_codec: "",
    });
    expect(errored.text).toContain("\nError Code: ERR_UNSUPPORTED_VIDEO_CODEC\n");

    expect((await control("/__notify", { uid: input.uid, event: "live_input.connected" })).status).toBe(400);
    expect(
      (await control("/__notify", { target: receiver.url, uid: "0".repeat(32), event: "live_input.connected" })).status,
    ).toBe(404);
    expect(
      (await control("/__notify", { target: receiver.url, uid: input.uid, event: "live_input.bored" })).status,
    ).toBe(400);
  });

  it("signs the recording-ready video webhook with Webhook-Signature", async () => {
    const registered = await api("PUT", "/webhook", { notificationUrl: receiver.url });
    expect(registered.json.result).toEqual({
      notificationUrl: receiver.url,
      modified: expect.any(String),
      secret: stream.webhookSecret,
    });
    const secret = (registered.json.result as { secret: string }).secret;

    const input = await createInput({
      meta: { name: "room-2" },
      recording: { mode: "automatic" },
      deleteRecordingAfterDays: 30,
    });
    await control(`/__inputs/${input.uid}/status`, { status: "connected" });
    await control(`/__inputs/${input.uid}/status`, { status: "disconnected" });
    const { json } = await control("/__notify", { uid: input.uid, event: "video.ready" });
    expect(json.status).toBe(200);

    const delivery = receiver.deliveries[0];
    const header = String(delivery?.headers["webhook-signature"]);
    const [, time, sig1] = /^time=(\d+),sig1=([0-9a-f]{64})$/.exec(header) ?? [];
    expect(sig1).toBe(await hmacHex(secret, `${time}.${delivery?.body}`));
    expect(sig1).not.toBe(await hmacHex(secret, `${time}.${delivery?.body} `));
    expect(Math.abs(Date.now() / 1000 - Number(time))).toBeLessThan(60);

    const video = JSON.parse(delivery?.body ?? "{}") as Record<string, unknown>;
    expect(video).toMatchObject({
      uid: expect.stringMatching(/^[0-9a-f]{32}$/),
      readyToStream: true,
      status: { state: "ready", pctComplete: "100.000000" },
      liveInput: input.uid,
      scheduledDeletion: expect.any(String),
      playback: {
        hls: expect.stringMatching(/\/manifest\/video\.m3u8$/),
        dash: expect.stringMatching(/\/manifest\/video\.mpd$/),
      },
    });
  });

  it("writes the configured playback origin into URLs", async () => {
    const origin = "https://customer-f33zs165nr7gyfy4.cloudflarestream.com";
    const custom = await startStreamServer({
      port: await freePort(),
      accountId: ACCOUNT,
      apiToken: TOKEN,
      playbackOrigin: origin,
    });
    try {
      const res = await fetch(`${custom.apiBaseUrl}/accounts/${ACCOUNT}/stream/live_inputs`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}` },
        body: "{}",
      });
      const input = ((await res.json()) as Envelope).result as LiveInput;
      expect(input.webRTCPlayback).toEqual({ url: `${origin}/${input.uid}/webRTC/play` });
      expect(custom.playbackOrigin).toBe(origin);
    } finally {
      await custom.stop();
    }
  });
});
