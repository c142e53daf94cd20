// The throughput benches' yardstick: the smallest Hono Worker that makes the same store round trips as the
// route it stands next to (same Upstash pipeline with the same rate-limit script, same Data API and
// ClickHouse calls), with none of the API's middleware, validation or metering. Built like the API
// (scripts/build-worker.ts) and run in the same workerd, against the same stores, in the same run.
import { Hono } from "hono";
import { EJSON } from "../../src/platform/ejson";
import { keys } from "../../src/platform/keys";
import { getValue, runOps, slidingWindow } from "../../src/platform/redis-ops";
import { Redis } from "../../src/platform/upstash";

type Env = Record<string, string>;

let redis: Redis | undefined;
const redisFor = (env: Env) => {
  // The API's own Upstash client, without its metering (timeouts, round-trip counts).
  redis ??= new Redis({ url: env.UPSTASH_REDIS_REST_URL!, token: env.UPSTASH_REDIS_REST_TOKEN! });
  return redis;
};

const rateLimit = (env: Env, ip: string) =>
  slidingWindow(
    keys.rateApi(ip),
    Number(env.RATE_LIMIT_API_MAX_REQUESTS ?? 300),
    Number(env.RATE_LIMIT_API_WINDOW_SECONDS ?? 60),
  );

const dataApi = (env: Env, action: string, body: Record<string, unknown>) =>
  fetch(`${env.DATA_API_URL}/action/${action}`, {
    method: "POST",
    headers: { "content-type": "application/ejson", accept: "application/ejson", apiKey: env.DATA_API_KEY! },
    body: EJSON.stringify({
      dataSource: env.DATA_API_DATA_SOURCE ?? "circle",
      database: env.MONGO_DATABASE ?? "circle",
      ...body,
    }),
  }).then(async (res) => {
    const text = await res.text();
    if (!res.ok) throw new Error(`data api ${res.status}: ${text}`);
    return EJSON.parse(text) as Record<string, unknown>;
  });

const app = new Hono<{ Bindings: Env }>();
const ipOf = (req: Request) => req.headers.get("cf-connecting-ip") ?? "unknown";

// GET /v1/feeds/trending, cached: the rate limit and the cached first page in one pipeline.
app.get("/feed", async (c) => {
  const { limit, page } = await runOps(redisFor(c.env), {
    limit: rateLimit(c.env, ipOf(c.req.raw)),
    page: getValue<unknown>(keys.feedTrending(0)),
  });
  if (!limit.allowed) return c.json({ status: 429 }, 429);
  return c.json(page ?? { items: [], nextCursor: null });
});

// GET /health: the rate limit, then Redis, the Data API and ClickHouse pinged in parallel.
app.get("/health", async (c) => {
  const { limit } = await runOps(redisFor(c.env), { limit: rateLimit(c.env, ipOf(c.req.raw)) });
  if (!limit.allowed) return c.json({ status: 429 }, 429);
  const time = async (check: () => Promise<unknown>) => {
    const t0 = performance.now();
    await check();
    return { ok: true, latencyMs: performance.now() - t0 };
  };
  const [r, m, ch] = await Promise.all([
    time(() => redisFor(c.env).ping()),
    time(() => dataApi(c.env, "findOne", { collection: "job_runs", filter: { _id: null }, projection: { _id: 1 } })),
    time(() =>
      fetch(`${c.env.CLICKHOUSE_URL}/?query=${encodeURIComponent("SELECT 'ping'")}`, {
        headers: { authorization: `Basic ${btoa(`${c.env.CLICKHOUSE_USER}:${c.env.CLICKHOUSE_PASSWORD ?? ""}`)}` },
      }).then((res) => res.text()),
    ),
  ]);
  return c.json({ status: "ok", checks: { redis: r, mongo: m, clickhouse: ch } });
});

// POST /v1/events: the rate limit, then the events into the analytics buffer with one insertMany.
app.post("/events", async (c) => {
  const [{ limit }, body] = await Promise.all([
    runOps(redisFor(c.env), { limit: rateLimit(c.env, ipOf(c.req.raw)) }),
    c.req.json<{ events: Record<string, unknown>[] }>(),
  ]);
  if (!limit.allowed) return c.json({ status: 429 }, 429);
  const receivedAt = new Date();
  const documents = body.events.map((e) => ({
    ...e,
    eventId: crypto.randomUUID(),
    userId: null,
    timestamp: new Date(String(e.timestamp)),
    receivedAt,
  }));
  await dataApi(c.env, "insertMany", { collection: "analytics_events", documents });
  return c.json({ accepted: documents.length }, 202);
});

export default app;
