import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config";
import { testEnv } from "../support/deps";

describe("configuration", () => {
  it("parses the test environment", () => {
    const config = loadConfig(testEnv());
    expect(config.environment).toBe("test");
    expect(config.rateLimit.api.windowSeconds).toBe(60);
  });

  it("names a missing setting", () => {
    const { DATA_API_URL: _dropped, ...rest } = testEnv();
    expect(() => loadConfig(rest)).toThrow(ConfigError);
    expect(() => loadConfig(rest)).toThrow(/DATA_API_URL/);
  });

  it("names a malformed setting and does not echo secrets", () => {
    const bad = testEnv({ RATE_LIMIT_API_MAX_REQUESTS: "lots", CLICKHOUSE_URL: "not a url" });
    let message = "";
    try {
      loadConfig(bad);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/RATE_LIMIT_API_MAX_REQUESTS/);
    expect(message).toMatch(/CLICKHOUSE_URL/);
    expect(message).not.toContain(bad.DATA_API_KEY);
  });

  it("treats an empty setting as unset, falling back to its default", () => {
    expect(loadConfig(testEnv({ LOG_LEVEL: "" })).logLevel).toBe("info");
  });
});
