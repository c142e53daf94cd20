// Settlement benchmark: seeds pending votes over authors into a fresh local stack (redis-server behind the
// Upstash REST server, the Data API gateway on the embedded engine), runs the settlement job in its own
// process with the metered clients, and prints its MongoDB round trips (the headline: per 1,000 authors),
// wall and CPU time, peak memory, votes/s, then checks every credit. A small run (the baseline) goes first in
// the same invocation; the ratio of round trips per 1,000 authors between the two shows whether cost grows
// with batches of authors rather than with votes.
//   npm run bench:settlement [-- --votes 1000000 --authors 100000 --baseline-votes 10000 --baseline-authors 1000]
//   (or BENCH_VOTES / BENCH_AUTHORS / BENCH_BASELINE_VOTES / BENCH_BASELINE_AUTHORS)
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { collections } from "../../src/db/collections";
import { indexes } from "../../src/db/indexes";
import { ObjectId } from "../../src/platform/ids";
import { DataApiClient } from "../../src/platform/mongo/client";
import { freePort } from "../local/ports";
import { startRedisServer } from "../local/redis";
import { startUpstashServer } from "../local/upstash-server";
import { fmt } from "./lib";

const { values } = parseArgs({
  options: {
    votes: { type: "string", default: process.env.BENCH_VOTES ?? "1000000" },
    authors: { type: "string", default: process.env.BENCH_AUTHORS ?? "100000" },
    "baseline-votes": { type: "string", default: process.env.BENCH_BASELINE_VOTES ?? "10000" },
    "baseline-authors": { type: "string", default: process.env.BENCH_BASELINE_AUTHORS ?? "1000" },
    "batch-votes": { type: "string", default: process.env.SETTLEMENT_BATCH_VOTES ?? "5000" },
    "insert-chunk": { type: "string", default: "10000" },
    job: { type: "boolean", default: false },
  },
});

const GEMS_PER_VOTE = 1;
const DATABASE = "circle";
const ROOT = join(import.meta.dirname, "..", "..");

interface JobResult {
  outcome: string;
  error: string | null;
  counts: Record<string, number>;
  roundTrips: { redis: number; mongo: number; clickhouse: number };
  mongoMs: number;
  wallMs: number;
  cpuMs: number;
  rssBeforeMb: number;
  peakRssMb: number;
  peakHeapMb: number;
}

if (values.job) await runJobProcess();
else await main();

// ── the job, in its own process (so its memory and CPU are the Worker's share, not the engine's) ────────────

async function runJobProcess(): Promise<void> {
  const { loadConfig } = await import("../../src/config");
  const { createDeps } = await import("../../src/deps");
  const { runJob } = await import("../../src/scheduler/runner");
  const { settlementJob } = await import("../../src/features/gems/settlement");
  const { newTally, withIoTally } = await import("../../src/platform/io");
  const deps = createDeps(loadConfig(process.env));
  const tally = newTally();
  let peakHeap = 0;
  let peakRss = 0;
  const sample = () => {
    const memory = process.memoryUsage();
    peakHeap = Math.max(peakHeap, memory.heapUsed);
    peakRss = Math.max(peakRss, memory.rss);
  };
  sample();
  const rssBefore = process.memoryUsage().rss;
  const sampler = setInterval(sample, 20);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // The configuration caps one run's budget (15 min at most); "partial" runs are followed by the next one,
  // as the cron would, until the job reports nothing left. Round trips and time are totals over the runs.
  const counts: Record<string, number> = {};
  let run: Awaited<ReturnType<typeof runJob>>;
  let runs = 0;
  do {
    run = await withIoTally(tally, () =>
      runJob(deps, settlementJob, { trigger: "bench", timeBudgetMs: deps.config.jobs.timeBudgetMs }),
    );
    runs++;
    for (const [name, value] of Object.entries(run.counts)) counts[name] = (counts[name] ?? 0) + value;
  } while (run.outcome === "partial");
  counts.runs = runs;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  sample();
  const result: JobResult = {
    outcome: run.outcome,
    error: run.error,
    counts,
    roundTrips: tally.roundTrips,
    mongoMs: tally.durationMs.mongo,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssBeforeMb: rssBefore / 2 ** 20,
    peakRssMb: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 2 ** 20,
    peakHeapMb: peakHeap / 2 ** 20,
  };
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
}

// ── orchestration ─────────────────────────────────────────────────────────────────────────────────────────

interface Scenario {
  label: string;
  votes: number;
  authors: number;
}

interface ScenarioResult extends Scenario {
  seedSeconds: number;
  job: JobResult;
  gatewayPeakRssMb: number | null;
  checks: { name: string; ok: boolean; detail: string }[];
}

async function main(): Promise<void> {
  const scenarios: Scenario[] = [
    {
      label: "baseline",
      votes: Number(values["baseline-votes"]),
      authors: Number(values["baseline-authors"]),
    },
    { label: "main", votes: Number(values.votes), authors: Number(values.authors) },
  ];
  for (const s of scenarios) {
    if (!(s.votes > 0 && s.authors > 0 && s.authors <= s.votes)) {
      throw new Error(`${s.label}: need 0 < authors <= votes (got ${s.votes} votes, ${s.authors} authors)`);
    }
  }
  const dataDir = mkdtempSync(join(tmpdir(), "circle-bench-settlement-"));
  const secret = () => randomBytes(24).toString("base64url");
  const redis = await startRedisServer({ port: await freePort(), dir: join(dataDir, "redis") });
  const upstashToken = secret();
  const upstash = await startUpstashServer({ port: await freePort(), redisUrl: redis.url, token: upstashToken });
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of scenarios) {
      results.push(await runScenario(scenario, { upstashUrl: upstash.url, upstashToken, secret }));
    }
  } finally {
    await upstash.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  report(results);
}

async function runScenario(
  scenario: Scenario,
  stack: { upstashUrl: string; upstashToken: string; secret: () => string },
): Promise<ScenarioResult> {
  const log = (line: string) => process.stderr.write(`[${scenario.label}] ${line}\n`);
  const apiKey = stack.secret();
  const gateway = await startGatewayProcess(apiKey);
  try {
    const db = new DataApiClient({
      url: gateway.url,
      apiKey,
      dataSource: DATABASE,
      database: DATABASE,
      timeoutMs: 120_000,
      readRetries: 0,
    });
    for (const key of Object.keys(indexes) as (keyof typeof indexes)[]) {
      await db.collection(collections[key]).createIndexes(indexes[key]);
    }
    const t0 = performance.now();
    await seed(db, scenario, log);
    const seedSeconds = (performance.now() - t0) / 1000;
    log(`seeded ${scenario.votes} votes over ${scenario.authors} authors in ${fmt(seedSeconds, 1)} s; settling…`);

    const job = await runJobChild({
      UPSTASH_REDIS_REST_URL: stack.upstashUrl,
      UPSTASH_REDIS_REST_TOKEN: stack.upstashToken,
      DATA_API_URL: gateway.url,
      DATA_API_KEY: apiKey,
      MONGO_DATABASE: DATABASE,
      // Settlement never reaches ClickHouse; the configuration only needs a URL.
      CLICKHOUSE_URL: "http://127.0.0.1:9",
      ENVIRONMENT: "development",
      LOG_LEVEL: "warn",
      JWT_SECRET: stack.secret() + stack.secret(),
      IP_HASH_SALT: stack.secret(),
      GPU_WORKER_TOKEN: stack.secret(),
      GEMS_PER_VOTE: String(GEMS_PER_VOTE),
      SETTLEMENT_BATCH_VOTES: values["batch-votes"] as string,
      // One run settles everything: the benchmark measures the job's cost, not the cron's budget.
      JOB_TIME_BUDGET_MS: String(15 * 60_000),
      JOB_LEASE_SECONDS: String(3_600),
      STORE_TIMEOUT_MS: String(60_000),
    });
    log(`job ${job.outcome} in ${fmt(job.wallMs / 1000, 1)} s; verifying…`);
    const checks = await verify(db, scenario, job);
    return { ...scenario, seedSeconds, job, gatewayPeakRssMb: peakRssOf(gateway.child), checks };
  } finally {
    await gateway.stop();
  }
}

/** Authors `0..A-1`, each with one post; vote i goes to author (i × stride) mod A, so each gets exactly V/A. */
async function seed(db: DataApiClient, scenario: Scenario, log: (line: string) => void): Promise<void> {
  const chunk = Number(values["insert-chunk"]);
  const now = Date.now();
  const authorIds = Array.from({ length: scenario.authors }, () => new ObjectId());
  const postIds = Array.from({ length: scenario.authors }, () => new ObjectId());
  const users = db.collection("users");
  await inParallel(Math.ceil(scenario.authors / chunk), 2, async (c) => {
    const from = c * chunk;
    const to = Math.min(scenario.authors, from + chunk);
    const docs = [];
    for (let a = from; a < to; a++) {
      docs.push({
        _id: authorIds[a],
        username: `author${a}`,
        usernameLower: `author${a}`,
        referralCode: `R${a.toString(36).toUpperCase().padStart(6, "0")}`,
        tier: "free",
        gemBalance: 0,
        totalGemsEarned: 0,
        totalGemsSpent: 0,
        referralBonusExpiresAt: null,
        shadowBanned: false,
        createdAt: new Date(now - 86_400_000),
      });
    }
    await users.insertMany(docs, { ordered: false });
  });
  const stride = strideFor(scenario.authors);
  // Ascending ObjectIds (one timestamp, a counter in the last bytes): votes arrive in `_id` order, as they
  // do from one writer; the claim order is by `_id` either way.
  const tsHex = Math.floor((now - 7_200_000) / 1000)
    .toString(16)
    .padStart(8, "0");
  const votes = db.collection("votes");
  let done = 0;
  await inParallel(Math.ceil(scenario.votes / chunk), 2, async (c) => {
    const from = c * chunk;
    const to = Math.min(scenario.votes, from + chunk);
    const docs = [];
    for (let i = from; i < to; i++) {
      const author = (i * stride) % scenario.authors;
      docs.push({
        _id: new ObjectId(`${tsHex}0000000000${i.toString(16).padStart(6, "0")}`),
        postId: postIds[author],
        userId: new ObjectId(),
        postAuthorId: authorIds[author],
        deviceId: null,
        ipHash: "bench",
        sessionId: "bench",
        gemAwarded: false,
        gemBatchId: null,
        createdAt: new Date(now - 7_200_000 + Math.floor((i * 3_600_000) / scenario.votes)),
        fraudScore: 0,
        flagged: false,
        shadow: false,
      });
    }
    await votes.insertMany(docs, { ordered: false });
    done += docs.length;
    if (c % 20 === 19) log(`  ${done} votes inserted`);
  });
}

function strideFor(authors: number): number {
  for (const prime of [7_919, 104_729, 1_299_709, 15_485_863]) if (authors % prime !== 0) return prime;
  return 1;
}

async function inParallel(tasks: number, concurrency: number, work: (task: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, tasks) }, async () => {
      while (next < tasks) await work(next++);
    }),
  );
}

async function verify(
  db: DataApiClient,
  scenario: Scenario,
  job: JobResult,
): Promise<{ name: string; ok: boolean; detail: string }[]> {
  const perAuthor = scenario.votes / scenario.authors;
  const count = async (collection: string, match: Record<string, unknown>) => {
    const [row] = await db.collection(collection).aggregate<{ n: number }>([{ $match: match }, { $count: "n" }]);
    return row?.n ?? 0;
  };
  const [totals] = await db
    .collection("users")
    .aggregate<{ balance: number; earned: number }>([
      { $group: { _id: null, balance: { $sum: "$gemBalance" }, earned: { $sum: "$totalGemsEarned" } } },
    ]);
  const ledger = await db
    .collection("gem_transactions")
    .aggregate<{ _id: string; n: number; amount: number }>([
      { $group: { _id: "$status", n: { $sum: 1 }, amount: { $sum: "$amount" } } },
    ]);
  const entries = ledger.reduce((n, row) => n + row.n, 0);
  const applied = ledger.find((row) => row._id === "applied");
  const unawarded = await count("votes", { gemAwarded: { $ne: true } });
  const untagged = await count("votes", { gemBatchId: { $not: { $type: "string" } } });
  const expectedGems = scenario.votes * GEMS_PER_VOTE;
  // Batches are consecutive `_id` ranges of the batch size; a window of n consecutive votes touches min(n, A)
  // authors (the stride is coprime with A), so this is the number of (batch, author) ledger entries.
  const batchSize = Number(values["batch-votes"]);
  let expectedEntries = 0;
  for (let from = 0; from < scenario.votes; from += batchSize) {
    expectedEntries += Math.min(batchSize, scenario.votes - from, scenario.authors);
  }
  const checks = [
    {
      name: "job outcome",
      ok: job.outcome === "succeeded",
      detail: `${job.outcome}${job.error ? ` (${job.error})` : ""}, ${job.counts.votes ?? 0} votes in ${job.counts.batches ?? 0} batches, ${job.counts.runs ?? 1} run(s)`,
    },
    {
      name: "sum of balances = votes × rate",
      ok: totals?.balance === expectedGems && totals?.earned === expectedGems,
      detail: `${totals?.balance} (earned ${totals?.earned}), expected ${expectedGems}`,
    },
    {
      name: "every author credited exactly",
      ok: Number.isInteger(perAuthor)
        ? (await count("users", { gemBalance: { $ne: perAuthor * GEMS_PER_VOTE } })) === 0
        : true,
      detail: Number.isInteger(perAuthor)
        ? `each ${perAuthor * GEMS_PER_VOTE} gems`
        : "skipped (votes not a multiple of authors)",
    },
    {
      name: "every vote gemAwarded",
      ok: unawarded === 0 && untagged === 0,
      detail: `${unawarded} unawarded, ${untagged} untagged`,
    },
    {
      name: "ledger entries (one per author per batch)",
      ok: entries === expectedEntries && applied?.n === entries && applied.amount === expectedGems,
      detail: `${entries} entries (${applied?.n ?? 0} applied, ${fmt(applied?.amount ?? 0, 0)} gems), expected ${expectedEntries}`,
    },
  ];
  return checks;
}

// ── processes ─────────────────────────────────────────────────────────────────────────────────────────────

interface GatewayProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The Data API gateway (embedded engine, memory only) as its own process, so its memory is measured apart. */
async function startGatewayProcess(apiKey: string): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--max-old-space-size=16384", "--import", "tsx", "gateway/server.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: "development",
      DATA_API_KEYS: apiKey,
      DATA_API_DATABASES: DATABASE,
      GATEWAY_PORT: String(port),
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_MAX_TIME_MS: "120000",
      GATEWAY_MAX_BODY_BYTES: String(64 * 2 ** 20),
      GATEWAY_DATA_DIR: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (data: Buffer) => {
    stderr += data.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    const onData = (data: Buffer) => {
      buffered += data.toString();
      const match = /"msg":"data api gateway listening","url":"([^"]+)"/.exec(buffered);
      if (match?.[1]) {
        child.stdout?.off("data", onData);
        // One log line per request: kept in BENCH_GATEWAY_LOG when set (action, collection, ms), else dropped.
        if (process.env.BENCH_GATEWAY_LOG)
          child.stdout?.pipe(createWriteStream(process.env.BENCH_GATEWAY_LOG, { flags: "a" }));
        else child.stdout?.resume();
        resolve(match[1]);
      } else if (buffered.length > 1_000_000) buffered = buffered.slice(-10_000);
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`gateway exited (${code}): ${stderr}`)));
  });
  return {
    url,
    child,
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Peak resident set of a live process (Linux VmHWM), in MiB. */
function peakRssOf(child: ChildProcess): number | null {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

async function runJobChild(env: Record<string, string>): Promise<JobResult> {
  // BENCH_JOB_PROFILE_DIR=<dir>: write a V8 CPU profile of each job process there (open in Chrome DevTools).
  const profile = process.env.BENCH_JOB_PROFILE_DIR
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_JOB_PROFILE_DIR}`]
    : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", "scripts/bench/settlement.ts", "--job"], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout?.on("data", (data: Buffer) => {
    out += data.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const line = out.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (!line) throw new Error(`settlement job process exited (${code}) without a result:\n${out.slice(-4_000)}`);
  return JSON.parse(line.slice("BENCH_RESULT ".length)) as JobResult;
}

// ── report ────────────────────────────────────────────────────────────────────────────────────────────────

function report(results: ScenarioResult[]): void {
  const [base, main] = results as [ScenarioResult, ScenarioResult];
  const perThousand = (r: ScenarioResult) => r.job.roundTrips.mongo / (r.authors / 1_000);
  const column = (r: ScenarioResult) => [
    `${fmt(r.votes, 0)} / ${fmt(r.authors, 0)}`,
    fmt(r.job.counts.batches ?? 0, 0),
    fmt(r.job.roundTrips.mongo, 0),
    fmt(perThousand(r), 2),
    fmt(r.job.roundTrips.mongo / Math.max(1, r.job.counts.batches ?? 0), 2),
    fmt(r.job.roundTrips.redis, 0),
    fmt(r.job.wallMs / 1000, 2),
    `${fmt(r.job.mongoMs / 1000, 2)} (${fmt((100 * r.job.mongoMs) / r.job.wallMs, 0)}%)`,
    fmt(r.job.cpuMs / 1000, 2),
    fmt(r.votes / (r.job.wallMs / 1000), 0),
    `${fmt(r.job.peakRssMb, 0)} (${fmt(r.job.rssBeforeMb, 0)} idle)`,
    fmt(r.job.peakHeapMb, 0),
    r.gatewayPeakRssMb === null ? "n/a" : fmt(r.gatewayPeakRssMb, 0),
    fmt(r.seedSeconds, 1),
  ];
  const rows = [
    "votes / authors",
    "batches",
    "MongoDB round trips",
    "round trips per 1,000 authors",
    "round trips per batch",
    "Redis round trips",
    "wall time s",
    "time in MongoDB calls s",
    "job CPU s (its own process)",
    "votes/s",
    "job peak RSS MiB",
    "job peak heap MiB",
    "gateway peak RSS MiB",
    "seed time s (not in the job)",
  ];
  const a = column(base);
  const b = column(main);
  console.log(
    `\nSettlement benchmark — batches of ${values["batch-votes"]} votes, Data API gateway on the embedded engine, job runs repeated until done\n`,
  );
  console.log(`${"".padEnd(34)}${"baseline".padEnd(24)}main`);
  for (const [i, name] of rows.entries()) console.log(`${name.padEnd(34)}${(a[i] as string).padEnd(24)}${b[i]}`);
  console.log(
    `\nHEADLINE: ${fmt(perThousand(main), 2)} MongoDB round trips per 1,000 authors at ${fmt(main.votes, 0)} votes / ${fmt(main.authors, 0)} authors` +
      ` (baseline ${fmt(perThousand(base), 2)}; ratio ${fmt(perThousand(main) / perThousand(base), 3)})`,
  );
  console.log(
    `votes ×${fmt(main.votes / base.votes, 0)}, round trips ×${fmt(main.job.roundTrips.mongo / base.job.roundTrips.mongo, 1)}, wall time ×${fmt(main.job.wallMs / base.job.wallMs, 1)}`,
  );
  for (const r of results) {
    console.log(`\nchecks (${r.label}):`);
    for (const c of r.checks) console.log(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  }
  if (results.some((r) => r.checks.some((c) => !c.ok))) process.exitCode = 1;
}
