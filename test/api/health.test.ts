import { describe, expect, it } from "vitest";
import { call, roundTrips } from "../support/api";
import { appWith } from "../support/deps";

interface Health {
  status: string;
  checks: Record<"redis" | "mongo" | "clickhouse", { ok: boolean; latencyMs: number; error?: string }>;
}

describe("GET /health", () => {
  it("reports every store ok against the local stack", async () => {
    const res = await call<Health>("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ok");
    for (const store of ["redis", "mongo", "clickhouse"] as const) {
      expect(res.body.checks[store].ok).toBe(true);
      expect(res.body.checks[store].latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(res.headers.get("x-request-id")).toMatch(/.+/);
  });

  it("costs one round trip per store plus the rate-limit check", async () => {
    const res = await call("GET", "/health");
    expect(roundTrips(res.headers)).toEqual({ redis: 2, mongo: 1, clickhouse: 1, r2: 0 });
  });

  it("answers 503 when MongoDB is unreachable and names the failed check", async () => {
    const fetcher = appWith({
      DATA_API_URL: "http://127.0.0.1:9/app/data-api/endpoint/data/v1",
      DATA_API_READ_RETRIES: "0",
    });
    const res = await call<Health>("GET", "/health", {}, fetcher);
    expect(res.status).toBe(503);
    expect(res.body.status).toBe("degraded");
    expect(res.body.checks.mongo.ok).toBe(false);
    expect(res.body.checks.redis.ok).toBe(true);
  });

  it("is degraded but 200 when ClickHouse is unreachable", async () => {
    const res = await call<Health>("GET", "/health", {}, appWith({ CLICKHOUSE_URL: "http://127.0.0.1:9" }));
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("degraded");
    expect(res.body.checks.clickhouse.ok).toBe(false);
  });

  it("keeps the caller's X-Request-Id when it sends a sane one", async () => {
    const res = await call("GET", "/health", { headers: { "x-request-id": "req-abc-123" } });
    expect(res.headers.get("x-request-id")).toBe("req-abc-123");
  });
});
