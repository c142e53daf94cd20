import { env } from "cloudflare:workers";
import { createApp } from "../../src/app";
import { createDeps, type Deps } from "../../src/deps";
import { type ApiResponse, call } from "./api";
import { testConfig } from "./deps";
import type { TestUser } from "./users";

export interface StreamBody {
  id: string;
  userId: string;
  user: { id: string; username: string };
  title: string;
  description: string | null;
  category: string | null;
  tags: string[];
  status: "scheduled" | "live" | "ended" | "cancelled";
  playbackUrl: string | null;
  thumbnailUrl: string | null;
  viewerCount: number;
  peakViewers: number;
  uniqueViewers: number;
  giftTotal: number;
  giftCount: number;
  startedAt: string | null;
  endedAt: string | null;
  scheduledFor: string | null;
  cancelledAt: string | null;
  endReason: string | null;
  conversationId: string;
  participants: { user: { id: string }; state: "invited" | "accepted"; invitedAt: string; acceptedAt: string | null }[];
  createdAt: string;
  viewer?: { role: string };
  ingest?: { url: string; streamKey: string };
}

export interface StreamPageBody {
  items: StreamBody[];
  nextCursor: string | null;
}

type Fetcher = (request: Request) => Promise<Response>;

/** A stream through the API: live now unless `scheduledFor` is given. */
export async function createdStream(
  streamer: TestUser,
  body: Record<string, unknown> = {},
  fetcher?: Fetcher,
): Promise<StreamBody> {
  const res = await call<StreamBody>(
    "POST",
    "/v1/streams",
    { token: streamer.accessToken, body: { title: "Painting live", ...body } },
    fetcher,
  );
  if (res.status !== 201) throw new Error(`create stream failed: ${res.status} ${res.text}`);
  return res.body;
}

export function scheduledFor(minutesAhead = 60): string {
  return new Date(Date.now() + minutesAhead * 60_000).toISOString();
}

export function getStream(who: TestUser | undefined, id: string, fetcher?: Fetcher): Promise<ApiResponse<StreamBody>> {
  return call<StreamBody>("GET", `/v1/streams/${id}`, { token: who?.accessToken }, fetcher);
}

export function beat(who: TestUser, id: string, fetcher?: Fetcher, headers: Record<string, string> = {}) {
  return call("POST", `/v1/streams/${id}/heartbeat`, { token: who.accessToken, headers }, fetcher);
}

export function act(who: TestUser, id: string, action: "start" | "end" | "cancel", fetcher?: Fetcher) {
  return call<StreamBody>("POST", `/v1/streams/${id}/${action}`, { token: who.accessToken }, fetcher);
}

export function liveList(who: TestUser | undefined, query = "", fetcher?: Fetcher) {
  return call<StreamPageBody>("GET", `/v1/streams/live${query}`, { token: who?.accessToken }, fetcher);
}

/** The live input id a playback URL names (`{origin}/{uid}/manifest/video.m3u8`). */
export function liveInputOf(stream: Pick<StreamBody, "playbackUrl">): string {
  const uid = /\/([0-9a-f]{32})\/manifest\/video\.m3u8$/.exec(stream.playbackUrl ?? "")?.[1];
  if (!uid) throw new Error(`no live input in ${stream.playbackUrl}`);
  return uid;
}

const bindings = env as unknown as Record<string, string>;

/** The live input as the provider's API answers it (null when it has none). */
export async function providerInput(uid: string): Promise<Record<string, unknown> | null> {
  const res = await fetch(
    `${bindings.LIVE_VIDEO_API_URL}/accounts/${bindings.LIVE_VIDEO_ACCOUNT_ID}/stream/live_inputs/${uid}`,
    { headers: { authorization: `Bearer ${bindings.LIVE_VIDEO_API_TOKEN}` } },
  );
  const text = await res.text();
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`provider answered ${res.status} ${text}`);
  return (JSON.parse(text) as { result: Record<string, unknown> }).result;
}

/** What the stand-in's encoder side does: connects or drops the live input's broadcast. */
export async function encoder(uid: string, status: "connected" | "disconnected" | null): Promise<void> {
  const res = await fetch(`${bindings.TEST_STREAM_URL}/__inputs/${uid}/status`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ status }),
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`encoder control failed: ${res.status}`);
}

/** Polls until `check` holds (work that runs after the answer), or fails after `timeoutMs`. */
export async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > until) throw new Error(`still not there: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The real app with a clock the test moves ("now" for heartbeats, lifetimes and abandonment). */
export function clockedApp(start = Date.now(), overrides: Record<string, string> = {}) {
  let now = start;
  const deps: Deps = createDeps(testConfig(overrides), { clock: { now: () => new Date(now) } });
  const app = createApp(() => deps);
  return {
    deps,
    fetch: async (request: Request) => app.fetch(request, {}),
    at: () => now,
    set: (at: number) => {
      now = at;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Runs `tasks` with at most `limit` in flight (a crowd of clients, without opening hundreds of sockets at once). */
export async function inWaves<T>(tasks: (() => Promise<T>)[], limit = 25): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await (tasks[i] as () => Promise<T>)();
      }
    }),
  );
  return out;
}
