import { beforeAll, describe, expect, it } from "vitest";
import type { GenerationAccepted } from "../../src/features/generations/schema";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser, userWithRole } from "../support/users";

const deps = testDeps();
const priority = deps.config.generation.priority;

const setTier = (admin: TestUser, user: TestUser, tier: string, expiresAt: string | null) =>
  call<Me>("PUT", `/v1/admin/users/${user.id}/tier`, { token: admin.accessToken, body: { tier, expiresAt } });
const generate = (user: TestUser, model?: string) =>
  call<GenerationAccepted>("POST", "/v1/generations", {
    token: user.accessToken,
    body: { prompt: "a tidal pool at noon", ...(model ? { model } : {}) },
  });
const me = (user: TestUser) => call<Me>("GET", "/v1/me", { token: user.accessToken });

describe("PUT /v1/admin/users/{id}/tier and tier expiry", () => {
  let admin: TestUser;
  beforeAll(async () => {
    admin = await userWithRole("admin");
  });

  it("makes a user pro for their existing token at once, audited", async () => {
    const [user] = await crowd(1);
    expect((await generate(user)).body.priority).toBe(priority.free);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const res = await setTier(admin, user, "pro", until);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ tier: "pro", tierExpiresAt: until });
    // The same token as before the change: quotas, priority, watermark and models follow the new tier.
    const queued = await generate(user, "flux");
    expect(queued.status, queued.text).toBe(202);
    expect(queued.body.priority).toBe(priority.pro);
    const job = await deps.db.generationJobs.findOne({ _id: new ObjectId(queued.body.id) });
    expect(job).toMatchObject({ userTier: "pro", hasWatermark: false });
    expect((await me(user)).body).toMatchObject({ tier: "pro", tierExpiresAt: until });
    const audited = await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "tier_changed" });
    expect(audited?.metadata).toMatchObject({ from: { tier: "free" }, to: { tier: "pro", expiresAt: until } });
  });

  it("acts as free everywhere the moment a paid tier expires, with no job and no new token", async () => {
    const [user] = await crowd(1);
    expect((await setTier(admin, user, "premium", new Date(Date.now() + 1_500).toISOString())).status).toBe(200);
    expect((await generate(user)).body.priority).toBe(priority.premium);
    await new Promise((resolve) => setTimeout(resolve, 1_700));
    const after = await generate(user);
    expect(after.status, after.text).toBe(202);
    expect(after.body.priority).toBe(priority.free);
    expect(after.body.quota.limit).toBe(deps.config.generation.dailyQuota.free);
    const job = await deps.db.generationJobs.findOne({ _id: new ObjectId(after.body.id) });
    expect(job).toMatchObject({ userTier: "free", hasWatermark: true });
    // A model the store sells needs the unlock again.
    expectProblem(await generate(user, "flux"), 403, "forbidden");
    expect((await me(user)).body.tier).toBe("free");
    const profile = await call<{ tier: string }>("GET", `/v1/users/${user.username}`);
    expect(profile.body.tier).toBe("free");
  });

  it("refuses an expiry in the past, an unknown tier and unknown fields, naming the field", async () => {
    const [user] = await crowd(1);
    expect(fieldPaths(await setTier(admin, user, "pro", "2020-01-01T00:00:00Z"))).toContain("expiresAt");
    expect(fieldPaths(await setTier(admin, user, "platinum", null))).toContain("tier");
    const extra = await call("PUT", `/v1/admin/users/${user.id}/tier`, {
      token: admin.accessToken,
      body: { tier: "pro", expiresAt: null, gems: 5 },
    });
    expect(fieldPaths(extra)).toContain("gems");
    expectProblem(await setTier(admin, { ...user, id: new ObjectId().toHexString() }, "pro", null), 404, "not_found");
  });

  it("takes a role away from existing tokens at once: a demoted admin cannot promote itself back", async () => {
    const other = await userWithRole("admin");
    const demote = await call("PUT", `/v1/admin/users/${other.id}/role`, {
      token: admin.accessToken,
      body: { role: "user" },
    });
    expect(demote.status, demote.text).toBe(200);
    const back = await call("PUT", `/v1/admin/users/${other.id}/role`, {
      token: other.accessToken,
      body: { role: "admin" },
    });
    expectProblem(back, 403, "forbidden");
    expect((await deps.db.users.findOne({ _id: new ObjectId(other.id) }))?.role).toBe("user");
  });
});
