import { z } from "zod";
import { REFERRAL_TRIGGERS, type ReferralTrigger } from "./db/documents/referrals";

/**
 * Every setting and tunable of the API, defined once: each leaf names its environment variable, its schema
 * (type, bounds, default) and what it is for. The `Config` type is inferred from this tree, README's table is
 * printed from it (`npm run config:table`), and `loadConfig` reads it from the environment (Worker bindings,
 * Deno.env, or process.env in scripts). A missing or malformed setting fails with a message naming it.
 */

interface Setting<S extends z.ZodType> {
  env: string;
  schema: S;
  doc: string;
  secret: boolean;
}

const setting = <S extends z.ZodType>(env: string, schema: S, doc: string): Setting<S> => ({
  env,
  schema,
  doc,
  secret: false,
});
const secret = <S extends z.ZodType>(env: string, schema: S, doc: string): Setting<S> => ({
  env,
  schema,
  doc,
  secret: true,
});

const bool = z.union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1")]);
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max = Number.MAX_VALUE) => z.coerce.number().min(min).max(max);
const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);
const url = z.url();
const withoutTrailingSlash = z.url().transform((v) => v.replace(/\/+$/, ""));

// The shop: the catalog's shape. Prices are in gems; SKUs are stable ids clients send back.
const Sku = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, "lowercase letters, digits, '_', '.', '-'");
const ShopItemBase = { sku: Sku, price: int(1, 1_000_000), title: z.string().min(1).max(80) };
const ShopItemConfig = z.discriminatedUnion("kind", [
  z.object({ ...ShopItemBase, kind: z.literal("model_unlock"), model: z.string().min(1) }).strict(),
  z.object({ ...ShopItemBase, kind: z.literal("ad_free_pass"), days: int(1, 366) }).strict(),
  z.object({ ...ShopItemBase, kind: z.literal("cosmetic"), theme: z.string().min(1).max(40) }).strict(),
  z.object({ ...ShopItemBase, kind: z.literal("gift_card"), value: int(1, 1_000_000) }).strict(),
]);
const ShopCatalogConfig = z
  .array(ShopItemConfig)
  .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, "SKUs must be unique");
export type ShopItemConfig = z.output<typeof ShopItemConfig>;

const DEFAULT_SHOP_CATALOG: ShopItemConfig[] = [
  { sku: "model.flux", kind: "model_unlock", price: 500, title: "Unlock Flux", model: "flux" },
  { sku: "model.midjourney", kind: "model_unlock", price: 1_000, title: "Unlock Midjourney", model: "midjourney" },
  { sku: "ad_free.7d", kind: "ad_free_pass", price: 100, title: "Ad-free for 7 days", days: 7 },
  { sku: "ad_free.30d", kind: "ad_free_pass", price: 350, title: "Ad-free for 30 days", days: 30 },
  { sku: "theme.neon", kind: "cosmetic", price: 150, title: "Neon profile theme", theme: "neon" },
  { sku: "theme.sunset", kind: "cosmetic", price: 150, title: "Sunset profile theme", theme: "sunset" },
  // The gap between price and value is the platform's cut, as with gifts (GIFT_PLATFORM_FEE_PERCENT).
  { sku: "gift_card.100", kind: "gift_card", price: 110, title: "Gift card: 100 gems", value: 100 },
];

const jsonCatalog = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined) return undefined; // the default, fitted to GENERATION_MODELS in loadConfig
    let raw: unknown;
    try {
      raw = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: "custom", message: "expected a JSON array of shop items" });
      return z.NEVER;
    }
    const parsed = ShopCatalogConfig.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        ctx.addIssue({ code: "custom", message: `${issue.path.join(".")}: ${issue.message}` });
      }
      return z.NEVER;
    }
    return parsed.data;
  });

const streakMilestones = z
  .string()
  .default("7:20,30:100,100:500")
  .transform((v, ctx) => {
    const pairs = v
      .split(",")
      .filter(Boolean)
      .map((p) => p.split(":").map(Number));
    if (pairs.some((p) => p.length !== 2 || !p.every((n) => Number.isInteger(n) && n > 0))) {
      ctx.addIssue({ code: "custom", message: "expected day:gems pairs, e.g. 7:20,30:100" });
      return z.NEVER;
    }
    return new Map(pairs.map(([day = 0, gems = 0]) => [day, gems]));
  });

const referralTriggers = z
  .string()
  .default("first_post,return_checkin")
  .transform((v, ctx) => {
    const triggers = v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (triggers.length === 0 || triggers.some((t) => !(REFERRAL_TRIGGERS as readonly string[]).includes(t))) {
      ctx.addIssue({ code: "custom", message: `expected a list of ${REFERRAL_TRIGGERS.join(", ")}` });
      return z.NEVER;
    }
    return triggers as ReferralTrigger[];
  });

const oauthProvider = (name: "GOOGLE" | "APPLE", jwks: string, issuers: string[]) => ({
  jwksUrl: setting(`OAUTH_${name}_JWKS_URL`, url.default(jwks), "the provider's JWKS"),
  issuers: setting(`OAUTH_${name}_ISSUERS`, list.default(issuers), "accepted `iss` values"),
  audiences: setting(
    `OAUTH_${name}_CLIENT_IDS`,
    list.default([]),
    "our client ids (the accepted `aud`); sign-in is off until set",
  ),
});

// Billing: Apple's App Store root (Apple Root CA - G3, https://www.apple.com/certificateauthority/AppleRootCA-G3.cer,
// SHA-256 63:34:3A:BF:B8:9A:6A:03:EB:B5:7E:9B:3F:5F:A7:BE:7C:4F:5C:75:6F:30:17:B3:A8:C4:88:C3:65:3E:91:79), base64 DER.
const APPLE_ROOT_CA_G3 =
  "MIICQzCCAcmgAwIBAgIILcX8iNLFS5UwCgYIKoZIzj0EAwMwZzEbMBkGA1UEAwwSQXBwbGUgUm9vdCBDQSAtIEczMSYwJAYDVQQLDB1BcHBsZSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eTETMBEGA1UECgwKQXBwbGUgSW5jLjELMAkGA1UEBhMCVVMwHhcNMTQwNDMwMTgxOTA2WhcNMzkwNDMwMTgxOTA2WjBnMRswGQYDVQQDDBJBcHBsZSBSb290IENBIC0gRzMxJjAkBgNVBAsMHUFwcGxlIENlcnRpZmljYXRpb24gQXV0aG9yaXR5MRMwEQYDVQQKDApBcHBsZSBJbmMuMQswCQYDVQQGEwJVUzB2MBAGByqGSM49AgEGBSuBBAAiA2IABJjpLz1AcqTtkyJygRMc3RCV8cWjTnHcFBbZDuWmBSp3ZHtfTjjTuxxEtX/1H7YyYl3J6YRbTzBPEVoA/VhYDKX1DyxNB0cTddqXl5dvMVztK517IDvYuVTZXpmkOlEKMaNCMEAwHQYDVR0OBBYEFLuw3qFYM4iapIqZ3r6966/ayySrMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMDA2gAMGUCMQCD6cHEFl4aXTQY2e3v9GwOAEZLuN+yRhHFD/3meoyhpmvOwgPUnPWTxnS4at+qIxUCMG1mihDK1A3UT82NQz60imOlM27jbdoXt2QfyFMm+YhidDkLF1vLUagM6BgD56KyKA==";

/** Certificates as comma-separated base64 DER; `AppleRootCA-G3` names Apple's root (the default). */
const base64Certificates = z
  .string()
  .default("AppleRootCA-G3")
  .transform((v) =>
    v
      .split(",")
      .map((s) => s.replace(/\s+/g, ""))
      .filter(Boolean)
      .map((s) => (s === "AppleRootCA-G3" ? APPLE_ROOT_CA_G3 : s)),
  )
  .pipe(z.array(z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, "base64 DER certificates, comma-separated")).min(1));

// A Google service-account key file (JSON) for the Play Developer API: only the fields used are kept.
const playServiceAccountJson = z
  .string()
  .transform((v, ctx) => {
    let raw: unknown;
    try {
      raw = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: "custom", message: "expected the service account's JSON key file" });
      return z.NEVER;
    }
    const parsed = z
      .object({
        client_email: z.string().min(3),
        private_key: z.string().includes("PRIVATE KEY"),
        private_key_id: z.string().optional(),
        token_uri: z.url().default("https://oauth2.googleapis.com/token"),
      })
      .safeParse(raw);
    if (!parsed.success) {
      ctx.addIssue({
        code: "custom",
        message: `key file: ${parsed.error.issues.map((i) => i.path.join(".")).join(", ")}`,
      });
      return z.NEVER;
    }
    return parsed.data;
  })
  .optional();

const perTier = (prefix: string, bounds: [number, number], defaults: [number, number, number], doc: string) => ({
  free: setting(`${prefix}_FREE`, int(...bounds).default(defaults[0]), `${doc} (free tier)`),
  pro: setting(`${prefix}_PRO`, int(...bounds).default(defaults[1]), `${doc} (pro tier)`),
  premium: setting(`${prefix}_PREMIUM`, int(...bounds).default(defaults[2]), `${doc} (premium tier)`),
});

// A Firebase service-account key file as the console downloads it: the JSON itself, or base64 of it (handy
// where a value must stay on one line). Only the fields the token exchange needs are kept; a problem is named
// by field, never by echoing the key.
const SERVICE_ACCOUNT_FIELDS = ["project_id", "private_key_id", "private_key", "client_email", "token_uri"] as const;
const serviceAccountJson = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined) return undefined;
    const text = v.trim().startsWith("{") ? v : decodeBase64(v);
    let raw: unknown;
    try {
      raw = JSON.parse(text ?? "");
    } catch {
      ctx.addIssue({ code: "custom", message: "expected the service-account key file (JSON, or base64 of it)" });
      return z.NEVER;
    }
    const file = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const missing = SERVICE_ACCOUNT_FIELDS.filter((f) => typeof file[f] !== "string" || file[f] === "");
    if (file.type !== "service_account" || missing.length > 0) {
      ctx.addIssue({
        code: "custom",
        message: `not a service-account key file (type must be service_account; missing: ${missing.join(", ") || "none"})`,
      });
      return z.NEVER;
    }
    if (!z.url().safeParse(file.token_uri).success || !String(file.private_key).includes("PRIVATE KEY")) {
      ctx.addIssue({ code: "custom", message: "token_uri must be a URL and private_key a PEM private key" });
      return z.NEVER;
    }
    return {
      projectId: String(file.project_id),
      privateKeyId: String(file.private_key_id),
      privateKey: String(file.private_key),
      clientEmail: String(file.client_email),
      tokenUri: String(file.token_uri),
    };
  });

function decodeBase64(value: string): string | undefined {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(value.trim()), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

// "Name <address>" or a bare address, as Resend takes `from`.
const mailbox = z
  .string()
  .regex(/^([^<>]*<[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+)$/, "an address or Name <address>");

/** The whole configuration: a tree whose leaves are settings. */
export const configSpec = {
  environment: setting(
    "ENVIRONMENT",
    z.enum(["development", "test", "production"]).default("development"),
    "`development`, `test` or `production`",
  ),
  logLevel: setting("LOG_LEVEL", z.enum(["debug", "info", "warn", "error"]).default("info"), "log threshold"),

  redis: {
    url: setting("UPSTASH_REDIS_REST_URL", url, "Upstash REST endpoint"),
    token: secret("UPSTASH_REDIS_REST_TOKEN", z.string().min(1), "Upstash token"),
  },
  dataApi: {
    url: setting(
      "DATA_API_URL",
      withoutTrailingSlash,
      "Data API base, e.g. `https://data.example/app/data-api/endpoint/data/v1`",
    ),
    apiKey: secret("DATA_API_KEY", z.string().min(1), "`apiKey` for the Data API"),
    dataSource: setting(
      "DATA_API_DATA_SOURCE",
      z.string().min(1).default("circle"),
      "`dataSource` sent with every action",
    ),
    database: setting("MONGO_DATABASE", z.string().min(1).default("circle"), "database name"),
    readRetries: setting(
      "DATA_API_READ_RETRIES",
      int(0, 5).default(2),
      "retries for reads only (writes are never retried)",
    ),
    readRetryBackoffMs: setting(
      "DATA_API_READ_RETRY_BACKOFF_MS",
      int(0, 5_000).default(50),
      "first retry's delay; doubles per retry",
    ),
  },
  clickhouse: {
    url: setting("CLICKHOUSE_URL", url, "ClickHouse HTTP endpoint"),
    user: setting("CLICKHOUSE_USER", z.string().min(1).default("default"), "ClickHouse user"),
    password: secret("CLICKHOUSE_PASSWORD", z.string().default(""), "ClickHouse password"),
    database: setting("CLICKHOUSE_DATABASE", z.string().min(1).default("default"), "ClickHouse database"),
  },
  storeTimeoutMs: setting("STORE_TIMEOUT_MS", int(100, 60_000).default(5_000), "per round trip to any store"),
  requestStoreBudgetMs: setting(
    "REQUEST_STORE_BUDGET_MS",
    int(100, 120_000).default(5_000),
    "most one request waits on stores that fail, all stores and read retries together; then 503 at once",
  ),
  requestRedisTimeoutMs: setting(
    "REQUEST_REDIS_TIMEOUT_MS",
    int(50, 60_000).default(1_000),
    "per Redis round trip while serving a request (jobs use `STORE_TIMEOUT_MS`), so a dead cache leaves budget for MongoDB",
  ),
  healthCheckTimeoutMs: setting(
    "HEALTH_CHECK_TIMEOUT_MS",
    int(100, 10_000).default(1_500),
    "per store in `GET /health`",
  ),
  unavailableRetryAfterSeconds: setting(
    "STORE_UNAVAILABLE_RETRY_AFTER_SECONDS",
    int(1, 3_600).default(5),
    "`Retry-After` on 503",
  ),

  http: {
    corsOrigins: setting("CORS_ORIGINS", list.default(["*"]), "comma-separated allowed origins, or `*`"),
    serverTiming: setting(
      "SERVER_TIMING",
      bool.default(true),
      "send `Server-Timing` with per-store round trips (off in production vars)",
    ),
    ipHashSalt: secret(
      "IP_HASH_SALT",
      z.string().min(16, "IP_HASH_SALT must be at least 16 characters"),
      "HMAC key for stored IP hashes (≥ 16 chars)",
    ),
    maxBodyBytes: setting(
      "HTTP_MAX_BODY_BYTES",
      int(1_024, 16 * 1_048_576).default(1_048_576),
      "request body cap on /v1/*",
    ),
  },
  rateLimit: {
    api: {
      maxRequests: setting("RATE_LIMIT_API_MAX_REQUESTS", int(1).default(300), "per IP per window"),
      windowSeconds: setting("RATE_LIMIT_API_WINDOW_SECONDS", int(1, 3_600).default(60), "sliding window length"),
    },
    failMode: setting(
      "RATE_LIMIT_FAIL_MODE",
      z.enum(["open", "closed"]).default("open"),
      "when Redis is unreachable: `open` (allow, log) or `closed` (503)",
    ),
  },

  analytics: {
    maxEventAgeHours: setting(
      "ANALYTICS_MAX_EVENT_AGE_HOURS",
      int(1, 24 * 30).default(168),
      "oldest event timestamp accepted",
    ),
    maxClockSkewSeconds: setting(
      "ANALYTICS_MAX_CLOCK_SKEW_SECONDS",
      int(0, 86_400).default(3_600),
      "how far in the future a timestamp may be",
    ),
    flushBatchSize: setting("ANALYTICS_FLUSH_BATCH_SIZE", int(1, 10_000).default(10_000), "rows per ClickHouse insert"),
    dauMaxRangeDays: setting("ANALYTICS_DAU_MAX_RANGE_DAYS", int(1, 3_660).default(366), "longest DAU query"),
    retentionMaxRangeDays: setting(
      "ANALYTICS_RETENTION_MAX_RANGE_DAYS",
      int(1, 3_660).default(366),
      "most cohort days in one retention report",
    ),
    maxRequestBytes: setting(
      "ANALYTICS_MAX_REQUEST_BYTES",
      int(1_024, 16 * 1_048_576).default(262_144),
      "body cap of one `POST /v1/events` (413 above; the other routes have HTTP_MAX_BODY_BYTES)",
    ),
    ingestBytesPerIp: setting(
      "ANALYTICS_INGEST_BYTES_PER_IP",
      int(1_024).default(4_194_304),
      "event bytes (request bodies) one IP (IPv6: /64) may send per window; more is a 429 with Retry-After",
    ),
    ingestWindowSeconds: setting(
      "ANALYTICS_INGEST_WINDOW_SECONDS",
      int(1, 3_600).default(60),
      "window of ANALYTICS_INGEST_BYTES_PER_IP",
    ),
    creatorMaxRangeDays: setting(
      "ANALYTICS_CREATOR_MAX_RANGE_DAYS",
      int(1, 3_660).default(366),
      "most days in one `GET /v1/me/analytics` or `GET /v1/posts/{id}/analytics` series",
    ),
    attributionMaxRangeDays: setting(
      "ANALYTICS_ATTRIBUTION_MAX_RANGE_DAYS",
      int(1, 3_660).default(366),
      "most signup days in one attribution report",
    ),
  },

  auth: {
    jwtSecret: secret(
      "JWT_SECRET",
      z.string().min(32, "JWT_SECRET must be at least 32 characters"),
      "HS256 key for access tokens (≥ 32 chars)",
    ),
    issuer: setting("JWT_ISSUER", z.string().min(1).default("circle-api"), "checked on every token"),
    audience: setting("JWT_AUDIENCE", z.string().min(1).default("circle-app"), "checked on every token"),
    accessTokenTtlSeconds: setting(
      "ACCESS_TOKEN_TTL_SECONDS",
      int(60, 3_600).default(900),
      "access-token lifetime, also the revocation bound",
    ),
    refreshTokenTtlDays: setting("REFRESH_TOKEN_TTL_DAYS", int(1, 365).default(30), "session lifetime"),
    pbkdf2Iterations: setting(
      "PASSWORD_PBKDF2_ITERATIONS",
      int(10_000, 100_000).default(100_000),
      "10,000–100,000 (the production Workers cap)",
    ),
    emailVerificationTtlHours: setting(
      "EMAIL_VERIFICATION_TTL_HOURS",
      int(1, 24 * 14).default(48),
      "verification link lifetime",
    ),
    passwordResetTtlMinutes: setting("PASSWORD_RESET_TTL_MINUTES", int(5, 24 * 60).default(30), "reset link lifetime"),
    standingTtlSeconds: setting(
      "ACCOUNT_STANDING_TTL_SECONDS",
      int(10, 86_400).default(300),
      "how long an account's role, tier and ban state is cached; every change also drops it at once",
    ),
    accountDeletionGraceDays: setting(
      "ACCOUNT_DELETION_GRACE_DAYS",
      int(0, 365).default(30),
      "before the erasure job removes personal data",
    ),
    oauth: {
      google: oauthProvider("GOOGLE", "https://www.googleapis.com/oauth2/v3/certs", [
        "https://accounts.google.com",
        "accounts.google.com",
      ]),
      apple: oauthProvider("APPLE", "https://appleid.apple.com/auth/keys", ["https://appleid.apple.com"]),
    },
    limits: {
      loginPerIp: setting("RATE_LIMIT_LOGIN_PER_IP", int(1).default(20), "login attempts per IP per window"),
      loginFailuresPerAccountAndIp: setting(
        "RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_IP",
        int(1).default(10),
        "wrong passwords for one account from one address per window",
      ),
      loginFailuresPerAccount: setting(
        "RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT",
        int(1).default(100),
        "wrong passwords for one account from anywhere per window (a known device still signs in)",
      ),
      loginWindowSeconds: setting("RATE_LIMIT_LOGIN_WINDOW_SECONDS", int(1, 86_400).default(900), "login window"),
      signupPerIp: setting("RATE_LIMIT_SIGNUP_PER_IP", int(1).default(10), "signups per IP per window"),
      signupWindowSeconds: setting("RATE_LIMIT_SIGNUP_WINDOW_SECONDS", int(1, 86_400).default(3_600), "signup window"),
      forgotPerEmail: setting(
        "RATE_LIMIT_PASSWORD_FORGOT_PER_EMAIL",
        int(1).default(3),
        "reset emails per address per window",
      ),
      forgotWindowSeconds: setting(
        "RATE_LIMIT_PASSWORD_FORGOT_WINDOW_SECONDS",
        int(1, 86_400).default(3_600),
        "reset email window",
      ),
      verificationMailsPerAccount: setting(
        "RATE_LIMIT_VERIFICATION_EMAIL_PER_ACCOUNT",
        int(1).default(3),
        "verification emails (resends and email-change links) per account per window",
      ),
      verificationMailWindowSeconds: setting(
        "RATE_LIMIT_VERIFICATION_EMAIL_WINDOW_SECONDS",
        int(1, 86_400).default(3_600),
        "verification email window",
      ),
    },
  },
  devicesPerUser: setting(
    "DEVICES_PER_USER",
    int(1, 100).default(20),
    "devices kept per account; registering one more drops the least recently seen",
  ),
  relations: {
    maxPerUser: setting(
      "RELATIONS_MAX_PER_USER",
      int(1, 100_000).default(10_000),
      "blocks plus mutes one account can hold; one more is a 409 `relation_limit`",
    ),
    cacheTtlSeconds: setting(
      "RELATIONS_CACHE_TTL_SECONDS",
      int(60, 30 * 86_400).default(86_400),
      "how long a user's blocks and mutes stay cached in Redis (`relations:{userId}`) after a rebuild",
    ),
  },
  selfCacheTtlSeconds: setting(
    "SELF_CACHE_TTL_SECONDS",
    int(1, 3_600).default(60),
    "a user's cached `GET /v1/me` (their own changes drop it at once; others' follows may lag this long)",
  ),
  followPairCacheTtlSeconds: setting(
    "FOLLOW_PAIR_CACHE_TTL_SECONDS",
    int(1, 86_400).default(600),
    "a viewer's cached follow state with one person (`PublicUser.viewer`; follows between them drop it at once)",
  ),
  profileCacheTtlSeconds: setting(
    "PROFILE_CACHE_TTL_SECONDS",
    int(1, 86_400).default(300),
    "public profile cache in Redis",
  ),
  streakCacheTtlSeconds: setting(
    "STREAK_CACHE_TTL_SECONDS",
    int(60, 30 * 86_400).default(172_800),
    "`user:streak:{userId}` lifetime",
  ),

  generation: {
    workerToken: secret(
      "GPU_WORKER_TOKEN",
      z.string().min(24, "GPU_WORKER_TOKEN must be at least 24 characters"),
      "bearer token of the GPU workers on `/v1/internal/*` (≥ 24 chars)",
    ),
    dailyQuota: perTier(
      "GENERATION_DAILY_QUOTA",
      [0, Number.MAX_SAFE_INTEGER],
      [10, 100, 500],
      "generations per UTC day",
    ),
    priority: perTier("GENERATION_PRIORITY", [0, 1_000], [1, 5, 10], "queue priority (higher first)"),
    maxAttempts: setting("GENERATION_MAX_ATTEMPTS", int(1, 20).default(3), "tries before a job fails for good"),
    processingTimeoutSeconds: setting(
      "GENERATION_PROCESSING_TIMEOUT_SECONDS",
      int(10, 86_400).default(300),
      "a claimed job older than this is re-queued",
    ),
    requeueBatchJobs: setting(
      "GENERATION_REQUEUE_BATCH_JOBS",
      int(1, 5_000).default(200),
      "jobs per `generation-requeue` batch",
    ),
    models: setting("GENERATION_MODELS", list.default(["sdxl-turbo", "flux", "midjourney"]), "offered models"),
    defaultModel: setting(
      "GENERATION_DEFAULT_MODEL",
      z.string().min(1).default("sdxl-turbo"),
      "model when none is asked for",
    ),
    postFactsTtlSeconds: setting(
      "GENERATION_POST_FACTS_TTL_SECONDS",
      int(60, 30 * 86_400).default(7 * 86_400),
      "how long a completed generation's post-facing fields stay in Redis (`generation:post:{id}`) for posting it",
    ),
  },

  posts: {
    bannedWords: setting(
      "POST_BANNED_WORDS",
      list.default([]).transform((words) => words.map((w) => w.toLowerCase())),
      "comma-separated; a prompt with one starts `pending`",
    ),
    nsfwFlagThreshold: setting(
      "POST_NSFW_FLAG_THRESHOLD",
      num(0, 1).default(0.8),
      "generator NSFW score above which a post starts `flagged`",
    ),
    maxTags: setting("POST_MAX_TAGS", int(0, 50).default(10), "tags per post"),
    maxPinned: setting(
      "POST_MAX_PINNED",
      int(1, 10).default(3),
      "pinned posts per author; pinning one more is a 409 `pin_limit`",
    ),
    cacheTtlSeconds: setting(
      "POST_CACHE_TTL_SECONDS",
      int(1, 86_400).default(120),
      "a post's cached document in Redis (`post:doc:{id}`; every change to it drops the copy at once)",
    ),
    factsTtlSeconds: setting(
      "POST_FACTS_TTL_SECONDS",
      int(60, 30 * 86_400).default(7 * 86_400),
      "how long what never changes about a post (author, image) stays in Redis (`post:facts:{id}`) for votes and shares",
    ),
    viewWindowSeconds: setting(
      "POST_VIEW_WINDOW_SECONDS",
      int(60, 30 * 86_400).default(3_600),
      "a view counts once per viewer (user, or device when signed out) and post in this window",
    ),
    anonymousViewsPerIp: setting(
      "POST_ANONYMOUS_VIEWS_PER_IP",
      int(1, 100_000).default(20),
      "signed-out views one IP (or IPv6 /64) can add to a post per window, however many devices it claims",
    ),
    shareBaseUrl: setting(
      "SHARE_BASE_URL",
      withoutTrailingSlash.default("https://circle.example/p"),
      "prefix of `shareableUrl`",
    ),
  },
  // Content lifecycle (features/posts/lifecycle.ts); the limits take Mastodon's scheduled statuses as the anchor.
  scheduling: {
    maxPerUser: setting(
      "POST_SCHEDULED_MAX_PER_USER",
      int(1, 10_000).default(300),
      "scheduled posts one author can hold (Mastodon: 300); one more is a 409 `schedule_limit`",
    ),
    maxPerDay: setting(
      "POST_SCHEDULED_MAX_PER_DAY",
      int(1, 1_000).default(25),
      "scheduled posts one author can hold for one UTC day of `publishAt` (Mastodon: 25); one more is a 409 `schedule_daily_limit`",
    ),
    minLeadSeconds: setting(
      "POST_PUBLISH_MIN_LEAD_SECONDS",
      int(60, 86_400).default(300),
      "how far ahead `publishAt` must be at least (Mastodon: 5 minutes)",
    ),
    maxLeadDays: setting("POST_PUBLISH_MAX_LEAD_DAYS", int(1, 366).default(30), "how far ahead `publishAt` may be"),
    batchPosts: setting(
      "PUBLISH_SCHEDULED_BATCH_POSTS",
      int(1, 1_000).default(100),
      "due posts per `publish-scheduled` batch",
    ),
    fanoutBatchFollowers: setting(
      "POST_FANOUT_BATCH_FOLLOWERS",
      int(10, 5_000).default(500),
      "followers told of a new post per batch (one read and one bulk write each)",
    ),
    fanoutMaxAgeHours: setting(
      "POST_FANOUT_MAX_AGE_HOURS",
      int(1, 30 * 24).default(72),
      "followers are told of a post only this long after its publication (a post held longer is not news)",
    ),
  },
  tags: {
    countBatchPosts: setting(
      "TAG_COUNT_BATCH_POSTS",
      int(1, 5_000).default(500),
      "changed posts per `tag-counts` batch",
    ),
    trendingCacheTtlSeconds: setting(
      "TAG_TRENDING_CACHE_TTL_SECONDS",
      int(10, 86_400).default(600),
      "how long `GET /v1/tags/trending` is served from Redis (`tags:trending`) before it is computed again",
    ),
    trendingItems: setting("TAG_TRENDING_ITEMS", int(1, 100).default(20), "tags in `GET /v1/tags/trending`"),
    trendingMinPosts: setting(
      "TAG_TRENDING_MIN_POSTS",
      int(1, 10_000).default(3),
      "posts in the last 24 h a tag needs before it can trend",
    ),
    prefixCacheTtlSeconds: setting(
      "TAG_PREFIX_CACHE_TTL_SECONDS",
      int(1, 3_600).default(60),
      "how long one prefix's `GET /v1/tags?prefix=` answer is served from Redis",
    ),
  },
  media: {
    publicBaseUrl: setting(
      "MEDIA_PUBLIC_BASE_URL",
      withoutTrailingSlash.default("https://media.circle.example"),
      "where the media bucket is served (an R2 custom domain); an upload's `url` is this plus its key",
    ),
    imageMaxBytes: setting(
      "MEDIA_IMAGE_MAX_BYTES",
      int(1_024, 50 * 1_048_576).default(10 * 1_048_576),
      "largest image upload (posts, stories, messages, journal)",
    ),
    avatarMaxBytes: setting(
      "MEDIA_AVATAR_MAX_BYTES",
      int(1_024, 50 * 1_048_576).default(2 * 1_048_576),
      "largest avatar",
    ),
    videoMaxBytes: setting(
      "MEDIA_VIDEO_MAX_BYTES",
      int(1_024, 100 * 1_000_000).default(50 * 1_048_576),
      "largest video upload (reels); at most the Workers plan's request-body limit (100 MB on Free and Pro)",
    ),
    videoMaxSeconds: setting(
      "MEDIA_VIDEO_MAX_SECONDS",
      int(1, 3_600).default(60),
      "longest video (its `mvhd` duration)",
    ),
    maxDimension: setting(
      "MEDIA_MAX_DIMENSION_PX",
      int(16, 65_535).default(8_192),
      "widest or tallest image or video frame accepted, in pixels",
    ),
    pendingTtlHours: setting(
      "MEDIA_PENDING_TTL_HOURS",
      int(1, 24 * 7).default(24),
      "how long an upload may wait for its bytes before its record expires",
    ),
    uploadsPerWindow: setting(
      "MEDIA_UPLOADS_PER_WINDOW",
      int(1).default(100),
      "uploads one account may start per window",
    ),
    uploadWindowSeconds: setting("MEDIA_UPLOAD_WINDOW_SECONDS", int(1, 86_400).default(3_600), "upload window"),
    s3: {
      endpoint: setting(
        "MEDIA_S3_ENDPOINT",
        withoutTrailingSlash.optional(),
        "R2's S3 API (`https://<account>.r2.cloudflarestorage.com`) for runtimes without the MEDIA_BUCKET binding (Deno); unset there: uploads answer 503",
      ),
      bucket: setting("MEDIA_S3_BUCKET", z.string().min(1).default("circle-media"), "bucket name on the S3 API"),
      region: setting("MEDIA_S3_REGION", z.string().min(1).default("auto"), "SigV4 region (`auto` for R2)"),
      accessKeyId: secret("MEDIA_S3_ACCESS_KEY_ID", z.string().min(1).optional(), "R2 API token's access key id"),
      secretAccessKey: secret(
        "MEDIA_S3_SECRET_ACCESS_KEY",
        z.string().min(1).optional(),
        "R2 API token's secret access key",
      ),
    },
    avatarSyncBatchDocs: setting(
      "AVATAR_SYNC_BATCH_DOCS",
      int(1, 10_000).default(500),
      "posts and comments per `avatar-sync` batch that get a user's new avatar",
    ),
    avatarSyncSettleSeconds: setting(
      "AVATAR_SYNC_SETTLE_SECONDS",
      int(0, 86_400).default(300),
      "an avatar change stays queued this long after it was made, so posts written by requests that read the old one are caught",
    ),
  },
  feeds: {
    newCacheTtlSeconds: setting("FEED_NEW_CACHE_TTL_SECONDS", int(1, 3_600).default(30), "cached first page of `new`"),
    trendingCacheTtlSeconds: setting(
      "FEED_TRENDING_CACHE_TTL_SECONDS",
      int(1, 3_600).default(60),
      "cached first page of `trending`",
    ),
    hotCacheTtlSeconds: setting("FEED_HOT_CACHE_TTL_SECONDS", int(1, 3_600).default(60), "cached first page of `hot`"),
    followingCacheTtlSeconds: setting(
      "FEED_FOLLOWING_CACHE_TTL_SECONDS",
      int(1, 3_600).default(60),
      "a viewer's cached first page of `following`",
    ),
  },
  comments: {
    cacheTtlSeconds: setting(
      "COMMENTS_CACHE_TTL_SECONDS",
      int(1, 3_600).default(120),
      "a post's cached first page of comments (every change to its comments drops it at once)",
    ),
    ownHiddenTtlSeconds: setting(
      "COMMENTS_OWN_HIDDEN_TTL_SECONDS",
      int(60, 365 * 86_400).default(30 * 86_400),
      "how long a post remembers who has comments only they can see (they bypass its cached page)",
    ),
    repliesPerThread: setting(
      "COMMENT_REPLIES_PER_THREAD",
      int(1, 500).default(50),
      "replies shown under a top-level comment",
    ),
    factsTtlSeconds: setting(
      "COMMENT_FACTS_TTL_SECONDS",
      int(60, 30 * 86_400).default(7 * 86_400),
      "how long what never changes about a comment (post, thread, author) stays in Redis (`comment:facts:{id}`) for replies and reports",
    ),
  },
  votes: {
    dailyQuota: perTier("VOTE_DAILY_QUOTA", [0, Number.MAX_SAFE_INTEGER], [50, 200, 1_000], "votes per UTC day"),
    fraudFlagThreshold: setting(
      "VOTE_FRAUD_FLAG_THRESHOLD",
      num(0, 1).default(0.7),
      "fraud score at which a vote is flagged",
    ),
    accountsPerIp: setting("VOTE_FRAUD_ACCOUNTS_PER_IP", int(1).default(3), "accounts one IP explains per day"),
    accountsPerDevice: setting("VOTE_FRAUD_ACCOUNTS_PER_DEVICE", int(1).default(2), "accounts one device explains"),
    review: {
      windowDays: setting(
        "FRAUD_REVIEW_WINDOW_DAYS",
        int(1, 90).default(30),
        "how far back settlement's fraud review looks (sessions, votes per author, addresses)",
      ),
      youngAccountDays: setting(
        "FRAUD_YOUNG_ACCOUNT_DAYS",
        int(0, 365).default(14),
        "accounts younger than this (or without posts) are weak: address and ring signals apply to them",
      ),
      ringMinAccounts: setting(
        "FRAUD_RING_MIN_ACCOUNTS",
        int(2, 1_000).default(3),
        "weak accounts voting (almost) only for one author that make a ring",
      ),
      ringMinVotes: setting(
        "FRAUD_RING_MIN_VOTES",
        int(1, 1_000).default(2),
        "votes in the window before a weak account can count as a one-author voter (a newcomer's first vote never does)",
      ),
      ringAuthorShare: setting(
        "FRAUD_RING_AUTHOR_SHARE",
        num(0.5, 1).default(0.9),
        "share of a voter's recent votes going to one author that makes them a one-author voter",
      ),
    },
    deviceWindowDays: setting(
      "VOTE_FRAUD_DEVICE_WINDOW_DAYS",
      int(1, 365).default(30),
      "how long `fraud:device:{id}` remembers voters",
    ),
    counterTtlSeconds: setting(
      "POST_VOTES_COUNTER_TTL_SECONDS",
      int(60).default(86_400),
      "`post:votes:{postId}` lifetime",
    ),
    countersBatchPosts: setting("COUNTERS_BATCH_POSTS", int(1, 5_000).default(500), "posts per `counters` job batch"),
    votedCacheMax: setting(
      "VOTED_CACHE_MAX",
      int(100, 1_000_000).default(20_000),
      "a user's voted posts cached in Redis (`voted:{userId}`); beyond this the oldest are looked up in MongoDB",
    ),
    votedCacheTtlSeconds: setting(
      "VOTED_CACHE_TTL_SECONDS",
      int(60, 30 * 86_400).default(7 * 86_400),
      "how long a rebuilt `voted:{userId}` set lives",
    ),
    signalRetentionDays: setting(
      "VOTE_SIGNAL_RETENTION_DAYS",
      int(1, 3_650).default(90),
      "after this, a vote keeps no IP hash, device or session id (the vote itself stays)",
    ),
    signalRetentionBatchVotes: setting(
      "VOTE_SIGNAL_RETENTION_BATCH_VOTES",
      int(1, 50_000).default(2_000),
      "votes per `vote-signal-retention` batch",
    ),
  },
  ranking: {
    weights: {
      vote: setting("RANK_WEIGHT_VOTE", num(0).default(1), "engagement weight of a vote"),
      comment: setting("RANK_WEIGHT_COMMENT", num(0).default(2), "engagement weight of a comment"),
      share: setting("RANK_WEIGHT_SHARE", num(0).default(3), "engagement weight of a share"),
      view: setting("RANK_WEIGHT_VIEW", num(0).default(0.05), "engagement weight of a view"),
    },
    trendingGravity: setting("RANK_TRENDING_GRAVITY", num(0.1, 5).default(1.5), "trending decay exponent"),
    trendingAgeOffsetHours: setting("RANK_TRENDING_AGE_OFFSET_HOURS", num(0, 48).default(2), "trending age offset"),
    hotTimeScaleSeconds: setting(
      "RANK_HOT_TIME_SCALE_SECONDS",
      int(600, 30 * 86_400).default(45_000),
      "hot: a post needs 10× the engagement to rank with one this much newer (Reddit's 45,000 s)",
    ),
    windowHours: setting(
      "TRENDING_WINDOW_HOURS",
      int(1, 24 * 365).default(72),
      "the trending job re-decays posts younger than this (engagement moves rescore a post at any age)",
    ),
    batchPosts: setting("TRENDING_BATCH_POSTS", int(1, 5_000).default(500), "posts per `trending` job batch"),
  },

  notifications: {
    cacheTtlSeconds: setting(
      "NOTIFICATIONS_CACHE_TTL_SECONDS",
      int(1, 3_600).default(60),
      "a user's cached inbox first page and unread count (every change to the inbox drops them at once)",
    ),
    aggregationWindowHours: setting(
      "NOTIFICATION_AGGREGATION_WINDOW_HOURS",
      int(1, 24 * 30).default(12),
      "events join a group opened at most this long ago",
    ),
    newAccountDays: setting(
      "NOTIFICATION_NEW_ACCOUNT_DAYS",
      int(0, 365).default(7),
      'accounts younger than this are "new" for notification policies',
    ),
  },
  links: {
    appBaseUrl: setting(
      "APP_LINK_BASE_URL",
      withoutTrailingSlash.default("https://circle.example"),
      "the app's universal-link base: mails link to `/verify-email`, `/reset-password`, `/settings/security` under it",
    ),
  },
  providerTimeoutMs: setting(
    "PROVIDER_TIMEOUT_MS",
    int(100, 60_000).default(10_000),
    "per call to an outside provider (Resend, FCM and its token endpoint)",
  ),
  mail: {
    resendApiUrl: setting("RESEND_API_URL", withoutTrailingSlash.default("https://api.resend.com"), "Resend API base"),
    resendApiKey: secret(
      "RESEND_API_KEY",
      z.string().min(1).optional(),
      "Resend API key (`re_…`, sending access); unset: mail waits in `email_outbox`, unsent",
    ),
    from: setting(
      "EMAIL_FROM",
      mailbox.default("Circle <no-reply@circle.example>"),
      "sender (a domain verified in Resend)",
    ),
    maxAttempts: setting("EMAIL_MAX_ATTEMPTS", int(1, 20).default(8), "sends tried before a message is `failed`"),
    retryBaseSeconds: setting(
      "EMAIL_RETRY_BASE_SECONDS",
      int(1, 3_600).default(30),
      "delay after the first failed send; doubles per attempt (or the provider's Retry-After when longer)",
    ),
    retryMaxSeconds: setting(
      "EMAIL_RETRY_MAX_SECONDS",
      int(1, 6 * 3_600).default(3_600),
      "longest delay between sends",
    ),
    sweepGraceSeconds: setting(
      "EMAIL_SWEEP_GRACE_SECONDS",
      int(0, 3_600).default(60),
      "a new message is left to its immediate send this long before the `email-delivery` sweep takes it",
    ),
    sweepBatchMessages: setting("EMAIL_SWEEP_BATCH_MESSAGES", int(1, 500).default(50), "messages per sweep batch"),
    retentionDays: setting(
      "EMAIL_OUTBOX_RETENTION_DAYS",
      int(1, 365).default(14),
      "how long sent and failed messages stay in `email_outbox` (without their link tokens) for debugging",
    ),
  },
  push: {
    fcmApiUrl: setting("FCM_API_URL", withoutTrailingSlash.default("https://fcm.googleapis.com"), "FCM HTTP v1 base"),
    serviceAccount: secret(
      "FCM_SERVICE_ACCOUNT_JSON",
      serviceAccountJson,
      "Firebase service-account key file (JSON or base64 of it) with FCM send rights; unset: no pushes",
    ),
    maxPerUserPerHour: setting(
      "PUSH_MAX_PER_USER_PER_HOUR",
      int(1, 1_000).default(10),
      "pushes one account gets per UTC clock hour; the rest fold into one summary push in the next hour",
    ),
    maxAttempts: setting("PUSH_MAX_ATTEMPTS", int(1, 20).default(5), "sends tried while FCM is failing"),
    retryBaseSeconds: setting(
      "PUSH_RETRY_BASE_SECONDS",
      int(1, 3_600).default(30),
      "delay after a failed push; doubles per attempt (or FCM's Retry-After when longer)",
    ),
    sweepGraceSeconds: setting(
      "PUSH_SWEEP_GRACE_SECONDS",
      int(0, 3_600).default(60),
      "a new push is left to its immediate send this long before the `push-delivery` sweep takes it",
    ),
    sweepBatchUsers: setting("PUSH_SWEEP_BATCH_USERS", int(1, 1_000).default(100), "recipients per sweep batch"),
  },
  messaging: {
    maxMembers: setting(
      "MESSAGING_MAX_MEMBERS",
      int(2, 1_024).default(256),
      "most members a conversation can have (the creator included)",
    ),
    maxTextLength: setting("MESSAGE_MAX_TEXT_LENGTH", int(1, 20_000).default(4_000), "characters in one message"),
    editWindowSeconds: setting(
      "MESSAGE_EDIT_WINDOW_SECONDS",
      int(0, 7 * 86_400).default(900),
      "how long after sending a message its text can be edited (0: never)",
    ),
    unreadCountCap: setting(
      "MESSAGE_UNREAD_COUNT_CAP",
      int(1, 100_000).default(1_000),
      "unread messages counted per conversation (a badge shows the cap as “1000+”)",
    ),
    conversationCacheTtlSeconds: setting(
      "CONVERSATION_CACHE_TTL_SECONDS",
      int(10, 86_400).default(300),
      "how long a conversation's members, roles and timer stay cached in Redis (`conversation:{id}`)",
    ),
    socketTicketTtlSeconds: setting(
      "SOCKET_TICKET_TTL_SECONDS",
      int(5, 300).default(30),
      "how long a one-time WebSocket ticket can be redeemed",
    ),
    typingMinIntervalMs: setting(
      "TYPING_MIN_INTERVAL_MS",
      int(100, 60_000).default(2_000),
      "a socket's typing frames closer together than this are dropped",
    ),
    typingDroppedBeforeClose: setting(
      "TYPING_DROPPED_BEFORE_CLOSE",
      int(1, 10_000).default(50),
      "dropped typing frames after which a socket is closed (1008)",
    ),
    longPollMaxSeconds: setting(
      "MESSAGE_LONG_POLL_MAX_SECONDS",
      int(1, 60).default(25),
      "longest `waitSeconds` a catch-up read may hold (where Upstash pub/sub carries events)",
    ),
    upstashPubSub: setting(
      "REALTIME_UPSTASH_PUBSUB",
      z.enum(["auto", "on", "off"]).default("auto"),
      "publish conversation events to Upstash pub/sub (`auto`: where no Durable Object fans them out, i.e. Deno)",
    ),
    purgeBatchMessages: setting(
      "MESSAGE_PURGE_BATCH",
      int(1, 5_000).default(500),
      "expired disappearing messages deleted per `message-purge` batch",
    ),
  },
  stories: {
    ttlHours: setting("STORY_TTL_HOURS", int(1, 24 * 7).default(24), "how long a story is shown after posting"),
    maxCaptionLength: setting("STORY_MAX_CAPTION_LENGTH", int(1, 2_000).default(200), "characters in a caption"),
    maxActivePerUser: setting(
      "STORY_MAX_ACTIVE_PER_USER",
      int(1, 1_000).default(100),
      "live stories one account can have; one more is a 409 `story_limit`",
    ),
    trayMaxFollowing: setting(
      "STORY_TRAY_MAX_FOLLOWING",
      int(10, 10_000).default(1_000),
      "followed accounts the story tray looks at (most recently followed first)",
    ),
    purgeBatchStories: setting(
      "STORY_PURGE_BATCH",
      int(1, 5_000).default(500),
      "expired stories deleted (with their views) per `story-purge` batch",
    ),
  },
  liveVideo: {
    apiUrl: setting(
      "LIVE_VIDEO_API_URL",
      withoutTrailingSlash.default("https://api.cloudflare.com/client/v4"),
      "Cloudflare API base for Stream live inputs",
    ),
    accountId: setting(
      "LIVE_VIDEO_ACCOUNT_ID",
      z.string().min(1).optional(),
      "Cloudflare account id; live streams answer 503 until it and the token are set",
    ),
    apiToken: secret("LIVE_VIDEO_API_TOKEN", z.string().min(1).optional(), "Cloudflare API token with Stream:Edit"),
    playbackOrigin: setting(
      "LIVE_VIDEO_PLAYBACK_ORIGIN",
      withoutTrailingSlash.default("https://customer-unset.cloudflarestream.com"),
      "where viewers play streams: `https://customer-<code>.cloudflarestream.com`",
    ),
    recording: setting(
      "LIVE_VIDEO_RECORDING",
      z.enum(["off", "automatic"]).default("off"),
      "`automatic` keeps each broadcast as a Stream video",
    ),
    timeoutMs: setting("LIVE_VIDEO_TIMEOUT_MS", int(100, 60_000).default(5_000), "per call to the live-video API"),
  },
  streams: {
    maxTags: setting("STREAM_MAX_TAGS", int(0, 50).default(10), "tags per stream"),
    scheduleMaxDays: setting(
      "STREAM_SCHEDULE_MAX_DAYS",
      int(1, 365).default(90),
      "how far ahead a stream can be scheduled",
    ),
    scheduleGraceHours: setting(
      "STREAM_SCHEDULE_GRACE_HOURS",
      int(1, 24 * 30).default(24),
      "a scheduled stream not started this long after its time is cancelled by `stream-maintenance`",
    ),
    viewerLifetimeSeconds: setting(
      "STREAM_VIEWER_LIFETIME_SECONDS",
      int(5, 3_600).default(45),
      "a viewer counts while their last heartbeat is younger than this (apps beat every 15 s)",
    ),
    abandonAfterSeconds: setting(
      "STREAM_ABANDON_AFTER_SECONDS",
      int(30, 86_400).default(300),
      "a live stream whose hosts stopped heartbeating and whose encoder is not connected this long is ended",
    ),
    stateTtlSeconds: setting(
      "STREAM_STATE_TTL_SECONDS",
      int(600, 30 * 86_400).default(2 * 86_400),
      "how long a stream's live counters stay in Redis without a heartbeat",
    ),
    liveCacheTtlSeconds: setting(
      "STREAM_LIVE_CACHE_TTL_SECONDS",
      int(0, 300).default(5),
      "how long the ranked live directory (`streams:live`) is served from Redis before it is ranked again (0: off)",
    ),
    liveListMax: setting(
      "STREAM_LIVE_LIST_MAX",
      int(10, 10_000).default(500),
      "live streams `GET /v1/streams/live` ranks (newest started first beyond it)",
    ),
    maxCohosts: setting("STREAM_MAX_COHOSTS", int(0, 20).default(4), "co-hosts invited to one stream"),
    maxModerators: setting("STREAM_MAX_MODERATORS", int(0, 200).default(25), "chat moderators of one stream"),
    maxChatMutes: setting(
      "STREAM_MAX_CHAT_MUTES",
      int(1, 100_000).default(1_000),
      "viewers muted in one stream's chat",
    ),
    chatSlowModeSeconds: setting(
      "STREAM_CHAT_SLOW_MODE_SECONDS",
      int(0, 3_600).default(3),
      "a viewer sends one live-chat message per this many seconds (hosts and moderators are exempt; 0: off)",
    ),
    liveNoticeBatch: setting(
      "STREAM_LIVE_NOTICE_BATCH",
      int(10, 5_000).default(200),
      "followers told “X is live” per batch",
    ),
    maintenanceBatch: setting(
      "STREAM_MAINTENANCE_BATCH",
      int(1, 1_000).default(100),
      "streams `stream-maintenance` handles per step and batch",
    ),
  },
  flags: {
    localCacheTtlSeconds: setting(
      "FLAGS_LOCAL_CACHE_TTL_SECONDS",
      int(0, 600).default(10),
      "rule set kept in isolate memory",
    ),
    cacheTtlSeconds: setting("FLAGS_CACHE_TTL_SECONDS", int(1, 3_600).default(60), "`flags:all` lifetime"),
    userCacheTtlSeconds: setting(
      "FLAGS_USER_CACHE_TTL_SECONDS",
      int(1, 86_400).default(300),
      "`flags:user:{userId}` lifetime",
    ),
  },

  moderation: {
    reportThreshold: setting(
      "MODERATION_REPORT_THRESHOLD",
      num(0.1, 1_000).default(5),
      "summed report weight that hides content",
    ),
    newAccountDays: setting(
      "MODERATION_NEW_ACCOUNT_DAYS",
      int(0, 365).default(7),
      "authors younger than this get the lower threshold",
    ),
    newAccountThresholdFactor: setting(
      "MODERATION_NEW_ACCOUNT_THRESHOLD_FACTOR",
      num(0.05, 1).default(0.5),
      "threshold factor for new authors",
    ),
    reporterFullWeightDays: setting(
      "MODERATION_REPORTER_FULL_WEIGHT_DAYS",
      int(0, 365).default(30),
      "account age at which a reporter's weight stops growing",
    ),
    newReporterFactor: setting(
      "MODERATION_NEW_REPORTER_FACTOR",
      num(0, 1).default(0.2),
      "weight factor of a brand-new reporter, growing to 1 with age",
    ),
    autoHideMinWeight: setting(
      "MODERATION_AUTO_HIDE_MIN_WEIGHT",
      num(0, 10).default(0.75),
      "content is hidden at the threshold only if some open report weighs this much; else it waits for review",
    ),
    accuracyMinReports: setting(
      "MODERATION_ACCURACY_MIN_REPORTS",
      int(1, 1_000).default(5),
      "resolved reports before accuracy counts",
    ),
    reportsPerWindow: setting("MODERATION_REPORTS_PER_WINDOW", int(1).default(30), "reports per reporter per window"),
    reportWindowSeconds: setting(
      "MODERATION_REPORT_WINDOW_SECONDS",
      int(1, 7 * 86_400).default(3_600),
      "report window",
    ),
    appealWindowDays: setting(
      "MODERATION_APPEAL_WINDOW_DAYS",
      int(1, 365).default(20),
      "how long an action can be appealed",
    ),
    trust: {
      actionedPenalty: setting(
        "MODERATION_TRUST_PENALTY_ACTIONED",
        int(0, 100).default(10),
        "trust lost per punitive action",
      ),
      accurateReportBonus: setting(
        "MODERATION_TRUST_BONUS_ACCURATE_REPORT",
        int(0, 100).default(2),
        "trust gained per actioned report",
      ),
      dismissedReportPenalty: setting(
        "MODERATION_TRUST_PENALTY_DISMISSED_REPORT",
        int(0, 100).default(1),
        "trust lost per dismissed report",
      ),
      dailyGain: setting("MODERATION_TRUST_DAILY_GAIN", num(0, 10).default(0.5), "trust gained per clean active day"),
      gainCap: setting("MODERATION_TRUST_GAIN_CAP", int(0, 100).default(75), "clean activity raises trust up to this"),
      cleanDays: setting(
        "MODERATION_TRUST_CLEAN_DAYS",
        int(0, 365).default(30),
        "days without a sanction before trust grows",
      ),
    },
  },

  gems: {
    checkinReward: setting("CHECKIN_REWARD_GEMS", int(0, 10_000).default(5), "gems per daily check-in"),
    streakMilestones: setting("STREAK_MILESTONE_BONUSES", streakMilestones, "streak day → bonus gems"),
    perVote: setting("GEMS_PER_VOTE", int(1, 1_000).default(1), "settlement rate"),
    referralMultiplier: setting("REFERRAL_GEM_MULTIPLIER", int(1, 10).default(2), "multiplier in the referral window"),
    settlementDelaySeconds: setting(
      "SETTLEMENT_DELAY_SECONDS",
      int(0, 86_400).default(300),
      "votes settle after this delay",
    ),
    settlementBatchVotes: setting(
      "SETTLEMENT_BATCH_VOTES",
      int(1, 20_000).default(5_000),
      "votes per settlement batch",
    ),
    trendingBonus: setting("TRENDING_BONUS_GEMS", int(0, 10_000).default(25), "bonus for a trending run's top posts"),
    trendingBonusTopPosts: setting("TRENDING_BONUS_TOP_POSTS", int(0, 100).default(10), "how many top posts earn it"),
    referral: {
      bonus: setting("REFERRAL_BONUS_GEMS", int(0, 100_000).default(50), "referrer's bonus on validation"),
      windowHours: setting(
        "REFERRAL_BONUS_WINDOW_HOURS",
        int(1, 24 * 30).default(24),
        "how long the referrer's multiplier runs",
      ),
      validateOn: setting("REFERRAL_VALIDATE_ON", referralTriggers, "what shows a referred user active"),
      dailyCap: setting("REFERRAL_DAILY_CAP", int(1, 10_000).default(10), "validations per referrer per UTC day"),
      minAccountAgeHours: setting(
        "REFERRAL_MIN_ACCOUNT_AGE_HOURS",
        int(0, 24 * 90).default(72),
        "a referred account pays its referrer only once this old",
      ),
      minActiveDays: setting(
        "REFERRAL_MIN_ACTIVE_DAYS",
        int(1, 2).default(2),
        "distinct UTC days a referred account must be active on (signup day included) before it pays",
      ),
    },
    leaderboard: {
      retainHours: setting(
        "LEADERBOARD_RETAIN_HOURS",
        int(1, 24 * 30).default(24),
        "how long a finished day's or week's board is kept",
      ),
      repairWindowHours: setting(
        "LEADERBOARD_REPAIR_WINDOW_HOURS",
        int(1, 24).default(2),
        "how far back reconciliation re-adds earnings a crash kept off today's boards",
      ),
      pageCacheTtlSeconds: setting(
        "LEADERBOARD_PAGE_CACHE_TTL_SECONDS",
        int(1, 600).default(30),
        "how long the people on top of a board are served from Redis (the caller's own rank is always fresh)",
      ),
    },
    reconcile: {
      lookbackHours: setting(
        "RECONCILE_LOOKBACK_HOURS",
        int(1, 24 * 90).default(48),
        "users whose ledger moved within this are checked",
      ),
      pendingGraceSeconds: setting(
        "RECONCILE_PENDING_GRACE_SECONDS",
        int(10, 86_400).default(120),
        "age before a pending entry counts as interrupted",
      ),
      usersPerCheck: setting("RECONCILE_USERS_PER_CHECK", int(1, 10_000).default(500), "users per balance-check batch"),
      pendingPerRun: setting(
        "RECONCILE_PENDING_PER_RUN",
        int(1, 100_000).default(1_000),
        "interrupted entries completed per run",
      ),
      transfersPerPage: setting(
        "RECONCILE_TRANSFERS_PER_PAGE",
        int(1, 10_000).default(500),
        "gift debits checked per page",
      ),
    },
  },
  shop: {
    catalog: setting("SHOP_CATALOG", jsonCatalog, "JSON array of shop items (unset: the built-in catalog)"),
    itemLockSeconds: setting("SHOP_ITEM_LOCK_SECONDS", int(1, 600).default(30), "per-user, per-SKU purchase lock"),
  },
  gifts: {
    platformFeeBasisPoints: setting(
      "GIFT_PLATFORM_FEE_PERCENT",
      // Basis points keep the fee math in integers (see giftFee).
      num(0, 99.99)
        .default(10)
        .transform((percent) => Math.round(percent * 100)),
      "platform's cut of a gift, 0–99.99 %, rounded down to whole gems",
    ),
    minGems: setting("GIFT_MIN_GEMS", int(1, 1_000_000).default(10), "smallest gift"),
    maxGems: setting("GIFT_MAX_GEMS", int(1, 1_000_000).default(10_000), "largest gift"),
  },
  idempotency: {
    ttlSeconds: setting(
      "IDEMPOTENCY_TTL_SECONDS",
      int(60, 7 * 86_400).default(86_400),
      "how long an answer is replayed",
    ),
    inFlightTtlSeconds: setting(
      "IDEMPOTENCY_IN_FLIGHT_TTL_SECONDS",
      int(5, 3_600).default(60),
      "how long a running request holds its key",
    ),
  },
  privacy: {
    exportPageItems: setting(
      "EXPORT_PAGE_ITEMS",
      int(10, 5_000).default(500),
      "documents `GET /v1/me/export` reads per page of a section (the first page of every section is read at once)",
    ),
    deletionRecountThreads: setting(
      "ACCOUNT_DELETION_RECOUNT_THREADS",
      int(10, 10_000).default(1_000),
      "threads (posts, and comments replied to) of a deleted account's comments recounted per pass (`DELETE /v1/me` makes one, the `account-deletion` job the rest)",
    ),
    deletionSweepDelaySeconds: setting(
      "ACCOUNT_DELETION_SWEEP_DELAY_SECONDS",
      int(0, 86_400).default(60),
      "a deletion still unsettled this long after `DELETE /v1/me` is finished by the `account-deletion` job",
    ),
    deletionSweepBatchAccounts: setting(
      "ACCOUNT_DELETION_BATCH_ACCOUNTS",
      int(1, 1_000).default(20),
      "accounts per `account-deletion` batch",
    ),
    erasureBatchAccounts: setting(
      "ERASURE_BATCH_ACCOUNTS",
      int(1, 1_000).default(50),
      "accounts per `account-erasure` batch",
    ),
  },

  legal: {
    termsVersion: setting(
      "LEGAL_TERMS_VERSION",
      z.string().min(1).max(40).default("1.0"),
      "current terms of service version: signup must accept it, and a new one makes `GET /v1/me` ask for consent",
    ),
    privacyVersion: setting(
      "LEGAL_PRIVACY_VERSION",
      z.string().min(1).max(40).default("1.0"),
      "current privacy policy version, as for the terms",
    ),
  },
  journal: {
    maxTags: setting("JOURNAL_MAX_TAGS", int(1, 100).default(20), "tags per journal entry"),
    maxAttachments: setting(
      "JOURNAL_MAX_ATTACHMENTS",
      int(0, 50).default(10),
      "attachments (the caller's own completed generations) per journal entry",
    ),
    readingWordsPerMinute: setting(
      "JOURNAL_READING_WORDS_PER_MINUTE",
      int(50, 1_000).default(200),
      "reading speed behind an entry's `readingTimeSeconds`",
    ),
    restoreDays: setting(
      "JOURNAL_RESTORE_DAYS",
      int(1, 365).default(30),
      "a deleted entry can be restored this long; the `journal-purge` job removes it after",
    ),
    cacheTtlSeconds: setting(
      "JOURNAL_CACHE_TTL_SECONDS",
      int(60, 7 * 86_400).default(86_400),
      "cached mood calendars (per month), writing streaks and tag vocabularies; every write supersedes them at once",
    ),
    trendsCacheTtlSeconds: setting(
      "JOURNAL_TRENDS_CACHE_TTL_SECONDS",
      int(10, 86_400).default(900),
      "cached mood trends (a write supersedes them at once)",
    ),
    purgeBatchEntries: setting(
      "JOURNAL_PURGE_BATCH_ENTRIES",
      int(1, 10_000).default(500),
      "deleted entries removed per `journal-purge` batch",
    ),
    insightsBatchUsers: setting(
      "JOURNAL_INSIGHTS_BATCH_USERS",
      int(1, 5_000).default(200),
      "users per `journal-insights` batch",
    ),
  },
  billing: {
    productsPro: setting(
      "BILLING_PRODUCTS_PRO",
      list.default(["circle.pro.monthly", "circle.pro.yearly"]),
      "App Store / Google Play product ids and Stripe price ids (or lookup keys) that grant pro",
    ),
    productsPremium: setting(
      "BILLING_PRODUCTS_PREMIUM",
      list.default(["circle.premium.monthly", "circle.premium.yearly"]),
      "App Store / Google Play product ids and Stripe price ids (or lookup keys) that grant premium",
    ),
    webGraceDays: setting(
      "BILLING_WEB_GRACE_DAYS",
      int(0, 60).default(7),
      "how long a web subscriber keeps access while Stripe retries a failed payment",
    ),
    pendingGraceSeconds: setting(
      "BILLING_PENDING_GRACE_SECONDS",
      int(5, 3_600).default(60),
      "a notification still unsettled after this is finished by its next delivery or the `billing-sweep` job",
    ),
    sweepBatch: setting(
      "BILLING_SWEEP_BATCH",
      int(1, 1_000).default(100),
      "notifications and accounts per sweep batch",
    ),
    providerTimeoutMs: setting(
      "BILLING_PROVIDER_TIMEOUT_MS",
      int(100, 30_000).default(8_000),
      "per call to Google (OAuth, Play Developer API) and Stripe",
    ),
    appStore: {
      bundleId: setting(
        "APPSTORE_BUNDLE_ID",
        z.string().default(""),
        "the app's bundle id; App Store notifications are refused (503) until set",
      ),
      appAppleId: setting(
        "APPSTORE_APP_APPLE_ID",
        int(1).optional(),
        "the app's Apple ID, checked on Production notifications when set",
      ),
      environments: setting(
        "APPSTORE_ENVIRONMENTS",
        list.default(["Production"]),
        "accepted notification environments (`Production`, `Sandbox`)",
      ),
      rootCertificates: setting(
        "APPSTORE_ROOT_CERTIFICATES",
        base64Certificates,
        "trusted roots of the signing chain: base64 DER, comma-separated; `AppleRootCA-G3` is Apple's root",
      ),
    },
    play: {
      packageName: setting(
        "PLAY_PACKAGE_NAME",
        z.string().default(""),
        "the app's package name; Play notifications are refused (503) until set",
      ),
      pushAudience: setting(
        "PLAY_PUSH_AUDIENCE",
        z.string().default(""),
        "the audience set on the Pub/Sub push subscription (usually this endpoint's URL)",
      ),
      pushServiceAccount: setting(
        "PLAY_PUSH_SERVICE_ACCOUNT",
        z.string().default(""),
        "the service account the push subscription authenticates as (the token's `email`)",
      ),
      pushJwksUrl: setting(
        "PLAY_PUSH_JWKS_URL",
        url.default("https://www.googleapis.com/oauth2/v3/certs"),
        "Google's signing keys for push tokens",
      ),
      pushIssuers: setting(
        "PLAY_PUSH_ISSUERS",
        list.default(["https://accounts.google.com", "accounts.google.com"]),
        "accepted push token `iss` values",
      ),
      serviceAccount: secret(
        "PLAY_SERVICE_ACCOUNT_JSON",
        playServiceAccountJson,
        "key file (JSON) of the service account that reads and acknowledges purchases (Play Developer API)",
      ),
      apiUrl: setting(
        "PLAY_API_URL",
        withoutTrailingSlash.default("https://androidpublisher.googleapis.com/androidpublisher/v3"),
        "Play Developer API base",
      ),
    },
    stripe: {
      secretKey: secret(
        "STRIPE_SECRET_KEY",
        z.string().min(1).optional(),
        "API key for Checkout and subscription look-ups; web checkout is off until set",
      ),
      webhookSecrets: secret(
        "STRIPE_WEBHOOK_SECRETS",
        list.default([]),
        "endpoint signing secrets (`whsec_…`), comma-separated: two while a rolled secret still signs",
      ),
      toleranceSeconds: setting(
        "STRIPE_WEBHOOK_TOLERANCE_SECONDS",
        int(1, 3_600).default(300),
        "how old a signature's timestamp may be",
      ),
      liveMode: setting("STRIPE_LIVE_MODE", bool.default(true), "accept live-mode events (`false`: test-mode events)"),
      apiUrl: setting("STRIPE_API_URL", withoutTrailingSlash.default("https://api.stripe.com"), "Stripe API base"),
      pricePro: setting("STRIPE_PRICE_PRO", z.string().default(""), "the price web checkout sells for pro"),
      pricePremium: setting("STRIPE_PRICE_PREMIUM", z.string().default(""), "the price web checkout sells for premium"),
      successUrl: setting(
        "STRIPE_CHECKOUT_SUCCESS_URL",
        url.default("https://circle.example/billing/success"),
        "where Checkout sends the buyer after paying",
      ),
      cancelUrl: setting(
        "STRIPE_CHECKOUT_CANCEL_URL",
        url.default("https://circle.example/billing/cancel"),
        "where Checkout sends a buyer who backs out",
      ),
    },
  },

  owed: {
    afterResponse: setting(
      "OWED_EFFECTS_AFTER_RESPONSE",
      bool.default(true),
      "carry out what a write owes (notifications, totals, cache drops) right after its answer; `false` leaves it all to the `owed-effects` sweep",
    ),
    sweepGraceSeconds: setting(
      "OWED_EFFECTS_SWEEP_GRACE_SECONDS",
      int(0, 3_600).default(30),
      "a new owed record is left to its request's after-response run this long before the `owed-effects` sweep takes it",
    ),
    claimSeconds: setting(
      "OWED_EFFECTS_CLAIM_SECONDS",
      int(5, 3_600).default(60),
      "how long a run holds an owed record before another run may take it over (a run that died lets go)",
    ),
    maxAttempts: setting(
      "OWED_EFFECTS_MAX_ATTEMPTS",
      int(1, 100).default(10),
      "runs of one owed record that fail before it is marked `failed` and reported",
    ),
    retryBaseSeconds: setting(
      "OWED_EFFECTS_RETRY_BASE_SECONDS",
      int(1, 3_600).default(30),
      "delay after a failed run of an owed record; doubles per attempt (at most an hour)",
    ),
    sweepBatch: setting("OWED_EFFECTS_SWEEP_BATCH", int(1, 1_000).default(100), "owed records per sweep batch"),
    retentionHours: setting(
      "OWED_EFFECTS_RETENTION_HOURS",
      int(1, 24 * 30).default(24),
      "how long done and failed owed records stay in `owed_effects` (for debugging)",
    ),
  },

  jobs: {
    timeBudgetMs: setting(
      "JOB_TIME_BUDGET_MS",
      int(1_000, 15 * 60_000).default(25_000),
      "a job run stops starting batches after this",
    ),
    leaseSeconds: setting(
      "JOB_LEASE_SECONDS",
      int(10, 3_600).default(120),
      "Redis lease per job (must exceed the budget)",
    ),
  },
} as const;

type Leaf = Setting<z.ZodType>;
type ConfigOf<T> = T extends Setting<infer S> ? z.output<S> : { -readonly [K in keyof T]: ConfigOf<T[K]> };

type ParsedConfig = ConfigOf<typeof configSpec>;

/** The parsed configuration; the shop catalog is resolved against the offered models. */
export type Config = Omit<ParsedConfig, "shop"> & {
  shop: Omit<ParsedConfig["shop"], "catalog"> & { catalog: ShopItemConfig[] };
};

export type OAuthProvider = keyof Config["auth"]["oauth"];
export type RankingConstants = Config["ranking"];

export class ConfigError extends Error {
  override name = "ConfigError";
}

function isSetting(node: unknown): node is Leaf {
  return typeof node === "object" && node !== null && "env" in node && "schema" in node;
}

/** Every setting with its path in the tree, depth-first in declaration order. */
export function allSettings(): { path: string; setting: Leaf }[] {
  const out: { path: string; setting: Leaf }[] = [];
  const walk = (node: unknown, path: string[]) => {
    if (isSetting(node)) out.push({ path: path.join("."), setting: node });
    else for (const [key, child] of Object.entries(node as Record<string, unknown>)) walk(child, [...path, key]);
  };
  walk(configSpec, []);
  return out;
}

/** The names of every setting, for README and the dev script. */
export const settingNames = allSettings().map((s) => s.setting.env);

/** Parses the environment; throws ConfigError listing every bad setting by name. */
export function loadConfig(env: Record<string, unknown>): Config {
  const problems: string[] = [];
  const build = (node: unknown): unknown => {
    if (isSetting(node)) {
      const raw = env[node.env];
      const parsed = node.schema.safeParse(raw === "" || raw === null ? undefined : raw);
      if (parsed.success) return parsed.data;
      for (const issue of parsed.error.issues) {
        problems.push(`${node.env}: ${raw === undefined || raw === "" ? "required" : issue.message}`);
      }
      return undefined;
    }
    return Object.fromEntries(Object.entries(node as Record<string, unknown>).map(([k, v]) => [k, build(v)]));
  };
  const parsed = build(configSpec) as ParsedConfig;
  if (problems.length > 0) throw new ConfigError(`Invalid configuration — ${problems.join("; ")}`);
  // Resend remembers an Idempotency-Key for 24 hours: every retry of a message must fall inside that window,
  // or a send that crashed before it was marked could go out twice.
  if (mailRetrySpanSeconds(parsed.mail) >= 23 * 3_600) {
    throw new ConfigError(
      "Invalid configuration — EMAIL_MAX_ATTEMPTS, EMAIL_RETRY_BASE_SECONDS, EMAIL_RETRY_MAX_SECONDS: retries must end within 23 hours",
    );
  }
  if (parsed.gifts.minGems > parsed.gifts.maxGems) {
    throw new ConfigError("Invalid configuration — GIFT_MIN_GEMS: must not exceed GIFT_MAX_GEMS");
  }
  const models = parsed.generation.models;
  return {
    ...parsed,
    shop: {
      ...parsed.shop,
      // The default catalog sells only the configured models; an explicit one must not name others.
      catalog: checkedCatalog(
        parsed.shop.catalog ??
          DEFAULT_SHOP_CATALOG.filter((i) => i.kind !== "model_unlock" || models.includes(i.model)),
        models,
      ),
    },
  };
}

/** A model unlock must name a model that generation offers; a gift card must not be worth more than it costs. */
function checkedCatalog(catalog: ShopItemConfig[], models: string[]): ShopItemConfig[] {
  const unknown = catalog.filter((i) => i.kind === "model_unlock" && !models.includes(i.model)).map((i) => i.sku);
  if (unknown.length > 0) {
    throw new ConfigError(
      `Invalid configuration — SHOP_CATALOG: model unlocks name models not in GENERATION_MODELS: ${unknown.join(", ")}`,
    );
  }
  const overvalued = catalog.filter((i) => i.kind === "gift_card" && i.value > i.price).map((i) => i.sku);
  if (overvalued.length > 0) {
    throw new ConfigError(
      `Invalid configuration — SHOP_CATALOG: gift cards worth more than their price: ${overvalued.join(", ")}`,
    );
  }
  return catalog;
}

/** Seconds from a message's first send to its last retry under these settings. */
export function mailRetrySpanSeconds(mail: {
  maxAttempts: number;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
}): number {
  let total = 0;
  for (let attempt = 1; attempt < mail.maxAttempts; attempt++) {
    total += Math.min(mail.retryBaseSeconds * 2 ** (attempt - 1), mail.retryMaxSeconds);
  }
  return total;
}
