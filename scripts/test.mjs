#!/usr/bin/env node
// `npm test` entry in plain Node, so it works on a fresh clone: installs dependencies when missing, makes
// sure redis-server exists (apt-get as root), then runs the whole vitest suite (which starts the local
// stack itself). Extra arguments go to vitest, e.g. `npm test -- test/api/health.test.ts`.
// `npm run test:unit` (`--unit`) runs only the pure-logic tier: no redis-server, no stack.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";

const lock = "package-lock.json";
const marker = "node_modules/.package-lock.json";
if (!existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs)) {
  console.log("test: installing dependencies (npm install, from the lock file)…");
  const result = spawnSync("npm", ["install", "--no-audit", "--no-fund"], { stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const args = process.argv.slice(2);
const unitOnly = args[0] === "--unit";
const vitestArgs = unitOnly ? ["--config", "vitest.unit.config.ts", ...args.slice(1)] : args;

const hasRedis = () => spawnSync("sh", ["-c", "command -v redis-server || test -x /usr/bin/redis-server"]).status === 0;
if (!unitOnly && !process.env.TEST_REDIS_URL && !hasRedis()) {
  if (process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v apt-get"]).status === 0) {
    console.log("test: installing redis-server (apt-get)…");
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    spawnSync("apt-get", ["install", "-y", "-qq", "redis-server"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  }
  if (!hasRedis()) {
    console.error("test: redis-server is required (apt-get install -y redis-server, or brew install redis).");
    process.exit(1);
  }
}

const env = {
  ...process.env,
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  UPSTASH_DISABLE_TELEMETRY: "1",
};
const child = spawn(process.execPath, ["node_modules/vitest/vitest.mjs", "run", ...vitestArgs], {
  stdio: "inherit",
  env,
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
