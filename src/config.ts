import { z } from "zod";

/**
 * Every setting and tunable of the API, parsed once per isolate from the environment (Worker bindings,
 * Deno.env, or process.env in scripts). A missing or malformed setting fails with a message naming it.
 */

const bool = z.union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1")]);
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

// Store and gifts: the catalog's shape. Prices are in gems; SKUs are stable ids clients send back.
const Sku = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, "lowercase letters, digits, '_', '.', '-'");
const StoreItemBase = { sku: Sku, price: int(1, 1_000_000), title: z.string().min(1).max(80) };
const StoreItemConfig = z.discriminatedUnion("kind", [
  z.object({ ...StoreItemBase, kind: z.literal("model_unlock"), model: z.string().min(1) }).strict(),
  z.object({ ...StoreItemBase, kind: z.literal("ad_free_pass"), days: int(1, 366) }).strict(),
  z.object({ ...StoreItemBase, kind: z.literal("cosmetic"), theme: z.string().min(1).max(40) }).strict(),
  z.object({ ...StoreItemBase, kind: z.literal("gift_card"), value: int(1, 1_000_000) }).strict(),
]);
const StoreCatalogConfig = z
  .array(StoreItemConfig)
  .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, "SKUs must be unique");
export type StoreItemConfig = z.output<typeof StoreItemConfig>;

const DEFAULT_STORE_CATALOG: StoreItemConfig[] = [
  { sku: "model.flux", kind: "model_unlock", price: 500, title: "Unlock Flux", model: "flux" },
  { sku: "model.midjourney", kind: "model_unlock", price: 1_000, title: "Unlock Midjourney", model: "midjourney" },
  { sku: "ad_free.7d", kind: "ad_free_pass", price: 100, title: "Ad-free for 7 days", days: 7 },
  { sku: "ad_free.30d", kind: "ad_free_pass", price: 350, title: "Ad-free for 30 days", days: 30 },
  { sku: "theme.neon", kind: "cosmetic", price: 150, title: "Neon profile theme", theme: "neon" },
  { sku: "theme.sunset", kind: "cosmetic", price: 150, title: "Sunset profile theme", theme: "sunset" },
  // The gap between price and value is the platform's cut, as with gifts (GIFT_PLATFORM_FEE_PERCENT).
  { sku: "gift_card.100", kind: "gift_card", price: 110, title: "Gift card: 100 gems", value: 100 },
];

const EnvSchema = z.object({
  ENVIRONMENT: z.enum(["development", "test", "production"]).default("development"),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  PUBLIC_BASE_URL: z.url().default("http://127.0.0.1:8787"),

  // Stores
  UPSTASH_REDIS_REST_URL: z.url(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1),
  DATA_API_URL: z.url(),
  DATA_API_KEY: z.string().min(1),
  DATA_API_DATA_SOURCE: z.string().min(1).default("circle"),
  MONGO_DATABASE: z.string().min(1).default("circle"),
  CLICKHOUSE_URL: z.url(),
  CLICKHOUSE_USER: z.string().min(1).default("default"),
  CLICKHOUSE_PASSWORD: z.string().default(""),
  CLICKHOUSE_DATABASE: z.string().min(1).default("default"),
  STORE_TIMEOUT_MS: int(100, 60_000).default(5_000),
  DATA_API_READ_RETRIES: int(0, 5).default(2),
  HEALTH_CHECK_TIMEOUT_MS: int(100, 10_000).default(1_500),
  STORE_UNAVAILABLE_RETRY_AFTER_SECONDS: int(1, 3_600).default(5),

  // HTTP
  CORS_ORIGINS: list.default(["*"]),
  SERVER_TIMING: bool.default(true),
  IP_HASH_SALT: z.string().min(16, "IP_HASH_SALT must be at least 16 characters"),

  // Global per-IP rate limit (sliding window, rate:api:{ip})
  RATE_LIMIT_API_MAX_REQUESTS: int(1).default(300),
  RATE_LIMIT_API_WINDOW_SECONDS: int(1, 3_600).default(60),
  RATE_LIMIT_FAIL_MODE: z.enum(["open", "closed"]).default("open"),

  // Analytics
  ANALYTICS_MAX_EVENT_AGE_HOURS: int(1, 24 * 30).default(168),
  ANALYTICS_MAX_CLOCK_SKEW_SECONDS: int(0, 86_400).default(3_600),
  ANALYTICS_FLUSH_BATCH_SIZE: int(1, 10_000).default(10_000),
  ANALYTICS_DAU_MAX_RANGE_DAYS: int(1, 3_660).default(366),

  // Identity
  JWT_SECRET: z.string().min(32, "JWT_SECRET must be at least 32 characters"),
  JWT_ISSUER: z.string().min(1).default("circle-api"),
  JWT_AUDIENCE: z.string().min(1).default("circle-app"),
  ACCESS_TOKEN_TTL_SECONDS: int(60, 3_600).default(900),
  REFRESH_TOKEN_TTL_DAYS: int(1, 365).default(30),
  PASSWORD_PBKDF2_ITERATIONS: int(10_000, 100_000).default(100_000),
  EMAIL_VERIFICATION_TTL_HOURS: int(1, 24 * 14).default(48),
  PASSWORD_RESET_TTL_MINUTES: int(5, 24 * 60).default(30),
  ACCOUNT_DELETION_GRACE_DAYS: int(0, 365).default(30),
  PROFILE_CACHE_TTL_SECONDS: int(1, 86_400).default(300),
  OAUTH_GOOGLE_JWKS_URL: z.url().default("https://www.googleapis.com/oauth2/v3/certs"),
  OAUTH_GOOGLE_ISSUERS: list.default(["https://accounts.google.com", "accounts.google.com"]),
  OAUTH_GOOGLE_CLIENT_IDS: list.default([]),
  OAUTH_APPLE_JWKS_URL: z.url().default("https://appleid.apple.com/auth/keys"),
  OAUTH_APPLE_ISSUERS: list.default(["https://appleid.apple.com"]),
  OAUTH_APPLE_CLIENT_IDS: list.default([]),
  // Auth rate limits (sliding windows)
  RATE_LIMIT_LOGIN_PER_IP: int(1).default(20),
  RATE_LIMIT_LOGIN_PER_ACCOUNT: int(1).default(10),
  RATE_LIMIT_LOGIN_WINDOW_SECONDS: int(1, 86_400).default(900),
  RATE_LIMIT_SIGNUP_PER_IP: int(1).default(10),
  RATE_LIMIT_SIGNUP_WINDOW_SECONDS: int(1, 86_400).default(3_600),
  RATE_LIMIT_PASSWORD_FORGOT_PER_EMAIL: int(1).default(3),
  RATE_LIMIT_PASSWORD_FORGOT_WINDOW_SECONDS: int(1, 86_400).default(3_600),

  // Image generation
  GPU_WORKER_TOKEN: z.string().min(24, "GPU_WORKER_TOKEN must be at least 24 characters"),
  GENERATION_DAILY_QUOTA_FREE: int(0).default(10),
  GENERATION_DAILY_QUOTA_PRO: int(0).default(100),
  GENERATION_DAILY_QUOTA_PREMIUM: int(0).default(500),
  GENERATION_PRIORITY_FREE: int(0, 1_000).default(1),
  GENERATION_PRIORITY_PRO: int(0, 1_000).default(5),
  GENERATION_PRIORITY_PREMIUM: int(0, 1_000).default(10),
  GENERATION_MAX_ATTEMPTS: int(1, 20).default(3),
  GENERATION_PROCESSING_TIMEOUT_SECONDS: int(10, 86_400).default(300),
  GENERATION_MODELS: list.default(["sdxl-turbo", "flux", "midjourney"]),
  GENERATION_DEFAULT_MODEL: z.string().min(1).default("sdxl-turbo"),

  // Posts and votes
  POST_BANNED_WORDS: list.default([]),
  POST_NSFW_FLAG_THRESHOLD: z.coerce.number().min(0).max(1).default(0.8),
  POST_MAX_TAGS: int(0, 50).default(10),
  SHARE_BASE_URL: z.url().default("https://circle.example/p"),
  VOTE_DAILY_QUOTA_FREE: int(0).default(50),
  VOTE_DAILY_QUOTA_PRO: int(0).default(200),
  VOTE_DAILY_QUOTA_PREMIUM: int(0).default(1_000),
  VOTE_FRAUD_FLAG_THRESHOLD: z.coerce.number().min(0).max(1).default(0.7),
  VOTE_FRAUD_ACCOUNTS_PER_IP: int(1).default(3),
  VOTE_FRAUD_ACCOUNTS_PER_DEVICE: int(1).default(2),
  POST_VOTES_COUNTER_TTL_SECONDS: int(60).default(86_400),

  // Notifications
  NOTIFICATION_AGGREGATION_WINDOW_HOURS: int(1, 24 * 30).default(12),
  NOTIFICATION_NEW_ACCOUNT_DAYS: int(0, 365).default(7),

  // Trust and safety (formulas in README, "Trust and safety")
  MODERATION_REPORT_THRESHOLD: z.coerce.number().min(0.1).max(1_000).default(5),
  MODERATION_NEW_ACCOUNT_DAYS: int(0, 365).default(7),
  MODERATION_NEW_ACCOUNT_THRESHOLD_FACTOR: z.coerce.number().min(0.05).max(1).default(0.5),
  MODERATION_ACCURACY_MIN_REPORTS: int(1, 1_000).default(5),
  MODERATION_REPORTS_PER_WINDOW: int(1).default(30),
  MODERATION_REPORT_WINDOW_SECONDS: int(1, 7 * 86_400).default(3_600),
  MODERATION_APPEAL_WINDOW_DAYS: int(1, 365).default(20),
  MODERATION_TRUST_PENALTY_ACTIONED: int(0, 100).default(10),
  MODERATION_TRUST_BONUS_ACCURATE_REPORT: int(0, 100).default(2),
  MODERATION_TRUST_PENALTY_DISMISSED_REPORT: int(0, 100).default(1),
  MODERATION_TRUST_DAILY_GAIN: z.coerce.number().min(0).max(10).default(0.5),
  MODERATION_TRUST_GAIN_CAP: int(0, 100).default(75),
  MODERATION_TRUST_CLEAN_DAYS: int(0, 365).default(30),

  // Gems
  CHECKIN_REWARD_GEMS: int(0, 10_000).default(5),
  STREAK_MILESTONE_BONUSES: z
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
      return new Map(pairs.map(([day, gems]) => [day!, gems!]));
    }),
  TRENDING_BONUS_GEMS: int(0, 10_000).default(25),
  TRENDING_BONUS_TOP_POSTS: int(0, 100).default(10),
  REFERRAL_BONUS_GEMS: int(0, 100_000).default(50),
  REFERRAL_BONUS_WINDOW_HOURS: int(1, 24 * 30).default(24),
  REFERRAL_VALIDATE_ON: z
    .string()
    .default("first_post,return_checkin")
    .transform((v, ctx) => {
      const triggers = v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const known = ["first_post", "return_checkin"];
      if (triggers.length === 0 || triggers.some((t) => !known.includes(t))) {
        ctx.addIssue({ code: "custom", message: `expected a list of ${known.join(", ")}` });
        return z.NEVER;
      }
      return triggers as ReferralTrigger[];
    }),
  REFERRAL_DAILY_CAP: int(1, 10_000).default(10),
  LEADERBOARD_RETAIN_HOURS: int(1, 24 * 30).default(24),
  RECONCILE_LOOKBACK_HOURS: int(1, 24 * 90).default(48),
  RECONCILE_PENDING_GRACE_SECONDS: int(10, 86_400).default(120),

  GEMS_PER_VOTE: int(1, 1_000).default(1),
  REFERRAL_GEM_MULTIPLIER: int(1, 10).default(2),
  SETTLEMENT_DELAY_SECONDS: int(0, 86_400).default(300),
  SETTLEMENT_BATCH_VOTES: int(1, 20_000).default(5_000),

  // Store and gifts
  /** The store catalog as a JSON array of items (see StoreItemConfig); unset = DEFAULT_STORE_CATALOG. */
  STORE_CATALOG: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined; // the default, fitted to GENERATION_MODELS in loadConfig
      let raw: unknown;
      try {
        raw = JSON.parse(v);
      } catch {
        ctx.addIssue({ code: "custom", message: "expected a JSON array of store items" });
        return z.NEVER;
      }
      const parsed = StoreCatalogConfig.safeParse(raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          ctx.addIssue({ code: "custom", message: `${issue.path.join(".")}: ${issue.message}` });
        }
        return z.NEVER;
      }
      return parsed.data;
    }),
  GIFT_PLATFORM_FEE_PERCENT: z.coerce.number().min(0).max(99.99).default(10),
  GIFT_MIN_GEMS: int(1, 1_000_000).default(10),
  GIFT_MAX_GEMS: int(1, 1_000_000).default(10_000),
  IDEMPOTENCY_TTL_SECONDS: int(60, 7 * 86_400).default(86_400),
  IDEMPOTENCY_IN_FLIGHT_TTL_SECONDS: int(5, 3_600).default(60),

  // Ranking (see src/features/ranking/scores.ts and README)
  RANK_WEIGHT_VOTE: z.coerce.number().min(0).default(1),
  RANK_WEIGHT_COMMENT: z.coerce.number().min(0).default(2),
  RANK_WEIGHT_SHARE: z.coerce.number().min(0).default(3),
  RANK_WEIGHT_VIEW: z.coerce.number().min(0).default(0.05),
  RANK_TRENDING_GRAVITY: z.coerce.number().min(0.1).max(5).default(1.5),
  RANK_TRENDING_AGE_OFFSET_HOURS: z.coerce.number().min(0).max(48).default(2),
  RANK_HOT_CONFIDENCE_Z: z.coerce.number().min(0.1).max(5).default(1.96),

  // Jobs
  JOB_TIME_BUDGET_MS: int(1_000, 15 * 60_000).default(25_000),
  JOB_LEASE_SECONDS: int(10, 3_600).default(120),
});

export type Env = z.input<typeof EnvSchema>;
type ParsedEnv = z.output<typeof EnvSchema>;

export interface Config {
  environment: ParsedEnv["ENVIRONMENT"];
  logLevel: ParsedEnv["LOG_LEVEL"];
  publicBaseUrl: string;
  redis: { url: string; token: string };
  dataApi: { url: string; apiKey: string; dataSource: string; database: string; readRetries: number };
  clickhouse: { url: string; user: string; password: string; database: string };
  storeTimeoutMs: number;
  healthCheckTimeoutMs: number;
  unavailableRetryAfterSeconds: number;
  http: { corsOrigins: string[]; serverTiming: boolean; ipHashSalt: string };
  rateLimit: { api: { maxRequests: number; windowSeconds: number }; failMode: "open" | "closed" };
  analytics: {
    maxEventAgeHours: number;
    maxClockSkewSeconds: number;
    flushBatchSize: number;
    dauMaxRangeDays: number;
  };
  jobs: { timeBudgetMs: number; leaseSeconds: number };
  auth: {
    jwtSecret: string;
    issuer: string;
    audience: string;
    accessTokenTtlSeconds: number;
    refreshTokenTtlDays: number;
    pbkdf2Iterations: number;
    emailVerificationTtlHours: number;
    passwordResetTtlMinutes: number;
    accountDeletionGraceDays: number;
    oauth: Record<OAuthProvider, { jwksUrl: string; issuers: string[]; audiences: string[] }>;
    limits: {
      loginPerIp: number;
      loginPerAccount: number;
      loginWindowSeconds: number;
      signupPerIp: number;
      signupWindowSeconds: number;
      forgotPerEmail: number;
      forgotWindowSeconds: number;
    };
  };
  profileCacheTtlSeconds: number;
  ranking: RankingConstants;
  gems: {
    checkinReward: number;
    streakMilestones: Map<number, number>;
    perVote: number;
    referralMultiplier: number;
    settlementDelaySeconds: number;
    settlementBatchVotes: number;
    trendingBonus: number;
    trendingBonusTopPosts: number;
    referral: { bonus: number; windowHours: number; validateOn: ReferralTrigger[]; dailyCap: number };
    leaderboard: { retainHours: number };
    reconcile: { lookbackHours: number; pendingGraceSeconds: number };
  };
  store: { catalog: StoreItemConfig[] };
  gifts: { platformFeeBasisPoints: number; minGems: number; maxGems: number };
  idempotency: { ttlSeconds: number; inFlightTtlSeconds: number };
  posts: { bannedWords: string[]; nsfwFlagThreshold: number; maxTags: number; shareBaseUrl: string };
  votes: {
    dailyQuota: Record<"free" | "pro" | "premium", number>;
    fraudFlagThreshold: number;
    accountsPerIp: number;
    accountsPerDevice: number;
    counterTtlSeconds: number;
  };
  notifications: { aggregationWindowHours: number; newAccountDays: number };
  moderation: {
    reportThreshold: number;
    newAccountDays: number;
    newAccountThresholdFactor: number;
    accuracyMinReports: number;
    reportsPerWindow: number;
    reportWindowSeconds: number;
    appealWindowDays: number;
    trust: {
      actionedPenalty: number;
      accurateReportBonus: number;
      dismissedReportPenalty: number;
      /** Gained per day of activity without a sanction in the last `cleanDays`, up to `gainCap`. */
      dailyGain: number;
      gainCap: number;
      cleanDays: number;
    };
  };
  generation: {
    workerToken: string;
    dailyQuota: Record<"free" | "pro" | "premium", number>;
    priority: Record<"free" | "pro" | "premium", number>;
    maxAttempts: number;
    processingTimeoutSeconds: number;
    models: string[];
    defaultModel: string;
  };
}

export type OAuthProvider = "google" | "apple";
/** What makes a referred user count as active: their first post, or a check-in on a later day than signup. */
export type ReferralTrigger = "first_post" | "return_checkin";

export interface RankingConstants {
  weights: { vote: number; comment: number; share: number; view: number };
  trendingGravity: number;
  trendingAgeOffsetHours: number;
  hotConfidenceZ: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment; throws ConfigError listing every bad setting by name. */
export function loadConfig(env: Record<string, unknown>): Config {
  const parsed = EnvSchema.safeParse(stripEmpty(env));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError(`Invalid configuration — ${problems.join("; ")}`);
  }
  const e = parsed.data;
  if (e.GIFT_MIN_GEMS > e.GIFT_MAX_GEMS) {
    throw new ConfigError("Invalid configuration — GIFT_MIN_GEMS: must not exceed GIFT_MAX_GEMS");
  }
  return {
    environment: e.ENVIRONMENT,
    logLevel: e.LOG_LEVEL,
    publicBaseUrl: e.PUBLIC_BASE_URL,
    redis: { url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN },
    dataApi: {
      url: e.DATA_API_URL.replace(/\/+$/, ""),
      apiKey: e.DATA_API_KEY,
      dataSource: e.DATA_API_DATA_SOURCE,
      database: e.MONGO_DATABASE,
      readRetries: e.DATA_API_READ_RETRIES,
    },
    clickhouse: {
      url: e.CLICKHOUSE_URL,
      user: e.CLICKHOUSE_USER,
      password: e.CLICKHOUSE_PASSWORD,
      database: e.CLICKHOUSE_DATABASE,
    },
    storeTimeoutMs: e.STORE_TIMEOUT_MS,
    healthCheckTimeoutMs: e.HEALTH_CHECK_TIMEOUT_MS,
    unavailableRetryAfterSeconds: e.STORE_UNAVAILABLE_RETRY_AFTER_SECONDS,
    http: {
      corsOrigins: e.CORS_ORIGINS,
      serverTiming: e.SERVER_TIMING,
      ipHashSalt: e.IP_HASH_SALT,
    },
    rateLimit: {
      api: { maxRequests: e.RATE_LIMIT_API_MAX_REQUESTS, windowSeconds: e.RATE_LIMIT_API_WINDOW_SECONDS },
      failMode: e.RATE_LIMIT_FAIL_MODE,
    },
    analytics: {
      maxEventAgeHours: e.ANALYTICS_MAX_EVENT_AGE_HOURS,
      maxClockSkewSeconds: e.ANALYTICS_MAX_CLOCK_SKEW_SECONDS,
      flushBatchSize: e.ANALYTICS_FLUSH_BATCH_SIZE,
      dauMaxRangeDays: e.ANALYTICS_DAU_MAX_RANGE_DAYS,
    },
    jobs: { timeBudgetMs: e.JOB_TIME_BUDGET_MS, leaseSeconds: e.JOB_LEASE_SECONDS },
    auth: {
      jwtSecret: e.JWT_SECRET,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
      pbkdf2Iterations: e.PASSWORD_PBKDF2_ITERATIONS,
      emailVerificationTtlHours: e.EMAIL_VERIFICATION_TTL_HOURS,
      passwordResetTtlMinutes: e.PASSWORD_RESET_TTL_MINUTES,
      accountDeletionGraceDays: e.ACCOUNT_DELETION_GRACE_DAYS,
      oauth: {
        google: {
          jwksUrl: e.OAUTH_GOOGLE_JWKS_URL,
          issuers: e.OAUTH_GOOGLE_ISSUERS,
          audiences: e.OAUTH_GOOGLE_CLIENT_IDS,
        },
        apple: { jwksUrl: e.OAUTH_APPLE_JWKS_URL, issuers: e.OAUTH_APPLE_ISSUERS, audiences: e.OAUTH_APPLE_CLIENT_IDS },
      },
      limits: {
        loginPerIp: e.RATE_LIMIT_LOGIN_PER_IP,
        loginPerAccount: e.RATE_LIMIT_LOGIN_PER_ACCOUNT,
        loginWindowSeconds: e.RATE_LIMIT_LOGIN_WINDOW_SECONDS,
        signupPerIp: e.RATE_LIMIT_SIGNUP_PER_IP,
        signupWindowSeconds: e.RATE_LIMIT_SIGNUP_WINDOW_SECONDS,
        forgotPerEmail: e.RATE_LIMIT_PASSWORD_FORGOT_PER_EMAIL,
        forgotWindowSeconds: e.RATE_LIMIT_PASSWORD_FORGOT_WINDOW_SECONDS,
      },
    },
    profileCacheTtlSeconds: e.PROFILE_CACHE_TTL_SECONDS,
    posts: {
      bannedWords: e.POST_BANNED_WORDS.map((w) => w.toLowerCase()),
      nsfwFlagThreshold: e.POST_NSFW_FLAG_THRESHOLD,
      maxTags: e.POST_MAX_TAGS,
      shareBaseUrl: e.SHARE_BASE_URL.replace(/\/+$/, ""),
    },
    votes: {
      dailyQuota: { free: e.VOTE_DAILY_QUOTA_FREE, pro: e.VOTE_DAILY_QUOTA_PRO, premium: e.VOTE_DAILY_QUOTA_PREMIUM },
      fraudFlagThreshold: e.VOTE_FRAUD_FLAG_THRESHOLD,
      accountsPerIp: e.VOTE_FRAUD_ACCOUNTS_PER_IP,
      accountsPerDevice: e.VOTE_FRAUD_ACCOUNTS_PER_DEVICE,
      counterTtlSeconds: e.POST_VOTES_COUNTER_TTL_SECONDS,
    },
    notifications: {
      aggregationWindowHours: e.NOTIFICATION_AGGREGATION_WINDOW_HOURS,
      newAccountDays: e.NOTIFICATION_NEW_ACCOUNT_DAYS,
    },
    moderation: {
      reportThreshold: e.MODERATION_REPORT_THRESHOLD,
      newAccountDays: e.MODERATION_NEW_ACCOUNT_DAYS,
      newAccountThresholdFactor: e.MODERATION_NEW_ACCOUNT_THRESHOLD_FACTOR,
      accuracyMinReports: e.MODERATION_ACCURACY_MIN_REPORTS,
      reportsPerWindow: e.MODERATION_REPORTS_PER_WINDOW,
      reportWindowSeconds: e.MODERATION_REPORT_WINDOW_SECONDS,
      appealWindowDays: e.MODERATION_APPEAL_WINDOW_DAYS,
      trust: {
        actionedPenalty: e.MODERATION_TRUST_PENALTY_ACTIONED,
        accurateReportBonus: e.MODERATION_TRUST_BONUS_ACCURATE_REPORT,
        dismissedReportPenalty: e.MODERATION_TRUST_PENALTY_DISMISSED_REPORT,
        dailyGain: e.MODERATION_TRUST_DAILY_GAIN,
        gainCap: e.MODERATION_TRUST_GAIN_CAP,
        cleanDays: e.MODERATION_TRUST_CLEAN_DAYS,
      },
    },
    gems: {
      checkinReward: e.CHECKIN_REWARD_GEMS,
      streakMilestones: e.STREAK_MILESTONE_BONUSES,
      perVote: e.GEMS_PER_VOTE,
      referralMultiplier: e.REFERRAL_GEM_MULTIPLIER,
      settlementDelaySeconds: e.SETTLEMENT_DELAY_SECONDS,
      settlementBatchVotes: e.SETTLEMENT_BATCH_VOTES,
      trendingBonus: e.TRENDING_BONUS_GEMS,
      trendingBonusTopPosts: e.TRENDING_BONUS_TOP_POSTS,
      referral: {
        bonus: e.REFERRAL_BONUS_GEMS,
        windowHours: e.REFERRAL_BONUS_WINDOW_HOURS,
        validateOn: e.REFERRAL_VALIDATE_ON,
        dailyCap: e.REFERRAL_DAILY_CAP,
      },
      leaderboard: { retainHours: e.LEADERBOARD_RETAIN_HOURS },
      reconcile: {
        lookbackHours: e.RECONCILE_LOOKBACK_HOURS,
        pendingGraceSeconds: e.RECONCILE_PENDING_GRACE_SECONDS,
      },
    },
    store: {
      // The default catalog sells only the configured models; an explicit one must not name others.
      catalog: checkedCatalog(
        e.STORE_CATALOG ??
          DEFAULT_STORE_CATALOG.filter((i) => i.kind !== "model_unlock" || e.GENERATION_MODELS.includes(i.model)),
        e.GENERATION_MODELS,
      ),
    },
    gifts: {
      // Basis points keep the fee math in integers (see giftFee).
      platformFeeBasisPoints: Math.round(e.GIFT_PLATFORM_FEE_PERCENT * 100),
      minGems: e.GIFT_MIN_GEMS,
      maxGems: e.GIFT_MAX_GEMS,
    },
    idempotency: { ttlSeconds: e.IDEMPOTENCY_TTL_SECONDS, inFlightTtlSeconds: e.IDEMPOTENCY_IN_FLIGHT_TTL_SECONDS },
    ranking: {
      weights: {
        vote: e.RANK_WEIGHT_VOTE,
        comment: e.RANK_WEIGHT_COMMENT,
        share: e.RANK_WEIGHT_SHARE,
        view: e.RANK_WEIGHT_VIEW,
      },
      trendingGravity: e.RANK_TRENDING_GRAVITY,
      trendingAgeOffsetHours: e.RANK_TRENDING_AGE_OFFSET_HOURS,
      hotConfidenceZ: e.RANK_HOT_CONFIDENCE_Z,
    },
    generation: {
      workerToken: e.GPU_WORKER_TOKEN,
      dailyQuota: {
        free: e.GENERATION_DAILY_QUOTA_FREE,
        pro: e.GENERATION_DAILY_QUOTA_PRO,
        premium: e.GENERATION_DAILY_QUOTA_PREMIUM,
      },
      priority: {
        free: e.GENERATION_PRIORITY_FREE,
        pro: e.GENERATION_PRIORITY_PRO,
        premium: e.GENERATION_PRIORITY_PREMIUM,
      },
      maxAttempts: e.GENERATION_MAX_ATTEMPTS,
      processingTimeoutSeconds: e.GENERATION_PROCESSING_TIMEOUT_SECONDS,
      models: e.GENERATION_MODELS,
      defaultModel: e.GENERATION_DEFAULT_MODEL,
    },
  };
}

/** Store and gifts: a model unlock must name a model that generation offers; gift bounds must make sense. */
function checkedCatalog(catalog: StoreItemConfig[], models: string[]): StoreItemConfig[] {
  const unknown = catalog.filter((i) => i.kind === "model_unlock" && !models.includes(i.model)).map((i) => i.sku);
  if (unknown.length > 0) {
    throw new ConfigError(
      `Invalid configuration — STORE_CATALOG: model unlocks name models not in GENERATION_MODELS: ${unknown.join(", ")}`,
    );
  }
  const overvalued = catalog.filter((i) => i.kind === "gift_card" && i.value > i.price).map((i) => i.sku);
  if (overvalued.length > 0) {
    throw new ConfigError(
      `Invalid configuration — STORE_CATALOG: gift cards worth more than their price: ${overvalued.join(", ")}`,
    );
  }
  return catalog;
}

/** Empty strings count as unset, so `FOO=` in a .dev.vars file falls back to the default. */
function stripEmpty(env: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "" && v !== undefined && v !== null));
}

/** The names of every setting, for README and the dev script. */
export const settingNames = Object.keys(EnvSchema.shape);
