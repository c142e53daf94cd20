import { beforeAll, describe, expect, it } from "vitest";
import type { Me, PublicUser } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { signupUser, TEST_EMAIL_DOMAIN, type TestUser, uniqueName } from "../support/users";

const deps = testDeps();

const PUBLIC_FIELDS = [
  "avatarUrl",
  "bio",
  "createdAt",
  "displayName",
  "followersCount",
  "followingCount",
  "id",
  "profileTheme",
  "tier",
  "totalPosts",
  "username",
];

const getMe = (u: TestUser) => call<Me>("GET", "/v1/me", { token: u.accessToken });
const patchMe = (u: TestUser, body: unknown) => call<Me>("PATCH", "/v1/me", { token: u.accessToken, body });
const profile = (username: string) => call<PublicUser>("GET", `/v1/users/${username}`);
const userDoc = (u: TestUser) => deps.db.users.findOne({ _id: new ObjectId(u.id) });

describe("GET /v1/me", () => {
  it("returns the caller's own profile with private fields and no secrets", async () => {
    const user = await signupUser();
    const res = await getMe(user);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: user.id,
      username: user.username,
      email: user.email,
      role: "user",
      tier: "free",
      gemBalance: 0,
      currentStreak: 0,
      longestStreak: 0,
      notificationPreferences: { push: true, email: true, inApp: true, marketing: false },
    });
    expect(res.body.referralCode).toMatch(/^[A-Z0-9]{8}$/);
    expect(Object.keys(res.body)).toEqual(expect.arrayContaining(PUBLIC_FIELDS));
    expect(res.text).not.toMatch(/passwordHash|\$pbkdf2|trustScore|devices/);
  });

  it("answers 401 without a token", async () => {
    expectProblem(await call("GET", "/v1/me"), 401, "unauthorized");
    expectProblem(await call("PATCH", "/v1/me", { body: { bio: "x" } }), 401, "unauthorized");
  });
});

describe("PATCH /v1/me", () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await signupUser();
  });

  it.each([
    ["role", "admin"],
    ["tier", "premium"],
    ["gemBalance", 1_000_000],
    ["trustScore", 100],
    ["email", `someone@${TEST_EMAIL_DOMAIN}`],
    ["emailVerified", true],
    ["username", "taken_over"],
    ["followersCount", 999],
    ["referralCode", "AAAAAAAA"],
    ["passwordHash", "$pbkdf2-sha256$i=100000$AAAA$AAAA"],
    ["shadowBanned", false],
  ])("refuses the privileged field %s with 400 naming it, changing nothing", async (field, value) => {
    const before = await userDoc(user);
    const meBefore = (await getMe(user)).body;
    // Paired with an allowed field, to show that nothing at all is applied.
    const res = await patchMe(user, { displayName: "Should Not Apply", [field]: value });
    expect(expectProblem(res, 400, "validation_failed").errors).toContainEqual({
      path: field,
      message: "unknown field",
    });
    expect(await userDoc(user)).toEqual(before);
    expect((await getMe(user)).body).toEqual(meBefore);
  });

  it.each([
    ["a 51-character displayName", { displayName: "x".repeat(51) }, "displayName"],
    ["a blank displayName", { displayName: "   " }, "displayName"],
    ["a 161-character bio", { bio: "b".repeat(161) }, "bio"],
    ["an avatarUrl that is not a URL", { avatarUrl: "not a url" }, "avatarUrl"],
    ["a javascript: avatarUrl", { avatarUrl: "javascript:alert(1)" }, "avatarUrl"],
    ["an unknown notification channel", { notificationPreferences: { sms: true } }, "notificationPreferences.sms"],
    [
      "a non-boolean notification setting",
      { notificationPreferences: { push: "yes" } },
      "notificationPreferences.push",
    ],
  ])("refuses %s with 400 naming the field", async (_name, body, path) => {
    const before = await userDoc(user);
    const res = await patchMe(user, body);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain(path);
    expect(await userDoc(user)).toEqual(before);
  });

  it("accepts the longest allowed displayName (50) and bio (160)", async () => {
    const res = await patchMe(user, { displayName: "d".repeat(50), bio: "b".repeat(160) });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ displayName: "d".repeat(50), bio: "b".repeat(160) });
  });

  it("updates the allowed fields, merges notification preferences, and the public profile shows it at once", async () => {
    const subject = await signupUser();
    // Put the public profile in the cache first: the update must invalidate it.
    expect((await profile(subject.username)).body.displayName).toBe(subject.username);
    const res = await patchMe(subject, {
      displayName: "  Ada Lovelace  ",
      bio: "First programmer.",
      avatarUrl: "https://cdn.example/ada.png",
      profileTheme: "classic",
      notificationPreferences: { marketing: true, push: false },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      displayName: "Ada Lovelace",
      bio: "First programmer.",
      avatarUrl: "https://cdn.example/ada.png",
      profileTheme: "classic",
      notificationPreferences: { push: false, email: true, inApp: true, marketing: true },
    });
    expect((await getMe(subject)).body).toEqual(res.body);
    const pub = await profile(subject.username);
    expect(pub.body).toMatchObject({
      displayName: "Ada Lovelace",
      bio: "First programmer.",
      avatarUrl: "https://cdn.example/ada.png",
    });

    const cleared = await patchMe(subject, { avatarUrl: null });
    expect(cleared.body.avatarUrl).toBeNull();
    expect((await profile(subject.username)).body.avatarUrl).toBeNull();
  });
});

describe("GET /v1/users/{username}", () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await signupUser();
  });

  it("returns exactly the public fields (no email, no private data), case-insensitively", async () => {
    const res = await profile(user.username.toUpperCase());
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(PUBLIC_FIELDS);
    expect(res.body).toMatchObject({ id: user.id, username: user.username, tier: "free", followersCount: 0 });
    expect(res.text).not.toContain("@");
    expect(res.text).not.toContain(user.email);
  });

  it("answers 404 for an unknown username and 400 for an impossible one", async () => {
    expectProblem(await profile(uniqueName("ghost")), 404, "not_found");
    expectProblem(await profile("no-dashes"), 400, "validation_failed");
  });

  it("serves a repeated read from the cache: no MongoDB call", async () => {
    const fresh = await signupUser();
    const first = await profile(fresh.username);
    expect(first.status).toBe(200);
    // Cache miss: rate-limit check and cache read in one pipeline, the cache write, and one MongoDB read.
    expect(roundTrips(first.headers)).toMatchObject({ redis: 2, mongo: 1 });
    const second = await profile(fresh.username);
    expect(second.body).toEqual(first.body);
    // Cache hit: the per-IP rate-limit check rides in the same pipeline as the cache read: one round trip.
    expect(roundTrips(second.headers)).toMatchObject({ redis: 1, mongo: 0 });
  });

  it("finds a user who signed up right after the name was looked up and missed", async () => {
    const name = uniqueName("late");
    expectProblem(await profile(name), 404, "not_found");
    const late = await signupUser({ username: name, email: `${name}@${TEST_EMAIL_DOMAIN}` });
    const res = await profile(name);
    expect(res.status, res.text).toBe(200);
    expect(res.body.id).toBe(late.id);
  });
});
