// One command for a local Circle: installs redis-server when missing (apt, as root), starts the local stack
// (Upstash REST over redis-server, the Data API gateway, ClickHouse over chDB, the Resend, FCM, App Store,
// Google Play, Stripe and Cloudflare Stream stand-ins) on loopback, migrates, optionally seeds demo data (--seed),
// and runs `wrangler dev` against it. Ctrl-C stops everything.
//
//   npm run dev [-- --seed] [--data-dir .data/dev] [--port 8787] [--set KEY=value ...] [--delay store=ms ...]
//   Your own Worker settings: `.dev.vars.local` (KEY=value lines, untracked) and `--set`, merged over the
//   generated ones, e.g. `npm run dev -- --set SETTLEMENT_DELAY_SECONDS=10` to watch settlement happen.
//   Edge-like latency: `--delay mongo=40,clickhouse=40,redis=5` puts a delay proxy in front of each named store
//   (Data API, ClickHouse, Upstash REST), as a colo far from the stores would see them.
//   Ports: DEV_WORKER_PORT (8787) DEV_UPSTASH_PORT (8079) DEV_GATEWAY_PORT (8081) DEV_CLICKHOUSE_PORT (8123)
//          DEV_REDIS_PORT (6390) DEV_EMAIL_PORT (8025) DEV_FCM_PORT (8026) DEV_APPSTORE_PORT (8091)
//          DEV_PLAY_PORT (8092) DEV_STRIPE_PORT (8093) DEV_STREAM_PORT (8094); a port already in use is replaced by
//          a free one (printed). Mail and pushes go to local Resend and FCM stand-ins; their pages are printed.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { settingNames } from "../src/config";
import { bootstrapAdmin } from "./local/admin";
import { newBillingPlan } from "./local/billing-stack";
import { type DelayedStores, delayStores, parseStoreDelays } from "./local/delay-proxy";
import { DEV_OVERRIDES, devOverrides, writeDevVars } from "./local/dev-vars";
import { freePort } from "./local/ports";
import { findRedisServer } from "./local/redis";
import { type RunningStack, startLocalStack } from "./local/stack";
import { newStreamPlan } from "./local/stream-stack";
import { type RunningWorker, startWranglerDev } from "./local/worker";
import { runMigrations } from "./migrate";
import { seedDemoData } from "./seed";

const { values: args } = parseArgs({
  options: {
    seed: { type: "boolean", default: false },
    "data-dir": { type: "string", default: process.env.CIRCLE_DATA_DIR ?? ".data/dev" },
    port: { type: "string", default: process.env.DEV_WORKER_PORT ?? "8787" },
    set: { type: "string", multiple: true, default: [] },
    delay: { type: "string", multiple: true, default: [] },
  },
});

const log = (msg: string) => console.log(`dev: ${msg}`);

async function portOrFree(name: string, wanted: number): Promise<number> {
  const isFree = await new Promise<boolean>((ok) => {
    import("node:net").then(({ createServer }) => {
      const s = createServer();
      s.once("error", () => ok(false));
      s.listen(wanted, "127.0.0.1", () => s.close(() => ok(true)));
    });
  });
  if (isFree) return wanted;
  const port = await freePort();
  log(`${name} port ${wanted} is taken; using ${port}`);
  return port;
}

function ensureRedisServer(): void {
  if (process.env.REDIS_URL || findRedisServer()) return;
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync("sh", ["-c", "command -v apt-get"]).status === 0;
  if (isRoot && hasApt) {
    log("redis-server not found; installing it with apt-get…");
    const update = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    const install = spawnSync("apt-get", ["install", "-y", "-qq", "redis-server"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (update.status === 0 && install.status === 0 && findRedisServer()) return;
  }
  console.error(
    "dev: redis-server is required. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; " +
      "macOS: brew install redis) or set REDIS_URL to an existing Redis.",
  );
  process.exit(1);
}

async function main(): Promise<void> {
  // Checked first, so a typo fails before anything starts.
  const overrides = devOverrides(args.set ?? [], settingNames);
  const delays = parseStoreDelays(args.delay ?? []);
  ensureRedisServer();
  const dataDir = resolve(args["data-dir"]);
  const ports = {
    worker: await portOrFree("worker", Number(args.port)),
    upstash: await portOrFree("upstash", Number(process.env.DEV_UPSTASH_PORT ?? 8079)),
    gateway: await portOrFree("data api", Number(process.env.DEV_GATEWAY_PORT ?? 8081)),
    clickhouse: await portOrFree("clickhouse", Number(process.env.DEV_CLICKHOUSE_PORT ?? 8123)),
    redis: await portOrFree("redis", Number(process.env.DEV_REDIS_PORT ?? 6390)),
    email: await portOrFree("email", Number(process.env.DEV_EMAIL_PORT ?? 8025)),
    fcm: await portOrFree("fcm", Number(process.env.DEV_FCM_PORT ?? 8026)),
    appstore: await portOrFree("app store stand-in", Number(process.env.DEV_APPSTORE_PORT ?? 8091)),
    play: await portOrFree("google play stand-in", Number(process.env.DEV_PLAY_PORT ?? 8092)),
    stripe: await portOrFree("stripe stand-in", Number(process.env.DEV_STRIPE_PORT ?? 8093)),
    stream: await portOrFree("live-video stand-in", Number(process.env.DEV_STREAM_PORT ?? 8094)),
  };
  const workerUrl = `http://127.0.0.1:${ports.worker}`;
  const secret = () => randomBytes(24).toString("base64url");
  const plan = {
    dataDir,
    ports,
    secrets: { upstashToken: secret(), dataApiKey: secret(), clickhousePassword: secret() },
    database: "circle",
    providers: {
      emailPort: ports.email,
      fcmPort: ports.fcm,
      emailApiKey: `re_${secret()}`,
      fcmProjectId: "circle-local",
    },
    external: {
      redisUrl: process.env.REDIS_URL,
      mongodbUri: process.env.MONGODB_URI,
      clickhouseUrl: process.env.CLICKHOUSE_URL,
    },
    billing: newBillingPlan({ appstore: ports.appstore, play: ports.play, stripe: ports.stripe }, workerUrl),
    stream: newStreamPlan(ports.stream),
  };

  let stack: RunningStack | undefined;
  let worker: RunningWorker | undefined;
  let delayed: DelayedStores | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log("stopping…");
    await worker?.stop();
    await delayed?.stop();
    await stack?.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));

  stack = await startLocalStack(plan, log);
  const report = await runMigrations({
    DATA_API_URL: stack.workerEnv.DATA_API_URL!,
    DATA_API_KEY: plan.secrets.dataApiKey,
    DATA_API_DATA_SOURCE: "circle",
    MONGO_DATABASE: plan.database,
    CLICKHOUSE_URL: stack.workerEnv.CLICKHOUSE_URL!,
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: plan.secrets.clickhousePassword,
    CLICKHOUSE_DATABASE: "default",
  });
  log(`migrations: ${JSON.stringify(report)}`);

  if (Object.keys(delays).length > 0) {
    delayed = await delayStores(stack.workerEnv, delays);
    const list = Object.entries(delays).map(([store, ms]) => `${store} +${ms} ms`);
    log(`store calls from the Worker are delayed: ${list.join(", ")} per call`);
  }
  writeDevVars({
    ...(delayed?.workerEnv ?? stack.workerEnv),
    ENVIRONMENT: "development",
    LOG_LEVEL: "info",
    SERVER_TIMING: "true",
    JWT_SECRET: secret() + secret(),
    GPU_WORKER_TOKEN: secret(),
    IP_HASH_SALT: secret(),
    // Uploads land in Miniflare's local R2; the Worker serves them (GET /media/...).
    MEDIA_PUBLIC_BASE_URL: `http://127.0.0.1:${ports.worker}/media`,
    ...overrides,
  });
  if (Object.keys(overrides).length > 0) {
    log(`your settings (${DEV_OVERRIDES} and --set): ${Object.keys(overrides).join(", ")}`);
  }

  worker = await startWranglerDev({ port: ports.worker });
  worker.process.on("exit", (code) => {
    if (!stopping) {
      log(`wrangler dev exited (${code}); stopping the stack`);
      void shutdown(code ?? 1);
    }
  });
  const url = worker.url;
  const admin = await bootstrapAdmin(url, stack.workerEnv as { DATA_API_URL: string; DATA_API_KEY: string });
  if (args.seed) log(`seeded: ${JSON.stringify(await seedDemoData(url, admin.accessToken))}`);
  log(`Circle API ready at ${url}  (docs ${url}/docs, health ${url}/health)`);
  log(`admin account: ${admin.username} / ${admin.password}  (sign in at POST /v1/auth/login)`);
  log(`trigger a cron locally: curl '${url}/__scheduled?cron=*/5+*+*+*+*'`);
  if (stack.pages) {
    log(`mail the API sent (rendered): ${stack.pages.mail}   pushes and device trays: ${stack.pages.pushes}`);
    log(`retry sweeps for mail and pushes: curl '${url}/__scheduled?cron=*/2+*+*+*+*'`);
  }
  log(
    `billing stand-ins: App Store http://127.0.0.1:${ports.appstore} (POST /__notify {target: "${url}/v1/billing/apple", ` +
      `notificationType, appAccountToken, productId, originalTransactionId}), Google Play http://127.0.0.1:${ports.play} ` +
      `(PUT /__purchases/{token}, POST /__notify {target: "${url}/v1/billing/google", purchaseToken, notificationType}), ` +
      `Stripe http://127.0.0.1:${ports.stripe} (POST ${url}/v1/me/billing/checkout, then open the url it answers and pay)`,
  );
  log(
    `live-video stand-in http://127.0.0.1:${ports.stream}: POST /__inputs/{uid}/status {"status":"connected"} ` +
      "plays a stream's live input as if its encoder were sending",
  );
  log("Ctrl-C stops everything.");
}

main().catch((error) => {
  console.error(`dev: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
