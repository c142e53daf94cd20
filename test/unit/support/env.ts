/**
 * A complete, valid configuration environment for pure-logic tests: no store is reached, so the URLs only
 * have to be well-formed. The fast tier (`npm run test:unit`) builds configs from this, never from a stack.
 */
const UNIT_ENV: Record<string, string> = {
  ENVIRONMENT: "test",
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9/upstash",
  UPSTASH_REDIS_REST_TOKEN: "unit-upstash-token",
  DATA_API_URL: "http://127.0.0.1:9/data-api/",
  DATA_API_KEY: "unit-data-api-key",
  CLICKHOUSE_URL: "http://127.0.0.1:9/clickhouse",
  CLICKHOUSE_PASSWORD: "unit-clickhouse-password",
  IP_HASH_SALT: "unit-ip-hash-salt-0123456789",
  JWT_SECRET: "unit-jwt-secret-0123456789abcdef0123456789",
  GPU_WORKER_TOKEN: "unit-gpu-worker-token-0123456789",
};

export function unitEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return { ...UNIT_ENV, ...overrides };
}
