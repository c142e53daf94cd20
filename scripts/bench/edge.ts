// Edge latency benchmark: on Workers every store call is a subrequest from the user's colo to the store's
// region, so what a request waits on in sequence is its latency. This puts a delay proxy in front of each
// local store (default 40 ms per Data API and ClickHouse call, 5 ms per Upstash REST call), runs the
// production bundle in workerd through Miniflare's API, walks one user journey a request at a time, repeats
// it, and prints per endpoint: sequential waits and round trips per store (from Server-Timing), p50/p99 ms,
// and p50 against the floor (a write: one Data API + one Redis round trip; a read: one Redis round trip).
// Hot reads run twice: cold (the first after the journey's writes) and warm (the same read again).
//   npm run bench:edge [-- --iterations 7 --mongo-ms 40 --clickhouse-ms 40 --redis-ms 5 --pause-ms 50]
import { randomBytes, randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { loadConfig } from "../../src/config";
import { forgetStanding } from "../../src/core/standing";
import { createDeps } from "../../src/deps";
import { moveGems } from "../../src/features/gems/ledger";
import { ObjectId } from "../../src/platform/ids";
import type { DelayedStore } from "../local/delay-proxy";
import { fmt, markdownTable, median, startBenchStack } from "./lib";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "7" },
    "mongo-ms": { type: "string", default: "40" },
    "clickhouse-ms": { type: "string", default: "40" },
    "redis-ms": { type: "string", default: "5" },
    // Think time between steps, as a person's pause; after it the journey also waits until no store call is in
    // flight, so a step's after-response work (waitUntil) is counted for that step and never slows the next.
    "pause-ms": { type: "string", default: "50" },
  },
});
const iterations = Number(values.iterations);
if (!Number.isInteger(iterations) || iterations < 1) throw new Error("--iterations must be a positive integer");
const delays = {
  mongo: Number(values["mongo-ms"]),
  clickhouse: Number(values["clickhouse-ms"]),
  redis: Number(values["redis-ms"]),
};
const pauseMs = Number(values["pause-ms"]);
const STORES: DelayedStore[] = ["redis", "mongo", "clickhouse"];

type PerStore = Record<DelayedStore, number>;

interface Sample {
  status: number;
  ms: number;
  waits: PerStore;
  roundTrips: PerStore;
  /** Store calls the proxies saw from this request's start until the next step, beyond its own round trips. */
  afterResponse: number;
}

function timingCounts(header: string | null, suffix: "" | ".waits"): PerStore {
  const counts: PerStore = { redis: 0, mongo: 0, clickhouse: 0 };
  for (const store of STORES) {
    const m = new RegExp(`(?:^|,)\\s*${store}${suffix.replace(".", "\\.")};desc="(\\d+)"`).exec(header ?? "");
    if (m?.[1]) counts[store] = Number(m[1]);
  }
  return counts;
}

const bench = await startBenchStack({
  delays,
  vars: {
    // One address signs up and logs in dozens of times; the journey measures latency, not the limits.
    RATE_LIMIT_SIGNUP_PER_IP: "1000000",
    RATE_LIMIT_LOGIN_PER_IP: "1000000",
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: "1000000",
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_IP: "1000000",
  },
});
const samples = new Map<string, Sample[]>();
/** Store calls the delay proxies forwarded during the journeys, and those the requests' Server-Timing counted. */
const totals = { proxied: 0, metered: 0 };
const order: string[] = [];
try {
  const proxies = bench.delays!.proxies;
  const seen = () => STORES.reduce((sum, s) => sum + (proxies[s]?.requests() ?? 0), 0);
  const busy = () => STORES.some((s) => (proxies[s]?.inFlight() ?? 0) > 0);
  /** Waits until no store call has been in flight for a while (a chain of calls has sub-ms gaps). */
  const quiet = async (quietMs = 30, capMs = 10_000) => {
    const deadline = performance.now() + capMs;
    let calmSince = performance.now();
    let seenAt = seen();
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      if (busy() || seen() !== seenAt) {
        calmSince = performance.now();
        seenAt = seen();
      } else if (performance.now() - calmSince >= quietMs) return;
    }
  };
  // Set-up that is not part of the journey goes straight to the stores (no delay).
  const direct = createDeps(
    loadConfig({ ...bench.workerEnv, ...bench.stack.workerEnv, LOG_LEVEL: "error", SERVER_TIMING: "false" }),
  );
  let previous: { name: string; sample: Sample; seenAtStart: number } | undefined;
  const settlePrevious = () => {
    if (!previous) return;
    const { sample, seenAtStart } = previous;
    const own = STORES.reduce((sum, s) => sum + sample.roundTrips[s], 0);
    const proxied = seen() - seenAtStart;
    totals.proxied += proxied;
    totals.metered += own;
    sample.afterResponse = Math.max(0, proxied - own);
    previous = undefined;
  };

  /** One journey step: one request, timed from the first byte sent to the last byte read. */
  const step = async <T = Record<string, unknown>>(
    name: string,
    method: string,
    path: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string>; ip: string; expect: number },
  ): Promise<T> => {
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    await quiet();
    settlePrevious();
    const headers: Record<string, string> = { "cf-connecting-ip": opts.ip, ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const seenAtStart = seen();
    const t0 = performance.now();
    const res = await fetch(`${bench.url}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== opts.expect) throw new Error(`${name}: expected ${opts.expect}, got ${res.status} ${text}`);
    const timing = res.headers.get("server-timing");
    const sample: Sample = {
      status: res.status,
      ms,
      waits: timingCounts(timing, ".waits"),
      roundTrips: timingCounts(timing, ""),
      afterResponse: 0,
    };
    if (!samples.has(name)) {
      samples.set(name, []);
      order.push(name);
    }
    samples.get(name)!.push(sample);
    previous = { name, sample, seenAtStart };
    return (text ? JSON.parse(text) : {}) as T;
  };
  /**
   * A read, then the same read again: the first after the journey's writes is cold (caches they dropped are
   * refilled), the second is warm — what every later look at the same screen costs.
   */
  const coldThenWarm = async (
    name: string,
    path: string,
    opts: { token?: string; headers?: Record<string, string>; ip: string },
  ) => {
    await step(name, "GET", path, { ...opts, expect: 200 });
    await step(`${name} (warm)`, "GET", path, { ...opts, expect: 200 });
  };

  const workerToken = bench.workerEnv.GPU_WORKER_TOKEN!;
  // Signup accepts the current terms and privacy policy (set-up, not measured).
  const legal = (await (await fetch(`${bench.url}/v1/legal`)).json()) as {
    termsVersion: string;
    privacyVersion: string;
  };
  // A moderator for the report queue (set-up, not measured): signed up, then given the role directly.
  const moderatorIp = "fd00:fffe::1";
  const modTag = randomBytes(4).toString("hex");
  const modRes = await fetch(`${bench.url}/v1/auth/signup`, {
    method: "POST",
    headers: { "content-type": "application/json", "cf-connecting-ip": moderatorIp },
    body: JSON.stringify({
      username: `moderator_${modTag}`,
      email: `moderator_${modTag}@bench.example`,
      password: "correct horse battery staple",
      ...legal,
    }),
  });
  const moderatorAuth = (await modRes.json()) as { user: { id: string }; accessToken: string };
  await direct.db.users.updateOne({ _id: new ObjectId(moderatorAuth.user.id) }, { $set: { role: "moderator" } });
  await forgetStanding(direct, moderatorAuth.user.id);
  const moderator = { token: moderatorAuth.accessToken, ip: moderatorIp };
  for (let i = 0; i < iterations; i++) {
    // Each journey is a fresh pair of people on their own addresses (IPv6 /64s), so no limit or fraud signal
    // carries over between iterations.
    const tag = randomBytes(4).toString("hex");
    const authorIp = `fd00:${tag.slice(0, 4)}:${tag.slice(4)}:1::1`;
    const viewerIp = `fd00:${tag.slice(0, 4)}:${tag.slice(4)}:2::1`;
    const password = "correct horse battery staple";
    type Auth = { user: { id: string; username: string }; accessToken: string; refreshToken: string };
    const signup = (who: string, ip: string) =>
      step<Auth>("POST /v1/auth/signup", "POST", "/v1/auth/signup", {
        ip,
        body: { username: `${who}_${tag}_${i}`, email: `${who}_${tag}_${i}@bench.example`, password, ...legal },
        expect: 201,
      });
    const author = await signup("author", authorIp);
    const viewer = await signup("viewer", viewerIp);
    const login = await step<Auth>("POST /v1/auth/login", "POST", "/v1/auth/login", {
      ip: authorIp,
      body: { login: author.user.username, password },
      expect: 200,
    });
    const refreshed = await step<{ accessToken: string }>("POST /v1/auth/refresh", "POST", "/v1/auth/refresh", {
      ip: authorIp,
      body: { refreshToken: login.refreshToken },
      expect: 200,
    });
    const a = { token: refreshed.accessToken, ip: authorIp };
    const v = { token: viewer.accessToken, ip: viewerIp };

    const job = await step<{ id: string }>("POST /v1/generations", "POST", "/v1/generations", {
      ...a,
      body: { prompt: `a lighthouse at dusk, oil painting ${i}` },
      expect: 202,
    });
    const gpu = { ip: "fd00:ffff::1", headers: { authorization: `Bearer ${workerToken}` } };
    const claimed = await step<{ id: string }>(
      "POST /v1/internal/generations/claim",
      "POST",
      "/v1/internal/generations/claim",
      { ...gpu, body: { workerId: "bench-gpu-1" }, expect: 200 },
    );
    if (claimed.id !== job.id) throw new Error(`claimed ${claimed.id}, expected the journey's job ${job.id}`);
    await step("POST /v1/internal/generations/{id}/complete", "POST", `/v1/internal/generations/${job.id}/complete`, {
      ...gpu,
      body: {
        workerId: "bench-gpu-1",
        imageUrl: `https://cdn.bench.example/${job.id}.png`,
        thumbnailUrl: `https://cdn.bench.example/${job.id}.thumb.png`,
        imageWidth: 1024,
        imageHeight: 1024,
        generationTimeMs: 1800,
      },
      expect: 200,
    });
    const post = await step<{ id: string }>("POST /v1/posts", "POST", "/v1/posts", {
      ...a,
      body: { generationId: job.id, tags: ["bench"], category: "art" },
      expect: 201,
    });

    // The viewer opens the post before voting on it (as the app does: a vote is a tap on a post on screen).
    await coldThenWarm("GET /v1/posts/{id}", `/v1/posts/${post.id}`, v);
    await step("PUT /v1/users/{id}/follow", "PUT", `/v1/users/${author.user.id}/follow`, { ...v, expect: 204 });
    await step("PUT /v1/posts/{id}/vote", "PUT", `/v1/posts/${post.id}/vote`, { ...v, expect: 200 });
    await step("DELETE /v1/posts/{id}/vote", "DELETE", `/v1/posts/${post.id}/vote`, { ...v, expect: 204 });
    await step("PUT /v1/posts/{id}/vote", "PUT", `/v1/posts/${post.id}/vote`, { ...v, expect: 200 });
    const comment = await step<{ id: string }>(
      "POST /v1/posts/{id}/comments",
      "POST",
      `/v1/posts/${post.id}/comments`,
      {
        ...v,
        body: { content: "Love the light on the water." },
        expect: 201,
      },
    );
    const reply = await step<{ id: string }>(
      "POST /v1/posts/{id}/comments (reply)",
      "POST",
      `/v1/posts/${post.id}/comments`,
      {
        ...a,
        body: { content: "Thank you!", parentId: comment.id },
        expect: 201,
      },
    );

    await step("PATCH /v1/comments/{id}", "PATCH", `/v1/comments/${comment.id}`, {
      ...v,
      body: { content: "Love the light on the water!" },
      expect: 200,
    });

    const anonymous = { ip: `fd00:${tag.slice(0, 4)}:${tag.slice(4)}:3::1` };
    await step("GET /v1/feeds/new (anonymous, cache miss)", "GET", "/v1/feeds/new", { ...anonymous, expect: 200 });
    await step("GET /v1/feeds/new (anonymous, cached)", "GET", "/v1/feeds/new", { ...anonymous, expect: 200 });
    await step("GET /v1/feeds/following", "GET", "/v1/feeds/following", { ...v, expect: 200 });
    await step("GET /v1/feeds/hot", "GET", "/v1/feeds/hot", { ...v, expect: 200 });
    await coldThenWarm("GET /v1/posts/{id}/comments", `/v1/posts/${post.id}/comments`, v);
    await coldThenWarm("GET /v1/me", "/v1/me", v);
    await coldThenWarm("GET /v1/users/{username}", `/v1/users/${author.user.username}`, v);
    await coldThenWarm("GET /v1/notifications", "/v1/notifications", a);
    await coldThenWarm("GET /v1/notifications/unread-count", "/v1/notifications/unread-count", a);
    await step("POST /v1/notifications/read", "POST", "/v1/notifications/read", {
      ...a,
      body: { all: true },
      expect: 204,
    });
    await coldThenWarm("GET /v1/flags", "/v1/flags", { ...v, headers: { "x-device-id": `bench-${tag}` } });
    await coldThenWarm("GET /v1/leaderboards/{period}", "/v1/leaderboards/daily", v);

    // Gems for the gift and the purchase: an admin adjustment through the ledger (set-up, not measured).
    await moveGems(direct, {
      userId: new ObjectId(viewer.user.id),
      type: "admin_adjust",
      source: "admin",
      amount: 1_000,
      description: "bench grant",
      idempotencyKey: `bench-grant:${randomUUID()}`,
    });
    await step("POST /v1/users/{id}/gifts", "POST", `/v1/users/${author.user.id}/gifts`, {
      ...v,
      headers: { "idempotency-key": randomUUID() },
      body: { amount: 50, message: "for the lighthouse" },
      expect: 201,
    });
    await step("POST /v1/store/purchases", "POST", "/v1/store/purchases", {
      ...v,
      headers: { "idempotency-key": randomUUID() },
      body: { sku: "ad_free.7d" },
      expect: 201,
    });
    const now = Date.now();
    await step("POST /v1/events", "POST", "/v1/events", {
      ...v,
      body: {
        events: Array.from({ length: 5 }, (_, n) => ({
          event: n === 0 ? "session_start" : "screen_view",
          timestamp: new Date(now - n * 1000).toISOString(),
          sessionId: `bench-session-${tag}`,
          deviceId: `bench-${tag}`,
          platform: "ios",
          appVersion: "1.0.0",
          properties: { screen: "feed" },
        })),
      },
      expect: 202,
    });
    await step("POST /v1/me/checkin", "POST", "/v1/me/checkin", { ...v, expect: 200 });
    await step("POST /v1/posts/{id}/share", "POST", `/v1/posts/${post.id}/share`, { ...v, expect: 200 });
    await step("DELETE /v1/users/{id}/follow", "DELETE", `/v1/users/${author.user.id}/follow`, { ...v, expect: 204 });
    const report = await step<{ id: string }>("POST /v1/reports", "POST", "/v1/reports", {
      ...v,
      body: { targetType: "comment", targetId: reply.id, reason: "spam" },
      expect: 201,
    });
    await step("POST /v1/admin/reports/{id}/assign", "POST", `/v1/admin/reports/${report.id}/assign`, {
      ...moderator,
      expect: 200,
    });
    await step("DELETE /v1/comments/{id}", "DELETE", `/v1/comments/${comment.id}`, { ...v, expect: 204 });
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    await quiet();
    settlePrevious();
    process.stderr.write(`journey ${i + 1}/${iterations} done\n`);
  }

  print();
} finally {
  await bench.stop();
}

/** Nearest-rank percentile (with fewer than 100 samples, p99 is the slowest one). */
function percentile(xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((x, y) => x - y);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

function print(): void {
  const floorWrite = delays.mongo + delays.redis;
  const floorRead = delays.redis;
  const perStore = (xs: PerStore[]) => STORES.map((s) => fmt(median(xs.map((x) => x[s])), 0)).join(" / ");
  const rows: string[][] = [
    [
      "endpoint",
      "waits r / m / ch",
      "round trips r / m / ch",
      "waits × delay ms",
      "p50 ms",
      "p99 ms",
      "floor ms",
      "p50 ÷ floor",
      "calls after response",
    ],
  ];
  let journeyP50 = 0;
  let journeyFloor = 0;
  for (const name of order) {
    const list = samples.get(name)!;
    const isWrite = !name.startsWith("GET ");
    const floor = isWrite ? floorWrite : floorRead;
    const p50 = median(list.map((s) => s.ms));
    const explained = median(list.map((s) => STORES.reduce((sum, st) => sum + s.waits[st] * delays[st], 0)));
    journeyP50 += p50;
    journeyFloor += floor;
    rows.push([
      `\`${name}\``,
      perStore(list.map((s) => s.waits)),
      perStore(list.map((s) => s.roundTrips)),
      fmt(explained, 0),
      fmt(p50, 0),
      fmt(
        percentile(
          list.map((s) => s.ms),
          99,
        ),
        0,
      ),
      String(floor),
      `${fmt(p50 / floor, 1)}×`,
      fmt(median(list.map((s) => s.afterResponse)), 0),
    ]);
  }
  console.log(
    `\nEdge latency — ${iterations} journeys, one request at a time; added per call: Data API ${delays.mongo} ms, ` +
      `ClickHouse ${delays.clickhouse} ms, Upstash REST ${delays.redis} ms; production bundle in workerd (Miniflare)\n`,
  );
  console.log(markdownTable(rows));
  console.log(
    `\nwaits/round trips: medians over the journeys (r = Redis, m = MongoDB via the Data API, ch = ClickHouse), from ` +
      "Server-Timing; p99 of fewer than 100 samples is the slowest. Floor: a write = one Data API + one Redis round " +
      `trip (${floorWrite} ms), a read = one Redis round trip (${floorRead} ms). Calls after response: store calls ` +
      "the proxies saw beyond the request's own round trips until the stores went quiet (waitUntil work).",
  );
  console.log(
    `\nstore calls during the journeys: ${totals.proxied} through the delay proxies, ${totals.metered} in Server-Timing`,
  );
  console.log(
    `journey (sum of p50s): ${fmt(journeyP50, 0)} ms over ${order.length} endpoints; floor ${journeyFloor} ms ` +
      `(${fmt(journeyP50 / journeyFloor, 1)}×)`,
  );
}
