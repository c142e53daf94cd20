import { describe, expect, it } from "vitest";
import { accountErasureJob } from "../../src/features/privacy/erasure";
import type { PublicUser } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { idToken, signupUser, type TestUser } from "../support/users";

// Every run of this job lives in this file, so no other suite's run can hold its lease. With no grace period
// the job also erases accounts other suites deleted; their assertions hold either way (the account is gone).
const deps = testDeps();
const noGrace = testDeps({ ACCOUNT_DELETION_GRACE_DAYS: "0" });

class SimulatedCrash extends Error {}

interface Scene {
  victim: TestUser;
  idol: TestUser;
  fan: TestUser;
}

const oid = (u: TestUser) => new ObjectId(u.id);
const profile = (u: TestUser) => call<PublicUser>("GET", `/v1/users/${u.username}`);

/** A user with personal data everywhere (profile, device, OAuth link, follows both ways), then deleted. */
async function deletedAccount(): Promise<Scene> {
  const [victim, idol, fan] = await Promise.all([signupUser(), signupUser(), signupUser()]);
  const device = { deviceId: "victim-phone", platform: "ios", pushToken: "push-secret" };
  expect(
    (await call("POST", "/v1/auth/login", { body: { login: victim.username, password: victim.password, ...device } }))
      .status,
  ).toBe(200);
  expect(
    (
      await call("PATCH", "/v1/me", {
        token: victim.accessToken,
        body: { bio: "about me", avatarUrl: "https://cdn.example/me.png" },
      })
    ).status,
  ).toBe(200);
  const google = await idToken("google", { sub: crypto.randomUUID() });
  expect(
    (await call("POST", "/v1/me/oauth/google", { token: victim.accessToken, body: { idToken: google } })).status,
  ).toBe(204);
  expect((await call("PUT", `/v1/users/${idol.id}/follow`, { token: victim.accessToken })).status).toBe(204);
  expect((await call("PUT", `/v1/users/${victim.id}/follow`, { token: fan.accessToken })).status).toBe(204);
  expect((await call("PUT", `/v1/users/${idol.id}/follow`, { token: fan.accessToken })).status).toBe(204);
  // The counterparts' public profiles are cached with the victim still counted.
  expect((await profile(idol)).body.followersCount).toBe(2);
  expect((await profile(fan)).body.followingCount).toBe(2);
  expect((await call("DELETE", "/v1/me", { token: victim.accessToken })).status).toBe(202);
  return { victim, idol, fan };
}

async function expectErased({ victim, idol, fan }: Scene): Promise<void> {
  const doc = await deps.db.users.findOne({ _id: oid(victim) });
  expect(doc).toMatchObject({
    username: `deleted_${victim.id}`,
    usernameLower: `deleted_${victim.id}`,
    email: null,
    emailVerified: false,
    passwordHash: null,
    displayName: "Deleted account",
    bio: "",
    avatarUrl: null,
    oauthProviders: [],
    devices: [],
    followersCount: 0,
    followingCount: 0,
  });
  expect(doc?.erasedAt).toBeInstanceOf(Date);
  expect(doc).not.toHaveProperty("erasureCounterparts");
  const stored = JSON.stringify(doc);
  for (const personal of [victim.email, victim.username, "push-secret", "victim-phone", "about me"]) {
    expect(stored).not.toContain(personal);
  }

  expect(await deps.db.follows.find({ $or: [{ followerId: oid(victim) }, { followingId: oid(victim) }] })).toEqual([]);
  expect(await deps.db.sessions.find({ userId: oid(victim) })).toEqual([]);
  expect(await deps.db.emailTokens.find({ userId: oid(victim) })).toEqual([]);
  expect(await deps.db.emailOutbox.find({ userId: oid(victim) })).toEqual([]);

  // Counterparts' counts equal their remaining follow documents, in the database and in public profiles.
  for (const [who, followers, following] of [
    [idol, 1, 0],
    [fan, 0, 1],
  ] as const) {
    const [edgesIn, edgesOut] = await Promise.all([
      deps.db.follows.find({ followingId: oid(who) }),
      deps.db.follows.find({ followerId: oid(who) }),
    ]);
    expect([edgesIn.length, edgesOut.length]).toEqual([followers, following]);
    expect(await deps.db.users.findOne({ _id: oid(who) })).toMatchObject({
      followersCount: followers,
      followingCount: following,
    });
    expect((await profile(who)).body).toMatchObject({ followersCount: followers, followingCount: following });
  }

  const audits = await deps.db.auditLogs.find({ userId: oid(victim), action: "account_erased" });
  expect(audits).toHaveLength(1);
  expect(audits[0]).toMatchObject({ actorId: null, dataCategory: "security_event" });
}

describe("account-erasure job", () => {
  it("leaves a deleted account alone during the grace period", async () => {
    const { victim } = await deletedAccount();
    const run = await runJob(deps, accountErasureJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    const doc = await deps.db.users.findOne({ _id: oid(victim) });
    expect(doc).toMatchObject({ email: victim.email, username: victim.username });
    expect(doc?.erasedAt ?? null).toBeNull();
  });

  it("erases personal data, removes follows, fixes the counterparts' counts and audits the erasure", async () => {
    const scene = await deletedAccount();
    const run = await runJob(noGrace, accountErasureJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect(run.counts.accounts).toBeGreaterThanOrEqual(1);
    await expectErased(scene);
    expect(await deps.db.jobRuns.findOne({ runId: run.runId })).toMatchObject({
      job: "account-erasure",
      outcome: "succeeded",
    });

    // A second run has nothing left to do for this account and changes nothing.
    const before = await deps.db.users.findOne({ _id: oid(scene.victim) });
    expect((await runJob(noGrace, accountErasureJob, { trigger: "test" })).outcome).toBe("succeeded");
    expect(await deps.db.users.findOne({ _id: oid(scene.victim) })).toEqual(before);
    await expectErased(scene);
  });

  it("frees the erased account's username and email for a new account", async () => {
    const scene = await deletedAccount();
    expect((await runJob(noGrace, accountErasureJob, { trigger: "test" })).outcome).toBe("succeeded");
    const again = await signupUser({ username: scene.victim.username, email: scene.victim.email });
    expect(again.id).not.toBe(scene.victim.id);
    expect((await profile(scene.victim)).body.id).toBe(again.id);
  });

  it.each(["counterparts-recorded", "edges-deleted", "audited", "erased-one"])(
    "leaves a consistent result when a run crashes at %s and the next run finishes",
    async (crashPoint) => {
      const scene = await deletedAccount();
      // Deleted long ago, so this account is the first the run picks up, and the crash hits its erasure.
      await deps.db.users.updateOne(
        { _id: oid(scene.victim) },
        { $set: { deletedAt: new Date(Date.UTC(2000, 0, 1)) } },
      );
      const crashed = await runJob(noGrace, accountErasureJob, {
        trigger: "test",
        onCheckpoint: (name) => {
          if (name === crashPoint) throw new SimulatedCrash(`killed at ${name}`);
        },
      });
      expect(crashed.outcome).toBe("failed");
      expect(crashed.error).toContain(`killed at ${crashPoint}`);
      // The crash really interrupted this account: only the last checkpoint comes after `erasedAt`.
      const midway = await deps.db.users.findOne({ _id: oid(scene.victim) });
      expect(midway?.erasedAt instanceof Date).toBe(crashPoint === "erased-one");

      const rerun = await runJob(noGrace, accountErasureJob, { trigger: "test" });
      expect(rerun.outcome).toBe("succeeded");
      await expectErased(scene);
    },
  );
});
