// Feed benchmark: a cached first page of the trending feed, from the production bundle in workerd (Miniflare's
// API), against a minimal Hono Worker making the same one Redis round trip (scripts/bench/minimal-worker.ts) in
// the same workerd version and the same run: round trips, req/s, p50/p99, workerd CPU ms per request.
//   npm run bench:feeds [-- --requests 4000 --concurrency 16 --posts 60 --rounds 4]
import { parseArgs } from "node:util";
import { newObjectId } from "../../src/platform/ids";
import { DataApiClient } from "../../src/platform/mongo/client";
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
    requests: { type: "string", default: "4000" },
    concurrency: { type: "string", default: "16" },
    posts: { type: "string", default: "60" },
    rounds: { type: "string", default: "4" },
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
  const minimal = await startMinimalWorker(bench);
  const feed = () => fetch(`${bench.url}/v1/feeds/trending`);
  const minimalFeed = () => fetch(`${minimal.url}/feed`);
  await (await feed()).arrayBuffer(); // fills the cache
  const feedRt = roundTripsOf(await feed());
  const cachedBytes = (await (await feed()).arrayBuffer()).byteLength;
  const minimalBytes = (await (await minimalFeed()).arrayBuffer()).byteLength;
  await load(300, concurrency, feed);
  await load(300, concurrency, minimalFeed);
  const result = await compare(
    Number(values.rounds),
    requests,
    concurrency,
    { worker: bench.worker, send: feed },
    { worker: minimal, send: minimalFeed },
  );

  const rt = (c: Record<string, number>) => `${c.redis ?? 0}/${c.mongo ?? 0}/${c.clickhouse ?? 0}`;
  console.log(
    `\nFeed benchmark — ${requests} requests, concurrency ${concurrency}, in ${values.rounds} alternating rounds; ` +
      `both Workers in workerd through Miniflare's API (production bundle, ${fmt(bench.bundle.gzipBytes / 1024, 1)} KiB gzip)\n`,
  );
  console.log(
    markdownTable([
      ["", "GET /v1/feeds/trending (cached)", "minimal Worker, same round trip", "ratio"],
      ["round trips (redis/mongo/clickhouse)", rt(feedRt), "1/0/0", ""],
      ["response bytes", String(cachedBytes), String(minimalBytes), ""],
      ...comparisonRows(result),
    ]),
  );
  console.log(
    `\ncached feed req/s ÷ minimal Worker req/s: ${fmt(median(result.roundRatios), 2)} (median of the rounds)` +
      "  (CPU: workerd process user+system time over each run ÷ requests)",
  );
} finally {
  await bench.stop();
}
