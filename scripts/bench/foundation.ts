// Foundation benchmark: the production bundle's size and start-up time in workerd; round trips per request
// for GET /health and POST /v1/events; their throughput, latency and workerd CPU per request against a minimal
// Hono Worker making the same store calls (scripts/bench/minimal-worker.ts), both in workerd through
// Miniflare's API in the same run; and events/s from ingest to ClickHouse through the flush job.
//   npm run bench:foundation [-- --events 50000 --requests 2000 --concurrency 16 --rounds 4 --starts 5]

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { buildWorker } from "../build-worker";
import type { MiniflareWorker } from "../local/miniflare-worker";
import {
  compare,
  comparisonRows,
  fmt,
  load,
  markdownTable,
  median,
  roundTripsOf,
  startBenchStack,
  startMinimalWorker,
} from "./lib";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "50000" },
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    rounds: { type: "string", default: "4" },
    starts: { type: "string", default: "5" },
  },
});
const totalEvents = Number(values.events);
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);

function eventsBody(n: number, tag: string): string {
  const now = Date.now();
  return JSON.stringify({
    events: Array.from({ length: n }, (_, i) => ({
      event: i % 20 === 0 ? "session_start" : "screen_view",
      timestamp: new Date(now - i).toISOString(),
      sessionId: tag,
      deviceId: `bench-device-${i % 500}`,
      platform: i % 2 ? "ios" : "android",
      appVersion: "1.0.0",
      properties: { screen: "feed", i },
    })),
  });
}

const bench = await startBenchStack();
try {
  const { url, adminToken } = bench;
  const post = (body: string) =>
    fetch(`${url}/v1/events`, { method: "POST", headers: { "content-type": "application/json" }, body });

  const minimal = await startMinimalWorker(bench);
  const minimalPost = (body: string) =>
    fetch(`${minimal.url}/events`, { method: "POST", headers: { "content-type": "application/json" }, body });

  // Round trips per request (deterministic).
  const healthRt = roundTripsOf(await fetch(`${url}/health`));
  const eventsRt = roundTripsOf(await post(eventsBody(100, "rt")));

  // Warm-up, then throughput and latency, each route next to its minimal counterpart.
  const rounds = Number(values.rounds);
  await load(200, concurrency, () => fetch(`${url}/health`));
  await load(200, concurrency, () => fetch(`${minimal.url}/health`));
  const health = await compare(
    rounds,
    requests,
    concurrency,
    { worker: bench.worker, send: () => fetch(`${url}/health`) },
    { worker: minimal, send: () => fetch(`${minimal.url}/health`) },
  );
  const body = eventsBody(100, "load");
  await load(100, concurrency, () => post(body));
  await load(100, concurrency, () => minimalPost(body));
  const ingest = await compare(
    rounds,
    requests,
    concurrency,
    { worker: bench.worker, send: () => post(body) },
    { worker: minimal, send: () => minimalPost(body) },
  );

  // Start-up: fresh workerd processes with each bundle, until their first /health answer (stores warm by now).
  // The same source as `wrangler deploy --minify` bundles it (names kept, nothing left out), for comparison.
  const plain = await buildWorker({ outdir: join(dirname(bench.bundle.path), "plain"), plain: true });
  // workerd's own boot, for reference: a Worker that does nothing.
  const empty = join(dirname(bench.bundle.path), "empty-worker.js");
  writeFileSync(empty, 'export default { fetch: () => new Response("ok") };\n');
  const startups = {
    api: [] as MiniflareWorker["startup"][],
    plain: [] as MiniflareWorker["startup"][],
    minimal: [] as MiniflareWorker["startup"][],
    empty: [] as MiniflareWorker["startup"][],
  };
  for (let i = 0; i < Number(values.starts); i++) {
    for (const [side, script, readyPath] of [
      ["api", bench.bundle.path, "/health"],
      ["plain", plain.outfile, "/health"],
      ["minimal", minimal.scriptPath, "/health"],
      ["empty", empty, "/"],
    ] as const) {
      const fresh = await bench.startWorker(script, readyPath);
      startups[side].push(fresh.startup);
      await fresh.stop();
    }
  }
  const startup = (side: keyof typeof startups) => ({
    cpu: median(startups[side].map((s) => s.readyCpuMs ?? Number.NaN)),
    ready: median(startups[side].map((s) => s.readyMs)),
    first: median(startups[side].map((s) => s.firstAnswerMs ?? Number.NaN)),
  });
  const startupCells = (side: keyof typeof startups) => {
    const s = startup(side);
    return [`${ms(s.cpu)} ms`, `${ms(s.ready)} ms`, `${ms(s.first)} ms`];
  };

  // Ingest → ClickHouse. Drain what the load phase buffered first so the measurement starts clean.
  const flush = () =>
    fetch(`${url}/v1/admin/jobs/analytics-flush/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}` },
    });
  while (((await (await flush()).json()) as { outcome: string }).outcome === "partial");

  const perRequest = 100;
  const tag = `e2e-${Date.now()}`;
  const e2eBody = eventsBody(perRequest, tag);
  const t0 = performance.now();
  const posted = await load(Math.ceil(totalEvents / perRequest), concurrency, () => post(e2eBody));
  const t1 = performance.now();
  let flushRuns = 0;
  let outcome = "partial";
  while (outcome === "partial") {
    outcome = ((await (await flush()).json()) as { outcome: string }).outcome;
    flushRuns++;
  }
  const t2 = performance.now();
  const moved = posted.requests * perRequest;

  const rt = (counts: Record<string, number>) => `${counts.redis ?? 0}/${counts.mongo ?? 0}/${counts.clickhouse ?? 0}`;
  const ms = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "n/a" : fmt(n, 0));
  console.log(
    `\nFoundation benchmark — ${requests} requests per route, concurrency ${concurrency}, ${rounds} alternating rounds; ` +
      "Workers in workerd through Miniflare's API (production bundle)\n",
  );
  console.log(
    markdownTable([
      [
        "bundle",
        "minified",
        "gzip",
        "workerd CPU when ready",
        "start → workerd ready (wall)",
        "start → first /health 200 (wall)",
      ],
      [
        "API (dist/worker.js)",
        `${fmt(bench.bundle.bytes / 1024, 1)} KiB`,
        `${fmt(bench.bundle.gzipBytes / 1024, 1)} KiB`,
        ...startupCells("api"),
      ],
      [
        "API as `wrangler deploy --minify` bundles it",
        `${fmt(plain.bytes / 1024, 1)} KiB`,
        `${fmt(plain.gzipBytes / 1024, 1)} KiB`,
        ...startupCells("plain"),
      ],
      [
        "minimal Worker",
        `${fmt(minimal.bytes / 1024, 1)} KiB`,
        `${fmt(minimal.gzipBytes / 1024, 1)} KiB`,
        ...startupCells("minimal"),
      ],
      ["empty Worker (workerd's own boot)", "", "", ...startupCells("empty")],
    ]),
  );
  console.log("");
  console.log(
    markdownTable([
      ["GET /health", "API", "minimal Worker", "ratio"],
      ["round trips (redis/mongo/clickhouse)", rt(healthRt), "2/1/1", ""],
      ...comparisonRows(health),
    ]),
  );
  console.log("");
  console.log(
    markdownTable([
      ["POST /v1/events (100 events)", "API", "minimal Worker", "ratio"],
      ["round trips (redis/mongo/clickhouse)", rt(eventsRt), "1/1/0", ""],
      ...comparisonRows(ingest),
    ]),
  );
  console.log(
    `\nevents/s ingested: ${fmt(ingest.route.rps * 100, 0)} (minimal Worker: ${fmt(ingest.minimal.rps * 100, 0)}); ` +
      "CPU: workerd process user+system time over each run ÷ requests",
  );
  console.log(`\nIngest → ClickHouse: ${moved} events`);
  console.log(`  ingest   ${fmt((t1 - t0) / 1000, 2)} s  (${fmt(moved / ((t1 - t0) / 1000), 0)} events/s)`);
  console.log(
    `  flush    ${fmt((t2 - t1) / 1000, 2)} s  in ${flushRuns} run(s) (${fmt(moved / ((t2 - t1) / 1000), 0)} rows/s)`,
  );
  console.log(`  end to end ${fmt(moved / ((t2 - t0) / 1000), 0)} events/s`);
} finally {
  await bench.stop();
}
