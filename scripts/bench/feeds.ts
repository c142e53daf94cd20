// Feed benchmark: a cached first page of the trending feed against GET /health in the same run, through
// the Worker in workerd (wrangler dev): round trips per request, req/s, p50/p99.
//   npm run bench:feeds [-- --requests 2000 --concurrency 16 --posts 60]
import { parseArgs } from "node:util";
import { newObjectId } from "../../src/platform/ids";
import { DataApiClient } from "../../src/platform/mongo/client";
import { fmt, load, roundTripsOf, startBenchStack } from "./lib";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    posts: { type: "string", default: "60" },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);

const bench = await startBenchStack();
try {
  // Synthetic public posts straight into MongoDB (the feed reads them; publishing has its own tests).
  const db = new DataApiClient({
    url: bench.stack.workerEnv.DATA_API_URL!,
    apiKey: bench.stack.workerEnv.DATA_API_KEY!,
    dataSource: "circle",
    database: "circle",
    timeoutMs: 10_000,
    readRetries: 1,
  });
  const now = Date.now();
  await db.collection("posts").insertMany(
    Array.from({ length: Number(values.posts) }, (_, i) => {
      const id = newObjectId();
      return {
        _id: id,
        userId: newObjectId(),
        username: `artist${i % 7}`,
        userAvatarUrl: null,
        userTier: "free",
        authorShadowBanned: false,
        generationId: newObjectId(),
        prompt: `bench prompt ${i}`,
        imageUrl: `https://cdn.example/${id}.png`,
        thumbnailUrl: `https://cdn.example/${id}.t.png`,
        imageWidth: 1024,
        imageHeight: 1024,
        blurhash: null,
        model: "sdxl-turbo",
        hasWatermark: true,
        voteCount: i,
        commentCount: 0,
        shareCount: 0,
        viewCount: i * 3,
        engagementScore: i,
        trendingScore: i / 10,
        hotScore: 0.1,
        tags: ["bench"],
        category: "art",
        moderationStatus: "approved",
        shareableUrl: `https://circle.example/p/${id}`,
        visibility: "public",
        isPinned: false,
        createdAt: new Date(now - i * 60_000),
        updatedAt: new Date(now),
        deletedAt: null,
      };
    }),
  );
  const feed = () => fetch(`${bench.url}/v1/feeds/trending`);
  const health = () => fetch(`${bench.url}/health`);
  await (await feed()).arrayBuffer(); // fills the cache
  const feedRt = roundTripsOf(await feed());
  const healthRt = roundTripsOf(await health());
  await load(200, concurrency, feed);
  const baseline = await load(requests, concurrency, health);
  const cached = await load(requests, concurrency, feed);

  const rt = (c: Record<string, number>) => `${c.redis ?? 0}/${c.mongo ?? 0}/${c.clickhouse ?? 0}`;
  console.log(
    `\nFeed benchmark — ${requests} requests, concurrency ${concurrency}, Worker in workerd (wrangler dev)\n`,
  );
  console.log(`${"".padEnd(38)}${"GET /health (baseline)".padEnd(26)}GET /v1/feeds/trending (cached)`);
  console.log(`${"round trips (redis/mongo/clickhouse)".padEnd(38)}${rt(healthRt).padEnd(26)}${rt(feedRt)}`);
  console.log(`${"req/s".padEnd(38)}${fmt(baseline.rps).padEnd(26)}${fmt(cached.rps)}`);
  console.log(`${"p50 ms".padEnd(38)}${fmt(baseline.p50, 2).padEnd(26)}${fmt(cached.p50, 2)}`);
  console.log(`${"p99 ms".padEnd(38)}${fmt(baseline.p99, 2).padEnd(26)}${fmt(cached.p99, 2)}`);
  console.log(
    `${"statuses".padEnd(38)}${JSON.stringify(baseline.statuses).padEnd(26)}${JSON.stringify(cached.statuses)}`,
  );
  console.log(`\ncached feed req/s ÷ health req/s: ${fmt(cached.rps / baseline.rps, 2)}`);
} finally {
  await bench.stop();
}
