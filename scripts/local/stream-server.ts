import { createHmac, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { pathToFileURL } from "node:url";
import {
  bearerToken,
  controlBody,
  type Delivery,
  deliver,
  deliveryReport,
  HttpError,
  isObject,
  type JsonObject,
  oneOf,
  optionalBoolean,
  optionalString,
  type ReceivedRequest,
  requiredString,
  sendContent,
  sendJson,
  startStandIn,
} from "./standin-http";

/**
 * Dev/test-only Cloudflare Stream stand-in:
 * - Live inputs API under `/client/v4/accounts/{account_id}/stream/live_inputs` (create, list, get, update,
 *   delete, videos) answering in Cloudflare's envelope `{ result, success, errors, messages }`, Bearer token
 *   auth, and `/stream/webhook` to register the video webhook and read its signing secret.
 * - Playback as Stream serves it by live input id: `/{uid}/manifest/video.m3u8` is an HLS master playlist
 *   while the input is connected and 204 while it is not; `/{uid}/lifecycle` says `{ isInput, videoUID, live }`.
 *   URLs in API answers use `playbackOrigin` (the real one is https://customer-<code>.cloudflarestream.com).
 * - Webhooks, as the two documented mechanisms: live_input.connected / disconnected / errored go through
 *   Cloudflare Notifications (a webhook destination authenticated by the `cf-webhook-auth` header carrying
 *   the destination's secret); a recording becoming ready goes through Stream's video webhook, signed
 *   `Webhook-Signature: time=<unix>,sig1=<hex HMAC-SHA256 of "<time>.<body>">`.
 */

export type LiveInputStatus =
  | "connected"
  | "reconnected"
  | "reconnecting"
  | "client_disconnect"
  | "ttl_exceeded"
  | "failed_to_connect"
  | "failed_to_reconnect"
  | "new_configuration_accepted";
const LIVE_INPUT_STATUSES: readonly LiveInputStatus[] = [
  "connected",
  "reconnected",
  "reconnecting",
  "client_disconnect",
  "ttl_exceeded",
  "failed_to_connect",
  "failed_to_reconnect",
  "new_configuration_accepted",
];

export type StreamEvent = "live_input.connected" | "live_input.disconnected" | "live_input.errored" | "video.ready";
const STREAM_EVENTS: readonly StreamEvent[] = [
  "live_input.connected",
  "live_input.disconnected",
  "live_input.errored",
  "video.ready",
];

/** live_input.errored codes and messages from "Receive Live Webhooks". */
export const LIVE_INPUT_ERRORS = {
  ERR_STORAGE_QUOTA_EXHAUSTED: "The account storage quota has been exceeded.",
  ERR_GOP_OUT_OF_RANGE: "Input GOP size or keyframe interval is out of range.",
  ERR_UNSUPPORTED_VIDEO_CODEC: "The input video codec is unsupported for the protocol used.",
  ERR_UNSUPPORTED_AUDIO_CODEC: "The input audio codec is unsupported for the protocol used.",
} as const;
export type LiveInputErrorCode = keyof typeof LIVE_INPUT_ERRORS;

export interface StreamNotifyInput {
  /** Required for live_input.* (the Notifications destination); video.ready defaults to the registered webhook. */
  target?: string;
  uid: string;
  event: StreamEvent;
  errorCode?: LiveInputErrorCode;
}

export interface StreamNotifyResult {
  status: number;
  body: unknown;
  error?: string;
}

export interface StreamServerOptions {
  port: number;
  host?: string;
  accountId?: string;
  apiToken?: string;
  /** The `customer-<code>` part of Stream's playback host. */
  customerCode?: string;
  /** Origin written into playback and WebRTC URLs; defaults to this server, which serves them. */
  playbackOrigin?: string;
  /** Secret of the Notifications webhook destination, sent as `cf-webhook-auth`. */
  notificationSecret?: string;
  /** Name of the notification policy, echoed as `name` in live webhooks. */
  notificationName?: string;
  /** Signing secret of the Stream video webhook. */
  webhookSecret?: string;
  log?: (line: string) => void;
}

export interface RunningStreamServer {
  url: string;
  stop(): Promise<void>;
  /** Base for the API, in place of https://api.cloudflare.com/client/v4. */
  apiBaseUrl: string;
  accountId: string;
  apiToken: string;
  customerCode: string;
  playbackOrigin: string;
  notificationSecret: string;
  webhookSecret: string;
  /** Sets what GET shows as the input's status (null = never connected / idle). */
  setStatus(uid: string, status: LiveInputStatus | null): void;
  notify(input: StreamNotifyInput): Promise<StreamNotifyResult>;
  deliveries(): Delivery[];
  received(): ReceivedRequest[];
}

interface LiveInput {
  uid: string;
  created: string;
  modified: string;
  meta: JsonObject;
  recording: JsonObject;
  enabled: boolean;
  deleteRecordingAfterDays: number | null;
  preferLowLatency: boolean;
  defaultCreator: string | null;
  status: LiveInputStatus | null;
  secrets: {
    rtmpsKey: string;
    rtmpsPlaybackKey: string;
    srtId: string;
    srtPassphrase: string;
    srtPlaybackId: string;
    srtPlaybackPassphrase: string;
    webRtcKey: string;
  };
  videos: Video[];
  liveVideoUid: string | null;
}

interface Video {
  uid: string;
  created: string;
  modified: string;
  state: "live-inprogress" | "ready";
}

/**
 * Cloudflare API error codes. 10000, 7000 and 6003/6111 are the ones Cloudflare's API is widely seen to
 * answer; Stream documents no codes for not-found or validation failures, so those two are placeholders:
 * callers should branch on the HTTP status and `success: false`, not on these numbers.
 */
const CF_ERRORS = {
  authentication: { code: 10000, message: "Authentication error" },
  noRoute: { code: 7000, message: "No route for that URI" },
  invalidHeaders: { code: 6003, message: "Invalid request headers" },
  notFound: { code: 10003, message: "Not Found" },
} as const;
const BAD_REQUEST_CODE = 10005;

export async function startStreamServer(opts: StreamServerOptions): Promise<RunningStreamServer> {
  const accountId = opts.accountId ?? randomBytes(16).toString("hex");
  const apiToken = opts.apiToken ?? randomBytes(30).toString("base64url").slice(0, 40);
  const customerCode = opts.customerCode ?? randomBytes(8).toString("hex");
  const notificationSecret = opts.notificationSecret ?? randomBytes(24).toString("base64url");
  const notificationName = opts.notificationName ?? "Circle live inputs";
  const webhookSecret = opts.webhookSecret ?? randomBytes(16).toString("hex");
  const inputs = new Map<string, LiveInput>();
  const deliveries: Delivery[] = [];
  let webhook: { notificationUrl: string; modified: string } | undefined;
  let origin = opts.playbackOrigin ?? "";

  const view = (input: LiveInput): JsonObject => ({
    uid: input.uid,
    rtmps: { url: "rtmps://live.cloudflare.com:443/live/", streamKey: input.secrets.rtmpsKey },
    rtmpsPlayback: { url: "rtmps://live.cloudflare.com:443/live/", streamKey: input.secrets.rtmpsPlaybackKey },
    srt: {
      url: "srt://live.cloudflare.com:778",
      streamId: input.secrets.srtId,
      passphrase: input.secrets.srtPassphrase,
    },
    srtPlayback: {
      url: "srt://live.cloudflare.com:778",
      streamId: input.secrets.srtPlaybackId,
      passphrase: input.secrets.srtPlaybackPassphrase,
    },
    webRTC: { url: `${origin}/${input.secrets.webRtcKey}/webRTC/publish` },
    webRTCPlayback: { url: `${origin}/${input.uid}/webRTC/play` },
    created: input.created,
    modified: input.modified,
    meta: input.meta,
    status: input.status,
    recording: input.recording,
    enabled: input.enabled,
    deleteRecordingAfterDays: input.deleteRecordingAfterDays,
    preferLowLatency: input.preferLowLatency,
    ...(input.defaultCreator ? { defaultCreator: input.defaultCreator } : {}),
  });

  const videoView = (input: LiveInput, video: Video): JsonObject => {
    const ready = video.state === "ready";
    const scheduled =
      ready && input.deleteRecordingAfterDays !== null
        ? new Date(Date.parse(video.modified) + input.deleteRecordingAfterDays * 86_400_000).toISOString()
        : null;
    return {
      uid: video.uid,
      creator: input.defaultCreator,
      thumbnail: `${origin}/${video.uid}/thumbnails/thumbnail.jpg`,
      thumbnailTimestampPct: 0,
      readyToStream: ready,
      readyToStreamAt: ready ? video.modified : null,
      status: {
        state: video.state,
        pctComplete: ready ? "100.000000" : "0.000000",
        errorReasonCode: "",
        errorReasonText: "",
      },
      meta: { ...input.meta, name: `${String(input.meta.name ?? "Stream Live")} ${video.created}` },
      created: video.created,
      modified: video.modified,
      scheduledDeletion: scheduled,
      size: 0,
      preview: `${origin}/${video.uid}/watch`,
      allowedOrigins: Array.isArray(input.recording.allowedOrigins) ? input.recording.allowedOrigins : [],
      requireSignedURLs: input.recording.requireSignedURLs === true,
      uploaded: video.created,
      uploadExpiry: null,
      maxSizeBytes: null,
      maxDurationSeconds: null,
      duration: ready ? 42.5 : -1,
      input: { width: 1280, height: 720 },
      playback: {
        hls: `${origin}/${video.uid}/manifest/video.m3u8`,
        dash: `${origin}/${video.uid}/manifest/video.mpd`,
      },
      watermark: null,
      liveInput: input.uid,
    };
  };

  /** Connection changes drive the recording the way automatic mode does: a live video, then a ready one. */
  const setStatus = (uid: string, status: LiveInputStatus | null): LiveInput => {
    const input = inputs.get(uid);
    if (!input) throw new HttpError(404, { error: `no live input ${uid}` });
    const now = new Date().toISOString();
    const live = isConnected(status);
    if (live && !input.liveVideoUid && input.recording.mode === "automatic") {
      const video: Video = { uid: streamUid(), created: now, modified: now, state: "live-inprogress" };
      input.videos.push(video);
      input.liveVideoUid = video.uid;
    }
    if (!live && input.liveVideoUid) {
      const video = input.videos.find((v) => v.uid === input.liveVideoUid);
      if (video) Object.assign(video, { state: "ready", modified: now });
      input.liveVideoUid = null;
    }
    input.status = status;
    return input;
  };

  const notify = async (request: StreamNotifyInput): Promise<Delivery> => {
    const input = inputs.get(request.uid);
    if (!input) throw new HttpError(404, { error: `no live input ${request.uid}` });
    if (request.event === "video.ready") {
      const target = request.target ?? webhook?.notificationUrl;
      if (!target) throw new HttpError(400, { error: "no target and no Stream webhook registered" });
      let video = [...input.videos].reverse().find((v) => v.state === "ready");
      if (!video) {
        const now = new Date().toISOString();
        video = { uid: streamUid(), created: now, modified: now, state: "ready" };
        input.videos.push(video);
      }
      const body = JSON.stringify(videoView(input, video));
      const time = Math.floor(Date.now() / 1000);
      const signature = createHmac("sha256", webhookSecret).update(`${time}.${body}`, "utf8").digest("hex");
      return record(
        await deliver(
          target,
          { "Content-Type": "application/json", "Webhook-Signature": `time=${time},sig1=${signature}` },
          body,
        ),
      );
    }

    if (!request.target) throw new HttpError(400, { error: '"target" is required for live_input events' });
    if (request.event === "live_input.connected") setStatus(input.uid, "connected");
    if (request.event === "live_input.disconnected") setStatus(input.uid, "client_disconnect");
    const updatedAt = nanosecondTimestamp();
    const errorCode = request.errorCode ?? "ERR_GOP_OUT_OF_RANGE";
    const errored = request.event === "live_input.errored";
    const lines = [
      "Notification type: Stream Live Input",
      `Input ID: ${input.uid}`,
      `Event type: ${request.event}`,
      `Updated at: ${updatedAt}`,
      ...(errored
        ? [
            `Error Code: ${errorCode}`,
            `Error Message: ${LIVE_INPUT_ERRORS[errorCode]}`,
            "Video Codec: ",
            "Audio Codec: ",
          ]
        : []),
    ];
    const body = {
      name: notificationName,
      text: lines.join("\n"),
      data: {
        notification_name: "Stream Live Input",
        input_id: input.uid,
        event_type: request.event,
        updated_at: updatedAt,
        ...(errored
          ? {
              live_input_errored: {
                error: { code: errorCode, message: LIVE_INPUT_ERRORS[errorCode] },
                video_codec: "",
                audio_codec: "",
              },
            }
          : {}),
      },
      ts: Math.floor(Date.now() / 1000),
    };
    return record(
      await deliver(
        request.target,
        { "Content-Type": "application/json", "cf-webhook-auth": notificationSecret },
        JSON.stringify(body),
      ),
    );
  };

  const record = (delivery: Delivery): Delivery => {
    deliveries.push(delivery);
    return delivery;
  };

  const handleApi = (
    req: IncomingMessage,
    method: string,
    path: string,
    text: string,
  ): { status: number; body: JsonObject | null } => {
    const header = req.headers.authorization;
    if (header !== undefined && !/^Bearer\s+\S+$/i.test(header)) {
      throw cfError(400, {
        ...CF_ERRORS.invalidHeaders,
        error_chain: [{ code: 6111, message: "Invalid format for Authorization header" }],
      });
    }
    const match = /^\/client\/v4\/accounts\/([^/]+)\/stream\/(live_inputs|webhook)(?:\/([^/]+))?(?:\/(videos))?$/.exec(
      path,
    );
    if (bearerToken(req) !== apiToken) throw cfError(403, CF_ERRORS.authentication);
    if (!match) throw cfError(404, CF_ERRORS.noRoute);
    // A token is scoped to its account: another account id is an authentication failure, not a 404.
    if (match[1] !== accountId) throw cfError(403, CF_ERRORS.authentication);
    const [, , collection, uid, sub] = match;

    if (collection === "webhook") {
      if (uid) throw cfError(404, CF_ERRORS.noRoute);
      if (method === "PUT") {
        const body = apiBody(text);
        const notificationUrl = body.notificationUrl;
        if (typeof notificationUrl !== "string" || !/^https?:\/\//.test(notificationUrl)) {
          throw cfError(400, { code: BAD_REQUEST_CODE, message: "notificationUrl must be an http:// or https:// URL" });
        }
        webhook = { notificationUrl, modified: new Date().toISOString() };
      }
      if (method === "PUT" || method === "GET") {
        if (!webhook) throw cfError(404, CF_ERRORS.notFound);
        return { status: 200, body: ok({ ...webhook, secret: webhookSecret }) };
      }
      throw cfError(404, CF_ERRORS.noRoute);
    }

    if (!uid) {
      if (method === "POST") {
        const input = createInput(apiBody(text));
        inputs.set(input.uid, input);
        return { status: 200, body: ok(view(input)) };
      }
      if (method === "GET") {
        const list = [...inputs.values()].map((input) => ({
          uid: input.uid,
          created: input.created,
          modified: input.modified,
          meta: input.meta,
          deleteRecordingAfterDays: input.deleteRecordingAfterDays,
          enabled: input.enabled,
        }));
        return { status: 200, body: ok({ liveInputs: list, range: 0, total: list.length }) };
      }
      throw cfError(404, CF_ERRORS.noRoute);
    }

    const input = inputs.get(uid);
    if (!input) throw cfError(404, CF_ERRORS.notFound);
    if (sub === "videos") {
      if (method !== "GET") throw cfError(404, CF_ERRORS.noRoute);
      return { status: 200, body: ok(input.videos.map((video) => videoView(input, video))) };
    }
    if (method === "GET") return { status: 200, body: ok(view(input)) };
    if (method === "PUT") {
      updateInput(input, apiBody(text));
      return { status: 200, body: ok(view(input)) };
    }
    if (method === "DELETE") {
      inputs.delete(uid);
      // The API answers a delete with an empty 200 (the official SDK treats it as no content).
      return { status: 200, body: null };
    }
    throw cfError(404, CF_ERRORS.noRoute);
  };

  const standIn = await startStandIn({
    name: "stream",
    port: opts.port,
    host: opts.host,
    log: opts.log,
    handle: async ({ req, res, url, method, text }) => {
      const path = url.pathname;
      if (path.startsWith("/client/v4/")) {
        const { status, body } = handleApi(req, method, path, text);
        return body === null ? sendContent(res, status, "", "application/json") : sendJson(res, status, body);
      }

      const statusControl = /^\/__inputs\/([^/]+)\/status$/.exec(path);
      if (statusControl && method === "POST") {
        const body = controlBody(text);
        const raw = body.status;
        const status =
          raw === null
            ? null
            : raw === "disconnected"
              ? "client_disconnect"
              : oneOf(body, "status", LIVE_INPUT_STATUSES);
        if (status === undefined) throw new HttpError(400, { error: '"status" is required' });
        return sendJson(res, 200, view(setStatus(decodeURIComponent(statusControl[1] ?? ""), status)));
      }
      if (method === "POST" && path === "/__notify") {
        const body = controlBody(text);
        const event = oneOf(body, "event", STREAM_EVENTS);
        if (!event) throw new HttpError(400, { error: '"event" is required' });
        const delivery = await notify({
          target: optionalString(body, "target"),
          uid: requiredString(body, "uid"),
          event,
          errorCode: oneOf(body, "errorCode", Object.keys(LIVE_INPUT_ERRORS) as LiveInputErrorCode[]),
        });
        return sendJson(res, 200, deliveryReport(delivery, { event }));
      }

      // Playback, as the customer-<code>.cloudflarestream.com host serves it.
      const playback = /^\/([0-9a-f]{32})\/(manifest\/video\.m3u8|manifest\/stream_720p\.m3u8|lifecycle)$/.exec(path);
      if (playback && method === "GET") {
        const [, id = "", resource] = playback;
        const input = inputs.get(id);
        const owner = input ?? [...inputs.values()].find((i) => i.videos.some((v) => v.uid === id));
        if (!owner) throw new HttpError(404, { error: "not found" });
        const video = input ? undefined : owner.videos.find((v) => v.uid === id);
        const live = input ? isConnected(input.status) : video?.state === "live-inprogress";
        if (resource === "lifecycle") {
          return sendJson(
            res,
            200,
            input ? { isInput: true, videoUID: input.liveVideoUid, live } : { isInput: false, videoUID: id, live },
          );
        }
        // "a 204 status code if there is no active live stream" (viewing by live input id)
        if (input && !live) return sendContent(res, 204, "", "application/vnd.apple.mpegurl");
        const playlist = resource === "manifest/video.m3u8" ? MASTER_PLAYLIST : mediaPlaylist(!live);
        return sendContent(res, 200, playlist, "application/vnd.apple.mpegurl");
      }
      throw new HttpError(404, { error: "not found" });
    },
  });
  origin = opts.playbackOrigin ?? standIn.url;

  return {
    url: standIn.url,
    stop: standIn.close,
    apiBaseUrl: `${standIn.url}/client/v4`,
    accountId,
    apiToken,
    customerCode,
    playbackOrigin: origin,
    notificationSecret,
    webhookSecret,
    setStatus,
    notify: async (input) => {
      const delivery = await notify(input);
      return {
        status: delivery.status,
        body: deliveryReport(delivery).body,
        ...(delivery.error ? { error: delivery.error } : {}),
      };
    },
    deliveries: () => [...deliveries],
    received: standIn.received,
  };
}

const MASTER_PLAYLIST = [
  "#EXTM3U",
  "#EXT-X-VERSION:6",
  "#EXT-X-INDEPENDENT-SEGMENTS",
  '#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",FRAME-RATE=30.000',
  "stream_720p.m3u8",
  "",
].join("\n");

/** A variant playlist with no segments yet (live) or an empty finished one (recording). */
function mediaPlaylist(finished: boolean): string {
  return [
    "#EXTM3U",
    "#EXT-X-VERSION:6",
    "#EXT-X-TARGETDURATION:4",
    "#EXT-X-MEDIA-SEQUENCE:0",
    ...(finished ? ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"] : []),
    "",
  ].join("\n");
}

function isConnected(status: LiveInputStatus | null): boolean {
  return status === "connected" || status === "reconnected" || status === "reconnecting";
}

function createInput(body: JsonObject): LiveInput {
  const now = new Date().toISOString();
  const uid = streamUid();
  const input: LiveInput = {
    uid,
    created: now,
    modified: now,
    meta: {},
    recording: {
      mode: "off",
      requireSignedURLs: false,
      allowedOrigins: null,
      hideLiveViewerCount: false,
      timeoutSeconds: 0,
    },
    enabled: true,
    deleteRecordingAfterDays: null,
    preferLowLatency: false,
    defaultCreator: null,
    status: null,
    secrets: {
      rtmpsKey: `${randomBytes(16).toString("hex")}k${uid}`,
      rtmpsPlaybackKey: `${randomBytes(16).toString("hex")}k${uid}`,
      srtId: randomBytes(16).toString("hex"),
      srtPassphrase: randomBytes(16).toString("hex"),
      srtPlaybackId: randomBytes(16).toString("hex"),
      srtPlaybackPassphrase: randomBytes(16).toString("hex"),
      webRtcKey: `${randomBytes(16).toString("hex")}b${uid}`,
    },
    videos: [],
    liveVideoUid: null,
  };
  updateInput(input, body);
  input.modified = now;
  return input;
}

/** Applies create/update fields with the documented constraints. */
function updateInput(input: LiveInput, body: JsonObject): void {
  const meta = body.meta;
  if (meta !== undefined) {
    if (!isObject(meta)) throw cfError(400, { code: BAD_REQUEST_CODE, message: "meta must be an object" });
    input.meta = meta;
  }
  const recording = body.recording;
  if (recording !== undefined) {
    if (!isObject(recording)) throw cfError(400, { code: BAD_REQUEST_CODE, message: "recording must be an object" });
    const mode = recording.mode;
    if (mode !== undefined && mode !== "off" && mode !== "automatic") {
      throw cfError(400, { code: BAD_REQUEST_CODE, message: "recording.mode must be off or automatic" });
    }
    input.recording = { ...input.recording, ...recording };
  }
  if ("deleteRecordingAfterDays" in body) {
    const days = body.deleteRecordingAfterDays;
    // "Minimum value is 30, maximum value is 1096"; null removes it.
    if (days !== null && (typeof days !== "number" || !Number.isInteger(days) || days < 30 || days > 1096)) {
      throw cfError(400, { code: BAD_REQUEST_CODE, message: "deleteRecordingAfterDays must be between 30 and 1096" });
    }
    input.deleteRecordingAfterDays = days;
  }
  try {
    const enabled = optionalBoolean(body, "enabled");
    if (enabled !== undefined) input.enabled = enabled;
    const lowLatency = optionalBoolean(body, "preferLowLatency");
    if (lowLatency !== undefined) input.preferLowLatency = lowLatency;
    const creator = optionalString(body, "defaultCreator");
    if (creator !== undefined) input.defaultCreator = creator;
  } catch (error) {
    throw cfError(400, { code: BAD_REQUEST_CODE, message: error instanceof Error ? error.message : String(error) });
  }
  input.modified = new Date().toISOString();
}

function apiBody(text: string): JsonObject {
  if (text.trim() === "") return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) return parsed;
  } catch {
    // fall through
  }
  throw cfError(400, { code: BAD_REQUEST_CODE, message: "request body must be a JSON object" });
}

function ok(result: JsonObject | JsonObject[]): JsonObject {
  return { result, success: true, errors: [], messages: [] };
}

function cfError(status: number, error: JsonObject): HttpError {
  return new HttpError(status, { result: null, success: false, errors: [error], messages: [] });
}

/** Stream ids are 32 lowercase hex characters. */
function streamUid(): string {
  return randomBytes(16).toString("hex");
}

/** Cloudflare writes these timestamps with nanoseconds (2022-01-13T11:43:41.855717910Z). */
function nanosecondTimestamp(): string {
  const iso = new Date().toISOString();
  return `${iso.slice(0, 23)}${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}Z`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startStreamServer({
    port: Number(process.env.STREAM_PORT ?? 8094),
    accountId: process.env.STREAM_ACCOUNT_ID,
    apiToken: process.env.STREAM_API_TOKEN,
    log: process.env.STREAM_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(`Cloudflare Stream stand-in on ${server.url} (account ${server.accountId}, token ${server.apiToken})`);
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
