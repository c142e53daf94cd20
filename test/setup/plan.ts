import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/local/ports";
import { plannedWorkerEnv, type StackPlan } from "../../scripts/local/stack";

const PLAN_ENV = "CIRCLE_TEST_STACK";

export interface TestStack {
  plan: StackPlan;
  workerBindings: Record<string, string>;
}

/**
 * Chooses free ports, fresh secrets and a fresh data directory for the test run's local stack, once per
 * process (vitest may evaluate its config more than once), and records them in the environment so the
 * global setup and node-side tests use the same ones.
 */
export async function planTestStack(): Promise<TestStack> {
  const existing = process.env[PLAN_ENV];
  const plan: StackPlan = existing ? JSON.parse(existing) : await newPlan();
  process.env[PLAN_ENV] = JSON.stringify(plan);
  return { plan, workerBindings: testBindings(plan) };
}

export function currentTestStack(): TestStack {
  const raw = process.env[PLAN_ENV];
  if (!raw) throw new Error(`${PLAN_ENV} is not set: run tests through vitest (npm test)`);
  const plan = JSON.parse(raw) as StackPlan;
  return { plan, workerBindings: testBindings(plan) };
}

async function newPlan(): Promise<StackPlan> {
  const [redis, upstash, gateway, clickhouse] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const secret = () => randomBytes(24).toString("base64url");
  return {
    dataDir: mkdtempSync(join(tmpdir(), "circle-test-")),
    ports: { redis, upstash, gateway, clickhouse },
    secrets: { upstashToken: secret(), dataApiKey: secret(), clickhousePassword: secret() },
    database: "circle",
    external: {
      redisUrl: process.env.TEST_REDIS_URL,
      mongodbUri: process.env.TEST_MONGODB_URI,
      clickhouseUrl: process.env.TEST_CLICKHOUSE_URL,
    },
  };
}

function testBindings(plan: StackPlan): Record<string, string> {
  return {
    ...plannedWorkerEnv(plan),
    ENVIRONMENT: "test",
    LOG_LEVEL: "warn",
    SERVER_TIMING: "true",
    ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
    IP_HASH_SALT: "test-ip-hash-salt-0123456789",
    // High enough that suites sharing 127.0.0.1 never trip it; the rate-limit tests build their own app.
    RATE_LIMIT_API_MAX_REQUESTS: "1000000",
    JOB_TIME_BUDGET_MS: "60000",
    JOB_LEASE_SECONDS: "120",
  };
}
