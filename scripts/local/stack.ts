import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startGateway } from "../../gateway/index";
import { type BillingPlan, billingWorkerEnv, startBillingStandIns } from "./billing-stack";
import { startClickHouseServer } from "./clickhouse-server";
import { startEmailServer } from "./email-server";
import { serviceAccountFor, serviceAccountKeysFrom } from "./fcm-oauth";
import { startFcmServer } from "./fcm-server";
import { startRedisServer } from "./redis";
import { type StreamPlan, startStreamStandIn, streamWorkerEnv } from "./stream-stack";
import { startUpstashServer } from "./upstash-server";

export interface StackPlan {
  dataDir: string;
  ports: { redis: number; upstash: number; gateway: number; clickhouse: number };
  secrets: { upstashToken: string; dataApiKey: string; clickhousePassword: string };
  database: string;
  /** Use an existing Redis (REDIS_URL), MongoDB (MONGODB_URI) or ClickHouse (CLICKHOUSE_URL) instead. */
  external?: { redisUrl?: string; mongodbUri?: string; clickhouseUrl?: string };
  /** The mail (Resend) and push (FCM) stand-ins; without it the Worker sends neither. */
  providers?: ProviderPlan;
  /** App Store, Google Play and Stripe stand-ins (scripts/local/billing-stack.ts), when planned. */
  billing?: BillingPlan;
  /** The live-video (Cloudflare Stream) stand-in (scripts/local/stream-stack.ts), when planned. */
  stream?: StreamPlan;
}

export interface ProviderPlan {
  emailPort: number;
  fcmPort: number;
  emailApiKey: string;
  fcmProjectId: string;
  /** The FCM service account's key, fixed so the Worker's bindings can be written before the stand-in starts. */
  fcmKey?: { privateKeyPem: string; privateKeyId: string; clientId: string };
}

export interface RunningStack {
  /** Settings the Worker needs to reach this stack (the store part of its configuration). */
  workerEnv: Record<string, string>;
  /** The stand-ins' pages listing what the Worker sent (rendered mails, pushes), when they run. */
  pages: { mail: string; pushes: string } | null;
  stop(): Promise<void>;
}

/**
 * Starts the local stack on loopback: redis-server behind the Upstash REST server, the Data API gateway
 * (embedded engine unless MONGODB_URI), ClickHouse over chDB (unless CLICKHOUSE_URL). Stops what it
 * started if any part fails to come up.
 */
export async function startLocalStack(plan: StackPlan, log: (line: string) => void = () => {}): Promise<RunningStack> {
  mkdirSync(plan.dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    let redisUrl = plan.external?.redisUrl;
    if (!redisUrl) {
      const redis = await startRedisServer({ port: plan.ports.redis, dir: join(plan.dataDir, "redis") });
      stops.push(redis.stop);
      redisUrl = redis.url;
    }
    const upstash = await startUpstashServer({ port: plan.ports.upstash, redisUrl, token: plan.secrets.upstashToken });
    stops.push(upstash.stop);

    const gateway = await startGateway({
      port: plan.ports.gateway,
      apiKeys: [plan.secrets.dataApiKey],
      databases: [plan.database],
      backend: plan.external?.mongodbUri
        ? { kind: "mongodb", uri: plan.external.mongodbUri }
        : { kind: "embedded", dataDir: join(plan.dataDir, "documents") },
    });
    stops.push(gateway.stop);

    let clickhouseUrl = plan.external?.clickhouseUrl;
    if (!clickhouseUrl) {
      const clickhouse = await startClickHouseServer({
        port: plan.ports.clickhouse,
        dataDir: join(plan.dataDir, "clickhouse"),
        user: "default",
        password: plan.secrets.clickhousePassword,
      });
      stops.push(clickhouse.stop);
      clickhouseUrl = clickhouse.url;
    }
    let providerEnv: Record<string, string> = {};
    let pages: RunningStack["pages"] = null;
    if (plan.providers) {
      const { emailPort, fcmPort, emailApiKey, fcmProjectId, fcmKey } = plan.providers;
      const email = await startEmailServer({ apiKey: emailApiKey, port: emailPort });
      stops.push(email.stop);
      const fcm = await startFcmServer({ port: fcmPort, projectId: fcmProjectId, keys: fcmKey });
      stops.push(fcm.stop);
      providerEnv = providerWorkerEnv(email.url, emailApiKey, fcm.url, JSON.stringify(fcm.serviceAccount));
      pages = { mail: `${email.url}/`, pushes: `${fcm.url}/` };
    }
    log(`local stack up: upstash ${upstash.url}, data api ${gateway.url}, clickhouse ${clickhouseUrl}`);
    if (plan.billing) stops.push((await startBillingStandIns(plan.billing, log)).stop);
    if (plan.stream) stops.push((await startStreamStandIn(plan.stream, log)).stop);

    return {
      workerEnv: {
        UPSTASH_REDIS_REST_URL: upstash.url,
        UPSTASH_REDIS_REST_TOKEN: plan.secrets.upstashToken,
        DATA_API_URL: gateway.url,
        DATA_API_KEY: plan.secrets.dataApiKey,
        MONGO_DATABASE: plan.database,
        CLICKHOUSE_URL: clickhouseUrl,
        CLICKHOUSE_USER: "default",
        CLICKHOUSE_PASSWORD: plan.secrets.clickhousePassword,
        ...providerEnv,
        ...(plan.billing ? billingWorkerEnv(plan.billing) : {}),
        ...(plan.stream ? streamWorkerEnv(plan.stream) : {}),
      },
      pages,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** What the Worker needs to send through the stand-ins (the key file base64'd: it stays one line in .dev.vars). */
function providerWorkerEnv(emailUrl: string, emailApiKey: string, fcmUrl: string, serviceAccountJson: string) {
  return {
    RESEND_API_URL: emailUrl,
    RESEND_API_KEY: emailApiKey,
    FCM_API_URL: fcmUrl,
    FCM_SERVICE_ACCOUNT_JSON: Buffer.from(serviceAccountJson).toString("base64"),
  };
}

/** The stand-ins' settings as `plannedWorkerEnv` knows them: only with a fixed FCM key. */
function plannedProviderEnv(providers: ProviderPlan | undefined): Record<string, string> {
  if (!providers?.fcmKey) return {};
  const fcmUrl = `http://127.0.0.1:${providers.fcmPort}`;
  const account = serviceAccountFor(
    serviceAccountKeysFrom(providers.fcmKey),
    providers.fcmProjectId,
    `${fcmUrl}/token`,
    providers.fcmKey.clientId,
  );
  return providerWorkerEnv(
    `http://127.0.0.1:${providers.emailPort}`,
    providers.emailApiKey,
    fcmUrl,
    JSON.stringify(account.json),
  );
}

/** URLs are fully determined by the plan, so a Worker's bindings can be written before anything starts. */
export function plannedWorkerEnv(plan: StackPlan): Record<string, string> {
  return {
    ...plannedProviderEnv(plan.providers),
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${plan.ports.upstash}`,
    UPSTASH_REDIS_REST_TOKEN: plan.secrets.upstashToken,
    DATA_API_URL: `http://127.0.0.1:${plan.ports.gateway}/app/data-api/endpoint/data/v1`,
    DATA_API_KEY: plan.secrets.dataApiKey,
    MONGO_DATABASE: plan.database,
    CLICKHOUSE_URL: plan.external?.clickhouseUrl ?? `http://127.0.0.1:${plan.ports.clickhouse}`,
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: plan.secrets.clickhousePassword,
    ...(plan.billing ? billingWorkerEnv(plan.billing) : {}),
    ...(plan.stream ? streamWorkerEnv(plan.stream) : {}),
  };
}
