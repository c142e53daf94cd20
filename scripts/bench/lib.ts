import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapAdmin } from "../local/admin";
import { freePort } from "../local/ports";
import { type RunningStack, startLocalStack } from "../local/stack";
import { type RunningWorker, startWranglerDev } from "../local/worker";
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

export interface BenchStack {
  url: string;
  adminToken: string;
  stack: RunningStack;
  worker: RunningWorker;
  stop(): Promise<void>;
}

/** A fresh local stack plus the Worker under `wrangler dev` (workerd), for a benchmark run. */
export async function startBenchStack(extraVars: Record<string, string> = {}): Promise<BenchStack> {
  const dataDir = mkdtempSync(join(tmpdir(), "circle-bench-"));
  const secret = () => randomBytes(24).toString("base64url");
  const ports = {
    redis: await freePort(),
    upstash: await freePort(),
    gateway: await freePort(),
    clickhouse: await freePort(),
  };
  const secrets = { upstashToken: secret(), dataApiKey: secret(), clickhousePassword: secret() };
  const stack = await startLocalStack({ dataDir, ports, secrets, database: "circle" });
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
  const envFile = join(dataDir, "bench.env");
  const vars: Record<string, string> = {
    ...stack.workerEnv,
    ENVIRONMENT: "development",
    LOG_LEVEL: "warn",
    SERVER_TIMING: "true",
    JWT_SECRET: secret() + secret(),
    GPU_WORKER_TOKEN: secret(),
    IP_HASH_SALT: secret(),
    RATE_LIMIT_API_MAX_REQUESTS: "100000000",
    ...extraVars,
  };
  writeFileSync(
    envFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
  );
  const worker = await startWranglerDev({ port: await freePort(), envFile, quiet: true });
  const { accessToken: adminToken } = await bootstrapAdmin(worker.url, {
    DATA_API_URL: stack.workerEnv.DATA_API_URL!,
    DATA_API_KEY: secrets.dataApiKey,
  });
  return {
    url: worker.url,
    adminToken,
    stack,
    worker,
    stop: async () => {
      await worker.stop();
      await stack.stop();
    },
  };
}

export function fmt(n: number, digits = 1): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
