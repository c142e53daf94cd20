import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newBillingPlan } from "../../scripts/local/billing-stack";
import { freePort } from "../../scripts/local/ports";
import { plannedWorkerEnv, type StackPlan } from "../../scripts/local/stack";
import { newStreamPlan } from "../../scripts/local/stream-stack";

const PLAN_ENV = "CIRCLE_TEST_STACK";

/** A test-only OAuth provider: the global setup serves its JWKS; tests sign ID tokens with its key. */
export interface TestOAuth {
  port: number;
  kid: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
}

export interface TestPlan extends StackPlan {
  oauth: TestOAuth;
  /** The Data API stand-in that holds write answers back (test/setup/hold-proxy.ts). */
  holdProxyPort: number;
  /** The fault rigs' control server (test/setup/faults.ts). */
  faultControlPort: number;
}

export interface TestStack {
  plan: TestPlan;
  workerBindings: Record<string, string>;
}

/**
 * Chooses free ports, fresh secrets and a fresh data directory for the test run's local stack, once per
 * process (vitest may evaluate its config more than once), and records them in the environment so the
 * global setup and node-side tests use the same ones.
 */
export async function planTestStack(): Promise<TestStack> {
  const existing = process.env[PLAN_ENV];
  const plan: TestPlan = existing ? JSON.parse(existing) : await newPlan();
  process.env[PLAN_ENV] = JSON.stringify(plan);
  return { plan, workerBindings: testBindings(plan) };
}

export function currentTestStack(): TestStack {
  const raw = process.env[PLAN_ENV];
  if (!raw) throw new Error(`${PLAN_ENV} is not set: run tests through vitest (npm test)`);
  const plan = JSON.parse(raw) as TestPlan;
  return { plan, workerBindings: testBindings(plan) };
}

async function newPlan(): Promise<TestPlan> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomBytes(8).toString("hex");
  const oauth: TestOAuth = {
    port: await freePort(),
    kid,
    privateJwk: { ...privateKey.export({ format: "jwk" }), kid, alg: "RS256" },
    publicJwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" },
  };
  const [redis, upstash, gateway, clickhouse, email, fcm] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const secret = () => randomBytes(24).toString("base64url");
  // The FCM stand-in's service account, made here so the Worker's bindings can carry its key file.
  const fcmKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const billing = newBillingPlan({ appstore: await freePort(), play: await freePort(), stripe: await freePort() });
  return {
    dataDir: mkdtempSync(join(tmpdir(), "circle-test-")),
    ports: { redis, upstash, gateway, clickhouse },
    secrets: { upstashToken: secret(), dataApiKey: secret(), clickhousePassword: secret() },
    database: "circle",
    providers: {
      emailPort: email,
      fcmPort: fcm,
      emailApiKey: `re_${secret()}`,
      fcmProjectId: "circle-test",
      fcmKey: {
        privateKeyPem: fcmKey.export({ type: "pkcs8", format: "pem" }).toString(),
        privateKeyId: randomBytes(20).toString("hex"),
        clientId: "100000000000000000001",
      },
    },
    oauth,
    holdProxyPort: await freePort(),
    faultControlPort: await freePort(),
    billing,
    stream: newStreamPlan(await freePort()),
    external: {
      redisUrl: process.env.TEST_REDIS_URL,
      mongodbUri: process.env.TEST_MONGODB_URI,
      clickhouseUrl: process.env.TEST_CLICKHOUSE_URL,
    },
  };
}

function testBindings(plan: TestPlan): Record<string, string> {
  const jwks = `http://127.0.0.1:${plan.oauth.port}`;
  return {
    ...plannedWorkerEnv(plan),
    ENVIRONMENT: "test",
    LOG_LEVEL: "warn",
    SERVER_TIMING: "true",
    JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789",
    GPU_WORKER_TOKEN: "test-gpu-worker-token-0123456789",
    OAUTH_GOOGLE_JWKS_URL: `${jwks}/google/jwks.json`,
    OAUTH_GOOGLE_ISSUERS: "https://accounts.google.test",
    OAUTH_GOOGLE_CLIENT_IDS: "circle-test-google",
    OAUTH_APPLE_JWKS_URL: `${jwks}/apple/jwks.json`,
    OAUTH_APPLE_ISSUERS: "https://appleid.apple.test",
    OAUTH_APPLE_CLIENT_IDS: "circle-test-apple",
    TEST_OAUTH_PRIVATE_JWK: JSON.stringify(plan.oauth.privateJwk),
    // `${TEST_DATA_API_HOLD_URL}/{ms}` + the Data API path: write answers arrive `ms` late (hold-proxy.ts).
    TEST_DATA_API_HOLD_URL: `http://127.0.0.1:${plan.holdProxyPort}/hold`,
    TEST_FAULT_CONTROL_URL: `http://127.0.0.1:${plan.faultControlPort}`,
    // Where tests reach the billing stand-ins' control endpoints (signing notifications, setting purchases).
    TEST_APPSTORE_URL: `http://127.0.0.1:${plan.billing?.ports.appstore}`,
    TEST_PLAY_URL: `http://127.0.0.1:${plan.billing?.ports.play}`,
    TEST_STRIPE_URL: `http://127.0.0.1:${plan.billing?.ports.stripe}`,
    // Where tests reach the live-video stand-in's controls (an encoder connecting or dropping).
    TEST_STREAM_URL: `http://127.0.0.1:${plan.stream?.port}`,
    // Generous auth limits for the suite; the auth rate-limit tests build apps with tight ones.
    RATE_LIMIT_LOGIN_PER_IP: "100000",
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_IP: "100000",
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: "100000",
    RATE_LIMIT_SIGNUP_PER_IP: "100000",
    IP_HASH_SALT: "test-ip-hash-salt-0123456789",
    // High enough that suites sharing 127.0.0.1 never trip it; the rate-limit tests build their own app.
    RATE_LIMIT_API_MAX_REQUESTS: "1000000",
    // Stream suites assert viewer counts right after heartbeats; the directory cache has a test of its own.
    STREAM_LIVE_CACHE_TTL_SECONDS: "0",
    JOB_TIME_BUDGET_MS: "60000",
    // Suites run side by side on small CI machines; a slow answer there is load, not an outage.
    STORE_TIMEOUT_MS: "20000",
    REQUEST_STORE_BUDGET_MS: "60000",
    REQUEST_REDIS_TIMEOUT_MS: "20000",
    JOB_LEASE_SECONDS: "120",
    // The Worker serves the bucket itself (GET /media/...), so tests can fetch what an upload's URL names.
    MEDIA_PUBLIC_BASE_URL: "http://circle.test/media",
  };
}
