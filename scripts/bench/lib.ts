import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildWorker } from "../build-worker";
import { bootstrapAdmin } from "../local/admin";
import { type DelayedStores, delayStores, type StoreDelays } from "../local/delay-proxy";
import { type MiniflareWorker, processCpuSeconds, startMiniflareWorker } from "../local/miniflare-worker";
import { freePort } from "../local/ports";
import { type RunningStack, startLocalStack } from "../local/stack";
import { runMigrations } from "../migrate";

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  statuses: Record<number, number>;
}

/** Fires `n` requests with at most `concurrency` in flight; latency percentiles in milliseconds. */
export async function load(
  n: number,
  concurrency: number,
  send: (i: number) => Promise<Response>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t0 = performance.now();
        const res = await send(i);
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return { requests: n, seconds, rps: n / seconds, p50: pct(50), p99: pct(99), statuses };
}

export function roundTripsOf(res: Response): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of (res.headers.get("server-timing") ?? "").split(",")) {
    const m = /^\s*(\w+);desc="(\d+)"/.exec(entry);
    if (m?.[1] && m[2]) out[m[1]] = Number(m[2]);
  }
  return out;
}

export interface BenchStackOptions {
  /** Worker settings over the bench defaults. */
  vars?: Record<string, string>;
  /** Per-store latency added in front of each store (delay proxies), in milliseconds. */
  delays?: StoreDelays;
  /** A built Worker bundle to run; by default src/worker.ts is built (production options) into a temp dir. */
  scriptPath?: string;
}

export interface BenchStack {
  url: string;
  adminToken: string;
  stack: RunningStack;
  worker: MiniflareWorker;
  /** The bundle the Worker runs (built for this run unless a script was given). */
  bundle: { path: string; bytes: number; gzipBytes: number };
  /** The Worker's bindings (store URLs through the delay proxies when delays were asked for). */
  workerEnv: Record<string, string>;
  delays: DelayedStores | undefined;
  /** Starts another Worker bundle in workerd against the same stores and bindings (e.g. the minimal Worker). */
  startWorker(scriptPath: string, readyPath?: string | null): Promise<MiniflareWorker>;
  stop(): Promise<void>;
}

/**
 * A fresh local stack (optionally behind delay proxies) plus the production bundle in workerd through
 * Miniflare's API, for a benchmark run. `wrangler dev` is not used: its Node proxy in front of workerd
 * dominated throughput (~70 req/s for /health).
 */
export async function startBenchStack(opts: BenchStackOptions = {}): Promise<BenchStack> {
  const dataDir = mkdtempSync(join(tmpdir(), "circle-bench-"));
  const secret = () => randomBytes(24).toString("base64url");
  const ports = {
    redis: await freePort(),
    upstash: await freePort(),
    gateway: await freePort(),
    clickhouse: await freePort(),
  };
  const secrets = { upstashToken: secret(), dataApiKey: secret(), clickhousePassword: secret() };
  let bundle: BenchStack["bundle"];
  if (opts.scriptPath) {
    const code = readFileSync(opts.scriptPath);
    bundle = { path: opts.scriptPath, bytes: code.byteLength, gzipBytes: gzipSync(code).byteLength };
  } else {
    const built = await buildWorker({ outdir: join(dataDir, "dist") });
    bundle = { path: built.outfile, bytes: built.bytes, gzipBytes: built.gzipBytes };
  }
  const stack = await startLocalStack({ dataDir, ports, secrets, database: "circle" });
  const stops: (() => Promise<void>)[] = [stack.stop];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    await runMigrations({
      DATA_API_URL: stack.workerEnv.DATA_API_URL!,
      DATA_API_KEY: secrets.dataApiKey,
      DATA_API_DATA_SOURCE: "circle",
      MONGO_DATABASE: "circle",
      CLICKHOUSE_URL: stack.workerEnv.CLICKHOUSE_URL!,
      CLICKHOUSE_USER: "default",
      CLICKHOUSE_PASSWORD: secrets.clickhousePassword,
      CLICKHOUSE_DATABASE: "default",
    });
    const delays =
      opts.delays && Object.keys(opts.delays).length > 0 ? await delayStores(stack.workerEnv, opts.delays) : undefined;
    if (delays) stops.push(delays.stop);
    const workerEnv: Record<string, string> = {
      ...(delays?.workerEnv ?? stack.workerEnv),
      ENVIRONMENT: "development",
      LOG_LEVEL: "warn",
      SERVER_TIMING: "true",
      JWT_SECRET: secret() + secret(),
      GPU_WORKER_TOKEN: secret(),
      IP_HASH_SALT: secret(),
      RATE_LIMIT_API_MAX_REQUESTS: "100000000",
      // The load comes from one address: the per-IP event byte budget would answer 429 instead of ingesting.
      ANALYTICS_INGEST_BYTES_PER_IP: "1000000000000",
      ...opts.vars,
    };
    const startWorker = async (scriptPath: string, readyPath?: string | null) => {
      const worker = await startMiniflareWorker({ scriptPath, bindings: workerEnv, readyPath });
      stops.push(worker.stop);
      return worker;
    };
    const worker = await startWorker(bundle.path);
    // Straight to the gateway (no delay): granting the role is set-up, not part of what is measured.
    const { accessToken: adminToken } = await bootstrapAdmin(worker.url, {
      DATA_API_URL: stack.workerEnv.DATA_API_URL!,
      DATA_API_KEY: secrets.dataApiKey,
    });
    return { url: worker.url, adminToken, stack, worker, bundle, workerEnv, delays, startWorker, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** CPU seconds workerd used while `run` ran, or undefined where it cannot be read (not Linux). */
export async function workerdCpu<T>(
  worker: MiniflareWorker,
  run: () => Promise<T>,
): Promise<{ result: T; cpuSeconds: number | undefined }> {
  const pid = worker.workerdPid;
  const before = pid === undefined ? undefined : processCpuSeconds(pid);
  const result = await run();
  const after = pid === undefined ? undefined : processCpuSeconds(pid);
  return { result, cpuSeconds: before === undefined || after === undefined ? undefined : after - before };
}

export function fmt(n: number, digits = 1): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export interface Throughput extends LoadResult {
  /** workerd's CPU time per request over the run, in ms (process CPU time: user + system). */
  cpuMsPerRequest: number | undefined;
  /** This process's CPU time per request (the load generator and the in-process store stand-ins), in ms. */
  benchCpuMsPerRequest: number;
}

/** `load` against one Worker, with workerd's CPU time over the run divided by the requests. */
export async function measure(
  worker: MiniflareWorker,
  n: number,
  concurrency: number,
  send: (i: number) => Promise<Response>,
): Promise<Throughput> {
  const own = process.cpuUsage();
  const { result, cpuSeconds } = await workerdCpu(worker, () => load(n, concurrency, send));
  const { user, system } = process.cpuUsage(own);
  return {
    ...result,
    cpuMsPerRequest: cpuSeconds === undefined ? undefined : (cpuSeconds * 1000) / n,
    benchCpuMsPerRequest: (user + system) / 1000 / n,
  };
}

export interface Comparison {
  route: Throughput;
  minimal: Throughput;
  /** route ÷ minimal req/s in each round (a shared machine's load drifts; the median of these is the ratio). */
  roundRatios: number[];
}

/**
 * The route and the minimal Worker's counterpart, measured in alternating rounds (route, minimal, route, …) so
 * drift in a shared machine's load falls on both; requests are split evenly over the rounds and the rounds'
 * results merged (req/s over the total time, latency percentiles of the per-round medians). The req/s ratio is
 * the median of the rounds' ratios.
 */
export async function compare(
  rounds: number,
  n: number,
  concurrency: number,
  route: { worker: MiniflareWorker; send: (i: number) => Promise<Response> },
  minimal: { worker: MiniflareWorker; send: (i: number) => Promise<Response> },
): Promise<Comparison> {
  const perRound = Math.ceil(n / rounds);
  const a: Throughput[] = [];
  const b: Throughput[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await measure(route.worker, perRound, concurrency, route.send));
    b.push(await measure(minimal.worker, perRound, concurrency, minimal.send));
  }
  return { route: merge(a), minimal: merge(b), roundRatios: a.map((run, i) => run.rps / b[i]!.rps) };
}

function merge(runs: Throughput[]): Throughput {
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  const statuses: Record<number, number> = {};
  for (const run of runs)
    for (const [k, v] of Object.entries(run.statuses)) statuses[Number(k)] = (statuses[Number(k)] ?? 0) + v;
  const cpu = runs.every((r) => r.cpuMsPerRequest !== undefined)
    ? runs.reduce((s, r) => s + r.cpuMsPerRequest! * r.requests, 0) / requests
    : undefined;
  return {
    requests,
    seconds,
    benchCpuMsPerRequest: runs.reduce((s, r) => s + r.benchCpuMsPerRequest * r.requests, 0) / requests,
    rps: requests / seconds,
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    statuses,
    cpuMsPerRequest: cpu,
  };
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Builds the minimal Worker (scripts/bench/minimal-worker.ts) like the API and starts it next to the API. */
export async function startMinimalWorker(
  bench: BenchStack,
  readyPath = "/health",
): Promise<MiniflareWorker & { scriptPath: string; bytes: number; gzipBytes: number }> {
  const built = await buildWorker({
    entry: "scripts/bench/minimal-worker.ts",
    outdir: join(dirname(bench.bundle.path), "minimal"),
  });
  const worker = await bench.startWorker(built.outfile, readyPath);
  return Object.assign(worker, { scriptPath: built.outfile, bytes: built.bytes, gzipBytes: built.gzipBytes });
}

/** Rows of a comparison table: the route, the minimal Worker, and their ratio. */
export function comparisonRows(c: Comparison): string[][] {
  const cpu = (t: Throughput) => (t.cpuMsPerRequest === undefined ? "n/a" : fmt(t.cpuMsPerRequest, 2));
  const perCpuSecond = (t: Throughput) => (t.cpuMsPerRequest ? fmt(1000 / t.cpuMsPerRequest, 0) : "n/a");
  const ratio = (x: number | undefined, y: number | undefined) =>
    x === undefined || y === undefined || y === 0 ? "n/a" : `${fmt(x / y, 2)}×`;
  return [
    [
      "req/s",
      fmt(c.route.rps),
      fmt(c.minimal.rps),
      `${fmt(median(c.roundRatios), 2)}× (rounds ${c.roundRatios.map((r) => fmt(r, 2)).join(", ")})`,
    ],
    ["p50 ms", fmt(c.route.p50, 2), fmt(c.minimal.p50, 2), ratio(c.route.p50, c.minimal.p50)],
    ["p99 ms", fmt(c.route.p99, 2), fmt(c.minimal.p99, 2), ratio(c.route.p99, c.minimal.p99)],
    [
      "workerd CPU ms / request",
      cpu(c.route),
      cpu(c.minimal),
      ratio(c.route.cpuMsPerRequest, c.minimal.cpuMsPerRequest),
    ],
    [
      // What one core of workerd could serve if nothing else were the bottleneck (1000 ÷ CPU ms per request).
      "requests per workerd CPU-second",
      perCpuSecond(c.route),
      perCpuSecond(c.minimal),
      ratio(c.minimal.cpuMsPerRequest, c.route.cpuMsPerRequest),
    ],
    [
      "bench process CPU ms / request (load + stand-ins)",
      fmt(c.route.benchCpuMsPerRequest, 2),
      fmt(c.minimal.benchCpuMsPerRequest, 2),
      "",
    ],
    ["statuses", JSON.stringify(c.route.statuses), JSON.stringify(c.minimal.statuses), ""],
  ];
}

/** A markdown table (header row first). */
export function markdownTable(rows: string[][]): string {
  const [head, ...body] = rows;
  if (!head) return "";
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...body.map(line)].join("\n");
}
