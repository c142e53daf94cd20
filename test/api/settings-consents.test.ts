import { describe, expect, it } from "vitest";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, signupConsents, signupUser, TEST_EMAIL_DOMAIN, type TestUser, uniqueName } from "../support/users";

const deps = testDeps();

const settings = (u: TestUser) => call<Record<string, unknown>>("GET", "/v1/me/settings", { token: u.accessToken });
const patchSettings = (u: TestUser, body: Record<string, unknown>) =>
  call<Record<string, unknown>>("PATCH", "/v1/me/settings", { token: u.accessToken, body });
const consent = (u: TestUser, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call<Record<string, unknown>>("POST", "/v1/me/consents", { token: u.accessToken, body, headers });
const consents = (u: TestUser) =>
  call<{
    items: { kind: string; granted: boolean; version: string | null; source: string; userAgent: string | null }[];
    current: Record<string, { granted: boolean; version: string | null } | null>;
    required: string[];
  }>("GET", "/v1/me/consents", { token: u.accessToken });

describe("GET/PATCH /v1/me/settings", () => {
  it("starts from the defaults and changes only what is named, zones in canonical spelling", async () => {
    const [user] = await crowd(1);
    expect((await settings(user)).body).toEqual({
      timezone: "UTC",
      language: "en",
      theme: "system",
      privateMode: false,
      emailDigests: true,
    });
    const changed = await patchSettings(user, { timezone: "america/sao_paulo", language: "pt-br", theme: "dark" });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toEqual({
      timezone: "America/Sao_Paulo",
      language: "pt-BR",
      theme: "dark",
      privateMode: false,
      emailDigests: true,
    });
    expect(roundTrips(changed.headers).mongo).toBe(1);
    expect((await patchSettings(user, { emailDigests: false })).body).toMatchObject({
      theme: "dark",
      emailDigests: false,
    });
  });

  it("refuses a zone Intl does not know, an offset, a bad theme or an unknown field with a 400 naming it", async () => {
    const [user] = await crowd(1);
    for (const [body, field] of [
      [{ timezone: "Mars/Olympus_Mons" }, "timezone"],
      [{ timezone: "+05:00" }, "timezone"],
      [{ theme: "sepia" }, "theme"],
      [{ language: "not a language" }, "language"],
      [{ fontSize: 14 }, "fontSize"],
    ] as const) {
      const res = await patchSettings(user, body);
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toContain(field);
    }
    expect((await settings(user)).body.timezone).toBe("UTC");
  });
});

describe("POST /v1/me/checkin in the caller's zone", () => {
  const checkin = (u: TestUser) =>
    call<{ date: string; currentStreak: number; gemsAwarded: number }>("POST", "/v1/me/checkin", {
      token: u.accessToken,
    });
  const localToday = (zone: string) => new Date().toLocaleDateString("en-CA", { timeZone: zone });

  it("dates the check-in by the caller's zone and counts 10 concurrent ones once", async () => {
    const [user] = await crowd(1);
    await patchSettings(user, { timezone: "Pacific/Kiritimati" });
    const storm = await Promise.all(Array.from({ length: 10 }, () => checkin(user)));
    expect(storm.map((r) => r.status)).toEqual(Array(10).fill(200));
    for (const r of storm) expect(r.body).toMatchObject({ currentStreak: 1, date: localToday("Pacific/Kiritimati") });
    expect(storm.filter((r) => r.body.gemsAwarded > 0)).toHaveLength(1);
  });

  it("never counts again on an earlier local date after flying west, nor breaks the streak", async () => {
    const [user] = await crowd(1);
    await patchSettings(user, { timezone: "Pacific/Kiritimati" });
    const east = await checkin(user);
    expect(east.body.currentStreak).toBe(1);
    // 25 hours behind: the local date there is a day (or two) before the one already counted.
    await patchSettings(user, { timezone: "Pacific/Pago_Pago" });
    const west = await checkin(user);
    expect(west.body).toMatchObject({ currentStreak: 1, gemsAwarded: 0, date: east.body.date });
    const doc = await deps.db.users.findOne({ _id: new ObjectId(user.id) });
    expect(doc).toMatchObject({ lastActiveDate: east.body.date, currentStreak: 1 });
  });
});

describe("consents", () => {
  it("records terms, privacy, data processing and marketing at signup, with the address hashed and the user agent", async () => {
    const username = uniqueName();
    const res = await call<{ user: Me; accessToken: string }>("POST", "/v1/auth/signup", {
      body: {
        username,
        email: `${username}@${TEST_EMAIL_DOMAIN}`,
        password: "correct horse battery",
        ...signupConsents(),
        marketingConsent: true,
      },
      headers: { "user-agent": "CircleApp/2.1 (iOS 18)" },
      ip: "2001:db8:77::1",
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.consentRequired).toEqual([]);
    expect(res.body.user.notificationPreferences.marketing).toBe(true);
    const ledger = await deps.db.consents.find({ userId: new ObjectId(res.body.user.id) });
    expect(ledger.map((r) => [r.kind, r.granted, r.version]).sort()).toEqual([
      ["data_processing", false, null],
      ["marketing", true, null],
      ["privacy", true, signupConsents().privacyVersion],
      ["terms", true, signupConsents().termsVersion],
    ]);
    for (const r of ledger) {
      expect(r).toMatchObject({ source: "signup", userAgent: "CircleApp/2.1 (iOS 18)" });
      expect(r.ipHash).toMatch(/^[0-9a-f]{16,}$/);
      expect(JSON.stringify(r)).not.toContain("2001:db8");
    }
  });

  it("refuses a signup without the current terms and privacy versions, creating nothing", async () => {
    const username = uniqueName();
    const body = { username, email: `${username}@${TEST_EMAIL_DOMAIN}`, password: "correct horse battery" };
    const missing = await call("POST", "/v1/auth/signup", { body });
    expectProblem(missing, 400, "validation_failed");
    expect(fieldPaths(missing)).toEqual(expect.arrayContaining(["termsVersion", "privacyVersion"]));
    const old = await call("POST", "/v1/auth/signup", { body: { ...body, ...signupConsents(), termsVersion: "0.9" } });
    expectProblem(old, 400, "validation_failed");
    expect(fieldPaths(old)).toEqual(["termsVersion"]);
    expect(await deps.db.users.findOne({ usernameLower: username.toLowerCase() })).toBeNull();
    const legal = await call<{ termsVersion: string }>("GET", "/v1/legal");
    expect(legal.body).toEqual(signupConsents());
  });

  it("asks for consent again when the terms change, accepts only the current version, and keeps the history", async () => {
    const user = await signupUser();
    const newTerms = appWith({ LEGAL_TERMS_VERSION: "2.0" });
    const me = await call<Me>("GET", "/v1/me", { token: user.accessToken }, newTerms);
    expect(me.body.consentRequired).toEqual(["terms"]);
    const stale = await call(
      "POST",
      "/v1/me/consents",
      { token: user.accessToken, body: { kind: "terms", version: "1.0", granted: true } },
      newTerms,
    );
    expect(fieldPaths(stale)).toEqual(["version"]);
    const accepted = await call<{ version: string }>(
      "POST",
      "/v1/me/consents",
      { token: user.accessToken, body: { kind: "terms", granted: true } },
      newTerms,
    );
    expect(accepted.status, accepted.text).toBe(201);
    expect(accepted.body).toMatchObject({ kind: "terms", granted: true, version: "2.0", source: "api" });
    expect((await call<Me>("GET", "/v1/me", { token: user.accessToken }, newTerms)).body.consentRequired).toEqual([]);
    // Under the old terms the account accepted a version that is not current there: asked again.
    expect((await call<Me>("GET", "/v1/me", { token: user.accessToken })).body.consentRequired).toEqual(["terms"]);
    const overview = await consents(user);
    expect(overview.body.items.filter((i) => i.kind === "terms").map((i) => i.version)).toEqual(["2.0", "1.0"]);
  });

  it("withdraws marketing at any time: the sender's check stops allowing it, the history keeps both", async () => {
    const user = await signupUser({ marketingConsent: true });
    const { marketingAllowed } = await import("../../src/features/consents/service");
    expect([...(await marketingAllowed(deps, [user.id], "email"))]).toEqual([user.id]);
    const withdrawn = await consent(user, { kind: "marketing", granted: false }, { "user-agent": "CircleApp/2.2" });
    expect(withdrawn.status, withdrawn.text).toBe(201);
    expect([...(await marketingAllowed(deps, [user.id], "email"))]).toEqual([]);
    expect([...(await marketingAllowed(deps, [user.id], "push"))]).toEqual([]);
    const overview = await consents(user);
    expect(overview.body.current.marketing).toMatchObject({ granted: false });
    expect(overview.body.items.filter((i) => i.kind === "marketing").map((i) => [i.granted, i.userAgent])).toEqual([
      [false, "CircleApp/2.2"],
      [true, null],
    ]);
    // Nobody without consent, nobody deleted, whatever their preferences say.
    const [never] = await crowd(1);
    await deps.db.users.updateOne(
      { _id: new ObjectId(never.id) },
      { $set: { "notificationPreferences.marketing": true } },
    );
    expect((await marketingAllowed(deps, [never.id], "email")).size).toBe(0);
  });

  it("refuses an unknown kind with a 400 naming kind", async () => {
    const [user] = await crowd(1);
    const res = await consent(user, { kind: "cookies", granted: true });
    expect(fieldPaths(res)).toEqual(["kind"]);
  });
});
