// Foundation benchmark: round trips per request for GET /health and POST /v1/events, throughput and
// latency of both (the health check is the baseline measured in the same run), and events/s from
// ingest to ClickHouse through the flush job.
//   npm run bench:foundation [-- --events 50000 --requests 2000 --concurrency 16]
import { parseArgs } from "node:util";
import { fmt, load, roundTripsOf, startBenchStack } from "./lib";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "50000" },
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
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

  // Round trips per request (deterministic).
  const healthRt = roundTripsOf(await fetch(`${url}/health`));
  const eventsRt = roundTripsOf(await post(eventsBody(100, "rt")));

  // Warm-up, then throughput and latency, baseline first.
  await load(200, concurrency, () => fetch(`${url}/health`));
  const health = await load(requests, concurrency, () => fetch(`${url}/health`));
  const body = eventsBody(100, "load");
  const ingest = await load(requests, concurrency, () => post(body));

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

  const table = [
    ["metric", "GET /health (baseline)", "POST /v1/events (100 events)"],
    ["round trips (redis/mongo/clickhouse)", rt(healthRt), rt(eventsRt)],
    ["req/s", fmt(health.rps), fmt(ingest.rps)],
    ["p50 ms", fmt(health.p50, 2), fmt(ingest.p50, 2)],
    ["p99 ms", fmt(health.p99, 2), fmt(ingest.p99, 2)],
    ["statuses", JSON.stringify(health.statuses), JSON.stringify(ingest.statuses)],
  ];
  console.log(
    `\nFoundation benchmark — ${requests} requests, concurrency ${concurrency}, Worker in workerd (wrangler dev)\n`,
  );
  for (const row of table) console.log(`${row[0]!.padEnd(40)}${row[1]!.padEnd(28)}${row[2]}`);
  console.log(
    `\nevents req/s ÷ health req/s: ${fmt(ingest.rps / health.rps, 2)}  (events/s ingested: ${fmt(ingest.rps * 100, 0)})`,
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

function rt(counts: Record<string, number>): string {
  return `${counts.redis ?? 0}/${counts.mongo ?? 0}/${counts.clickhouse ?? 0}`;
}
