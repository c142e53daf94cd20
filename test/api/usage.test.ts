import { describe, expect, it } from "vitest";
import type { SubscriptionView } from "../../src/features/billing/schema";
import type { Usage } from "../../src/features/usage/schema";
import { call, roundTrips } from "../support/api";
import { appAccountToken, DAY, originalTransactionId, postAppStore, signAppStore } from "../support/billing";
import { testDeps } from "../support/deps";
import { signupUser, type TestUser, userWithRole } from "../support/users";

const deps = testDeps();

const usage = (user: TestUser) => call<Usage>("GET", "/v1/me/usage", { token: user.accessToken });
const itemOf = (body: Usage, feature: string) => body.items.find((i) => i.feature === feature);
const generate = (user: TestUser) =>
  call("POST", "/v1/generations", { token: user.accessToken, body: { prompt: "a kite over dunes" } });

describe("GET /v1/me/usage", () => {
  it("shows each metered feature's use, limit and reset from the counters that enforce them, in one Redis round trip", async () => {
    const user = await signupUser();
    const fresh = await usage(user);
    expect(fresh.status, fresh.text).toBe(200);
    const quotas = deps.config;
    expect(fresh.body.items.map((i) => i.feature)).toEqual(["generations", "votes", "reports", "verification_emails"]);
    expect(itemOf(fresh.body, "generations")).toMatchObject({ used: 0, limit: quotas.generation.dailyQuota.free });
    expect(itemOf(fresh.body, "votes")).toMatchObject({ used: 0, limit: quotas.votes.dailyQuota.free });
    expect(itemOf(fresh.body, "reports")).toMatchObject({ used: 0, limit: quotas.moderation.reportsPerWindow });
    expect(itemOf(fresh.body, "verification_emails")).toMatchObject({
      used: 0,
      limit: quotas.auth.limits.verificationMailsPerAccount,
    });
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    expect(itemOf(fresh.body, "generations")?.resetsAt).toBe(midnight.toISOString());
    expect(roundTrips(fresh.headers)).toMatchObject({ redis: 1, mongo: 0 });

    await generate(user);
    await generate(user);
    await call("POST", "/v1/auth/email/resend", { token: user.accessToken });
    const after = await usage(user);
    expect(itemOf(after.body, "generations")?.used).toBe(2);
    expect(itemOf(after.body, "verification_emails")?.used).toBe(1);
    expect(roundTrips(after.headers)).toMatchObject({ redis: 1, mongo: 0 });
  });

  it("a store subscription raises the limits at once; what was used today stays used", async () => {
    const user = await signupUser();
    await generate(user);
    const token = await appAccountToken(user);
    const signed = await signAppStore({
      notificationType: "SUBSCRIBED",
      appAccountToken: token,
      productId: "circle.pro.monthly",
      originalTransactionId: originalTransactionId(),
      expiresDate: Date.now() + 30 * DAY,
    });
    expect((await postAppStore(signed.signedPayload)).body.outcome).toBe("applied");
    const after = await usage(user);
    expect(itemOf(after.body, "generations")).toMatchObject({ used: 1, limit: deps.config.generation.dailyQuota.pro });
    expect(itemOf(after.body, "votes")?.limit).toBe(deps.config.votes.dailyQuota.pro);
  });
});

describe("GET /v1/me/subscription", () => {
  it("is none for a new account, and active without a store for a tier an admin granted", async () => {
    const user = await signupUser();
    const none = await call<SubscriptionView>("GET", "/v1/me/subscription", { token: user.accessToken });
    expect(none.body).toEqual({ tier: "free", state: "none", expiresAt: null, store: null });
    const admin = await userWithRole("admin");
    const until = new Date(Date.now() + DAY).toISOString();
    await call("PUT", `/v1/admin/users/${user.id}/tier`, {
      token: admin.accessToken,
      body: { tier: "pro", expiresAt: until },
    });
    const granted = await call<SubscriptionView>("GET", "/v1/me/subscription", { token: user.accessToken });
    expect(granted.body).toEqual({ tier: "pro", state: "active", expiresAt: until, store: null });
  });
});
