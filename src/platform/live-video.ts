/**
 * The live-video provider: Cloudflare Stream's live inputs API (`{api}/accounts/{account}/stream/live_inputs`,
 * Bearer API token, answers in Cloudflare's envelope `{ result, success, errors, messages }`). A live input is
 * where a streamer's encoder sends video (RTMPS URL + stream key, a secret only the streamer gets); viewers play
 * it by the input's id (`{playbackOrigin}/{uid}/manifest/video.m3u8`, 204 until the encoder is connected).
 * Only this module knows the URLs, headers and shapes; features say what they want.
 */

export interface LiveVideoSettings {
  apiUrl: string;
  /** Unset: live video is not configured here (every call fails as unavailable). */
  accountId: string | undefined;
  apiToken: string | undefined;
  /** `https://customer-<code>.cloudflarestream.com`: where playback URLs point. */
  playbackOrigin: string;
  recording: "off" | "automatic";
  timeoutMs: number;
}

/** What a created (or read) live input gives the streamer. */
export interface LiveInput {
  uid: string;
  ingest: { url: string; streamKey: string };
  /** The encoder's connection as the provider sees it (null: never connected / idle). */
  status: string | null;
}

/**
 * The provider could not answer usefully now (unreachable, timed out, 5xx, 429, refused our credentials, or not
 * configured): the caller answers 503 and nothing is written.
 */
export class LiveVideoUnavailableError extends Error {
  override name = "LiveVideoUnavailableError";
}

export interface LiveVideo {
  readonly configured: boolean;
  /** Creates a live input for one stream (`name` goes into its meta, for the provider's dashboard). */
  createInput(input: { name: string; streamId: string; creatorId: string }): Promise<LiveInput>;
  /** The input with its ingest credentials and connection status; null when the provider has no such input. */
  getInput(uid: string): Promise<LiveInput | null>;
  /** Deletes the input (ingest stops; recordings stay); true when it existed. */
  deleteInput(uid: string): Promise<boolean>;
  /** The HLS playback URL viewers get. */
  playbackUrl(uid: string): string;
}

/** Statuses in which the encoder is sending (Stream's `status` of a live input). */
const CONNECTED = new Set(["connected", "reconnected", "reconnecting"]);

export function isEncoderConnected(status: string | null): boolean {
  return status !== null && CONNECTED.has(status);
}

export function createLiveVideo(settings: LiveVideoSettings): LiveVideo {
  const { accountId, apiToken } = settings;
  const base = `${settings.apiUrl.replace(/\/+$/, "")}/accounts/${encodeURIComponent(accountId ?? "")}/stream`;

  const request = async (method: string, path: string, body?: unknown): Promise<Response> => {
    if (!accountId || !apiToken) throw new LiveVideoUnavailableError("live video is not configured");
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${apiToken}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
    } catch (error) {
      throw new LiveVideoUnavailableError(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    }
    return response;
  };

  /** The envelope's result, or why not (a 404 is the caller's to interpret). */
  const resultOf = async (response: Response, action: string): Promise<Record<string, unknown> | null> => {
    const text = await response.text();
    if (response.status === 404) return null;
    let envelope: { result?: unknown; success?: unknown; errors?: { code?: number; message?: string }[] } = {};
    try {
      envelope = text ? JSON.parse(text) : {};
    } catch {
      throw new LiveVideoUnavailableError(`${action}: ${response.status}, the answer is not JSON`);
    }
    if (!response.ok || envelope.success === false) {
      const first = envelope.errors?.[0];
      // Every refusal is ours to fix or the provider's to recover from; none is the app user's fault.
      throw new LiveVideoUnavailableError(
        `${action}: ${response.status} ${first?.code ?? ""} ${first?.message ?? ""}`.trim(),
      );
    }
    const result = envelope.result;
    return typeof result === "object" && result !== null ? (result as Record<string, unknown>) : {};
  };

  const inputOf = (result: Record<string, unknown>, action: string): LiveInput => {
    const rtmps = result.rtmps as { url?: unknown; streamKey?: unknown } | undefined;
    if (typeof result.uid !== "string" || typeof rtmps?.url !== "string" || typeof rtmps.streamKey !== "string") {
      throw new LiveVideoUnavailableError(`${action}: the live input has no uid or RTMPS ingest`);
    }
    return {
      uid: result.uid,
      ingest: { url: rtmps.url, streamKey: rtmps.streamKey },
      status: typeof result.status === "string" ? result.status : null,
    };
  };

  return {
    configured: Boolean(accountId && apiToken),
    async createInput({ name, streamId, creatorId }) {
      const response = await request("POST", "/live_inputs", {
        meta: { name, streamId },
        recording: { mode: settings.recording },
        defaultCreator: creatorId,
      });
      const result = await resultOf(response, "create live input");
      if (!result) throw new LiveVideoUnavailableError("create live input: 404 (wrong account or API URL)");
      return inputOf(result, "create live input");
    },
    async getInput(uid) {
      const result = await resultOf(await request("GET", `/live_inputs/${encodeURIComponent(uid)}`), "get live input");
      return result ? inputOf(result, "get live input") : null;
    },
    async deleteInput(uid) {
      const response = await request("DELETE", `/live_inputs/${encodeURIComponent(uid)}`);
      // The API answers a delete with an empty 200.
      return (await resultOf(response, "delete live input")) !== null;
    },
    playbackUrl(uid) {
      return `${settings.playbackOrigin.replace(/\/+$/, "")}/${encodeURIComponent(uid)}/manifest/video.m3u8`;
    },
  };
}
