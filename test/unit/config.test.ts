import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readmeWithTable } from "../../scripts/config-table";
import { allSettings, ConfigError, loadConfig } from "../../src/config";
import { unitEnv as testEnv } from "./support/env";

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

  it("fits the default store catalog to the configured models, and refuses an explicit one that names others", () => {
    const only = loadConfig(testEnv({ GENERATION_MODELS: "sdxl-turbo,flux", GENERATION_DEFAULT_MODEL: "sdxl-turbo" }));
    const unlocks = only.shop.catalog.flatMap((i) => (i.kind === "model_unlock" ? [i.model] : []));
    expect(unlocks).toEqual(["flux"]);
    const explicit = JSON.stringify([{ sku: "m", kind: "model_unlock", price: 5, title: "M", model: "dall-e-9" }]);
    expect(() => loadConfig(testEnv({ SHOP_CATALOG: explicit }))).toThrow(/SHOP_CATALOG.*\bm\b/);
  });

  it("refuses gift bounds that leave no valid amount, and referral triggers it does not know", () => {
    expect(() => loadConfig(testEnv({ GIFT_MIN_GEMS: "500", GIFT_MAX_GEMS: "100" }))).toThrow(/GIFT_MIN_GEMS/);
    expect(() => loadConfig(testEnv({ REFERRAL_VALIDATE_ON: "first_post,first_vote" }))).toThrow(
      /REFERRAL_VALIDATE_ON/,
    );
    expect(loadConfig(testEnv({ REFERRAL_VALIDATE_ON: "return_checkin" })).gems.referral.validateOn).toEqual([
      "return_checkin",
    ]);
  });
});

describe("settings, defined once", () => {
  it("gives every setting its own environment name and a description", () => {
    const settings = allSettings();
    expect(settings.length).toBeGreaterThan(100);
    const names = settings.map((s) => s.setting.env);
    expect(new Set(names).size).toBe(names.length);
    for (const { setting } of settings) {
      expect(setting.env).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(setting.doc.length).toBeGreaterThan(3);
    }
  });

  it("README's table is the one the schema prints (run `npm run config:table -- --write` after a change)", () => {
    const readme = readFileSync("README.md", "utf8");
    expect(readmeWithTable(readme)).toBe(readme);
  });
});
