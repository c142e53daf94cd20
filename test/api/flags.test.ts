import { describe, expect, it } from "vitest";
import { evaluate, forgetRulesInMemory, loadRules } from "../../src/features/flags/service";
import { ObjectId } from "../../src/platform/ids";
import { newTally, withIoTally } from "../../src/platform/io";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { EJSON_SHAPED_PROPERTIES } from "../support/events";
import { crowd, uniqueName, userWithRole } from "../support/users";

const deps = testDeps();

interface Evaluated {
  flags: Record<string, boolean>;
  variants: Record<string, { name: string; config: Record<string, unknown> }>;
}

describe("feature flags", () => {
  it("lets only admins manage flags and validates input", async () => {
    const [user] = await crowd(1);
    const admin = await userWithRole("admin");
    const name = uniqueName("f").toLowerCase();
    expect(
      (await call("PUT", `/v1/admin/flags/${name}`, { token: user.accessToken, body: { enabled: true } })).status,
    ).toBe(403);
    expect((await call("GET", "/v1/admin/flags", { token: user.accessToken })).status).toBe(403);
    const bad = await call<{ errors: { path: string }[] }>("PUT", `/v1/admin/flags/${name}`, {
      token: admin.accessToken,
      body: { enabled: true, rolloutPercentage: 101 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e) => e.path)).toContain("rolloutPercentage");
    expect(
      (await call("PUT", "/v1/admin/flags/Bad%20Name", { token: admin.accessToken, body: { enabled: true } })).status,
    ).toBe(400);
    expect((await call("DELETE", `/v1/admin/flags/${name}-missing`, { token: admin.accessToken })).status).toBe(404);
  });

  it("evaluates kill switch, tiers, target users, per-user overrides and variants, and sees changes at once", async () => {
    const admin = await userWithRole("admin");
    const [free, pro, targeted, overridden] = await crowd(4);
    const name = uniqueName("f").toLowerCase();
    const put = async (body: Record<string, unknown>) => {
      const res = await call("PUT", `/v1/admin/flags/${name}`, { token: admin.accessToken, body });
      expect(res.status, res.text).toBe(200);
    };
    await put({
      enabled: true,
      rolloutPercentage: 100,
      targetTiers: ["pro"],
      targetUserIds: [targeted.id],
      variants: [{ name: "blue", weight: 1, config: { color: "blue" } }],
    });
    await deps.db.users.updateOne({ _id: new ObjectId(pro.id) }, { $set: { tier: "pro" } });
    await deps.db.users.updateOne({ _id: new ObjectId(overridden.id) }, { $set: { featureFlags: { [name]: true } } });
    const flagsOf = async (token?: string, device?: string) =>
      (await call<Evaluated>("GET", "/v1/flags", { token, headers: device ? { "x-device-id": device } : {} })).body;
    expect((await flagsOf(free.accessToken)).flags[name]).toBe(false);
    expect((await flagsOf(pro.accessToken)).flags[name]).toBe(true);
    expect((await flagsOf(pro.accessToken)).variants[name]).toEqual({ name: "blue", config: { color: "blue" } });
    expect((await flagsOf(targeted.accessToken)).flags[name]).toBe(true);
    expect((await flagsOf(overridden.accessToken)).flags[name]).toBe(true);
    expect((await flagsOf(undefined, "device-1")).flags[name]).toBe(false);

    // Kill switch: off for everyone but explicit per-user overrides.
    await put({ enabled: false, rolloutPercentage: 100 });
    await deps.redis.del(deps.keys.flagsUser(pro.id));
    expect((await flagsOf(pro.accessToken)).flags[name]).toBe(false);
    expect((await flagsOf(undefined, "device-1")).flags[name]).toBe(false);
  });

  it("keeps a variant's config as the JSON the admin sent, EJSON wrappers and operator keys included", async () => {
    const admin = await userWithRole("admin");
    const [someone] = await crowd(1);
    const name = uniqueName("f").toLowerCase();
    const config = JSON.parse(EJSON_SHAPED_PROPERTIES) as Record<string, unknown>;
    const body = `{"enabled": true, "variants": [{"name": "odd", "weight": 1, "config": ${EJSON_SHAPED_PROPERTIES}}]}`;
    const put = await call<{ variants: { config: unknown }[] }>("PUT", `/v1/admin/flags/${name}`, {
      token: admin.accessToken,
      rawBody: body,
      headers: { "content-type": "application/json" },
    });
    expect(put.status, put.text).toBe(200);
    expect(JSON.stringify(put.body.variants[0]?.config)).toBe(JSON.stringify(config));
    const listed = await call<{ items: { name: string; variants: { config: unknown }[] }[] }>(
      "GET",
      "/v1/admin/flags",
      {
        token: admin.accessToken,
      },
    );
    const flag = listed.body.items.find((f) => f.name === name);
    expect(JSON.stringify(flag?.variants[0]?.config)).toBe(JSON.stringify(config));
    const stored = await deps.db.featureFlags.findOne({ name });
    expect(stored?.variants[0]?.configJson).toBe(JSON.stringify(config));
    forgetRulesInMemory();
    await deps.redis.del(deps.keys.flagsAll());
    const evaluated = await call<Evaluated>("GET", "/v1/flags", { token: someone!.accessToken });
    expect(JSON.stringify(evaluated.body.variants[name]?.config)).toBe(JSON.stringify(config));
    await call("DELETE", `/v1/admin/flags/${name}`, { token: admin.accessToken });
  });

  it("evaluates from the isolate's memory without any round trip once loaded", async () => {
    forgetRulesInMemory();
    await loadRules(deps);
    const tally = newTally();
    const rules = await withIoTally(tally, () => loadRules(deps));
    evaluate(rules, { id: "device-9", tier: "free", userId: null, overrides: {} });
    expect(tally.roundTrips).toEqual({ redis: 0, mongo: 0, clickhouse: 0, r2: 0 });
  });
});
