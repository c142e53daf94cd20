import { describe, expect, it } from "vitest";
import { validateReferral } from "../../src/features/referrals/service";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { call, uniqueIp } from "../support/api";
import { testDeps } from "../support/deps";
import { publishedPost } from "../support/posts";
import { crowd, signupConsents, TEST_EMAIL_DOMAIN, type TestUser, uniqueName } from "../support/users";

const deps = testDeps();
const BONUS = deps.config.gems.referral.bonus;

interface Referrals {
  code: string;
  referralCount: number;
  bonusActiveUntil: string | null;
  items: { id: string; user: { id: string } | null; status: string; bonusGems: number; validatedAt: string | null }[];
  nextCursor: string | null;
}

interface Person extends TestUser {
  referralCode: string;
}

/** Signs up from a given IP and device, as the app would, optionally with a referral code. */
async function person(ip: string, deviceId: string, referralCode?: string): Promise<Person> {
  const username = uniqueName("r");
  const body = {
    username,
    email: `${username}@${TEST_EMAIL_DOMAIN}`,
    password: "correct horse battery",
    deviceId,
    ...signupConsents(),
  };
  const res = await call<{ user: { id: string; referralCode: string }; accessToken: string; refreshToken: string }>(
    "POST",
    "/v1/auth/signup",
    { ip, body: referralCode ? { ...body, referralCode } : body },
  );
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  const me = await deps.db.users.findOne({ _id: new ObjectId(res.body.user.id) });
  return {
    id: res.body.user.id,
    username,
    email: body.email,
    password: body.password,
    accessToken: res.body.accessToken,
    refreshToken: res.body.refreshToken,
    referralCode: me!.referralCode,
  };
}

const userDoc = async (id: string) => (await deps.db.users.findOne({ _id: new ObjectId(id) }))!;
const DAY = 86_400_000;
/** As if the account had signed up `days` ago and not been seen since. */
/** Pretends the account signed up and last checked in `days` ago (the cached last check-in included). */
const signedUpDaysAgo = async (id: string, days: number) => {
  const then = new Date(Date.now() - days * DAY);
  await deps.db.users.updateOne(
    { _id: new ObjectId(id) },
    { $set: { createdAt: then, lastActiveDate: then.toISOString().slice(0, 10) } },
  );
  await deps.redis.del(deps.keys.userStreak(id));
};
const referralsOf = (u: TestUser) => call<Referrals>("GET", "/v1/me/referrals", { token: u.accessToken });

describe("referrals", () => {
  it("validates once the referred account has lived (a post, a later day, 72 hours): pays once, opens the 2× window", async () => {
    const referrer = await person(uniqueIp(), `dev-${uniqueName()}`);
    const friend = await person(uniqueIp(), `dev-${uniqueName()}`, referrer.referralCode);

    const before = await referralsOf(referrer);
    expect(before.body.items.map((i) => [i.user?.id, i.status, i.bonusGems])).toEqual([[friend.id, "pending", 0]]);
    expect(before.body).toMatchObject({ code: referrer.referralCode, referralCount: 0, bonusActiveUntil: null });

    // A post on the signup day pays nothing yet: the referral waits.
    await publishedPost(friend);
    expect((await userDoc(referrer.id)).gemBalance).toBe(0);
    expect((await referralsOf(referrer)).body.items[0]?.status).toBe("pending");
    // Four days later the friend is back: that day's first check-in shows a real account.
    await signedUpDaysAgo(friend.id, 4);
    expect((await call("POST", "/v1/me/checkin", { token: friend.accessToken })).status).toBe(200);
    await publishedPost(friend); // a later post pays nothing more

    const doc = await userDoc(referrer.id);
    expect(doc.gemBalance).toBe(BONUS);
    expect(doc.referralCount).toBe(1);
    const windowMs = deps.config.gems.referral.windowHours * 3_600_000;
    expect(Math.abs(doc.referralBonusExpiresAt!.getTime() - (Date.now() + windowMs))).toBeLessThan(60_000);

    const after = await referralsOf(referrer);
    expect(after.body).toMatchObject({ referralCount: 1, bonusActiveUntil: doc.referralBonusExpiresAt!.toISOString() });
    expect(after.body.items[0]).toMatchObject({ status: "validated", bonusGems: BONUS });
    const gems = await call<{ multiplier: number; multiplierExpiresAt: string }>("GET", "/v1/me/gems", {
      token: referrer.accessToken,
    });
    expect(gems.body).toMatchObject({ balance: BONUS, multiplier: deps.config.gems.referralMultiplier });
    const ledger = await deps.db.gemTransactions.find({ userId: new ObjectId(referrer.id) });
    expect(ledger.map((e) => [e.source, e.amount, e.referenceType])).toEqual([["referral", BONUS, "referral"]]);
    const notes = await call<{ items: { type: string; title: string }[] }>("GET", "/v1/notifications", {
      token: referrer.accessToken,
    });
    expect(notes.body.items.filter((n) => n.type === "referral")).toHaveLength(1);
  });

  it("rejects referrals between accounts that share a device or an IP, and pays nothing", async () => {
    const ip = uniqueIp();
    const device = `dev-${uniqueName()}`;
    const referrer = await person(ip, device);
    const sameDevice = await person(uniqueIp(), device, referrer.referralCode);
    const sameIp = await person(ip, `dev-${uniqueName()}`, referrer.referralCode);
    await Promise.all([publishedPost(sameDevice), publishedPost(sameIp)]);

    expect((await userDoc(referrer.id)).gemBalance).toBe(0);
    const reasons = await deps.db.referrals.find({ referrerId: new ObjectId(referrer.id) });
    expect(reasons.map((r) => r.rejectedReason).sort()).toEqual(["shared_device", "shared_ip"]);
    const list = await referralsOf(referrer);
    expect(list.body.items.map((i) => i.status)).toEqual(["rejected", "rejected"]);
    expect(list.body.referralCount).toBe(0);
  });

  it("validates on a check-in on a later day than signup, not on the signup day", async () => {
    const referrer = await person(uniqueIp(), `dev-${uniqueName()}`);
    const friend = await person(uniqueIp(), `dev-${uniqueName()}`, referrer.referralCode);
    const checkin = () => call("POST", "/v1/me/checkin", { token: friend.accessToken });

    expect((await checkin()).status).toBe(200);
    expect((await userDoc(referrer.id)).gemBalance).toBe(0);

    // Signed up and checked in four days ago, with a post: today's check-in shows a returning user.
    await publishedPost(friend);
    await signedUpDaysAgo(friend.id, 4);
    expect((await checkin()).status).toBe(200);
    expect((await userDoc(referrer.id)).gemBalance).toBe(BONUS);
  });

  it("caps validations per referrer per day and pays each referral exactly once under concurrency", async () => {
    const capped = testDeps({ REFERRAL_DAILY_CAP: "2" });
    const [referrer, ...friends] = await crowd(5);
    // Friends who have lived: four days old, with a post, back today.
    await deps.db.users.updateMany(
      { _id: { $in: friends.map((f) => new ObjectId(f.id)) } },
      {
        $set: {
          createdAt: new Date(Date.now() - 4 * DAY),
          totalPosts: 1,
          lastActiveDate: new Date().toISOString().slice(0, 10),
        },
      },
    );
    await deps.db.referrals.insertMany(
      friends.map((f, i) => ({
        _id: newObjectId(),
        referrerId: new ObjectId(referrer.id),
        referralCode: "TESTCODE",
        referredUserId: new ObjectId(f.id),
        installSource: "direct_link",
        platform: null,
        bonusGemsAwarded: 0,
        bonusMultiplierActive: false,
        bonusExpiresAt: null,
        ipHash: `ip-${i}-${uniqueName()}`,
        deviceId: `device-${i}-${uniqueName()}`,
        fraudScore: 0,
        validated: false,
        status: "pending" as const,
        rewardTransactionId: null,
        createdAt: new Date(),
      })),
    );
    const outcomes = await Promise.all(
      friends.flatMap((f) =>
        Array.from({ length: 5 }, () => validateReferral(capped, new ObjectId(f.id), "first_post")),
      ),
    );
    const docs = await deps.db.referrals.find({ referrerId: new ObjectId(referrer.id) });
    expect(docs.filter((d) => d.status === "validated")).toHaveLength(2);
    expect(docs.filter((d) => d.status === "pending")).toHaveLength(2);
    expect(outcomes.filter((o) => o === "capped").length).toBeGreaterThan(0);
    const doc = await userDoc(referrer.id);
    expect(doc.gemBalance).toBe(2 * BONUS);
    expect(doc.referralCount).toBe(2);
    expect(await deps.db.gemTransactions.find({ userId: new ObjectId(referrer.id) })).toHaveLength(2);
  });

  it("pays nothing for throwaway accounts that each make one post on their signup day", async () => {
    const referrer = await person(uniqueIp(), `dev-${uniqueName()}`);
    const throwaways = [];
    for (let i = 0; i < 12; i++) {
      throwaways.push(await person(uniqueIp(), `dev-${uniqueName()}`, referrer.referralCode));
    }
    for (const t of throwaways) {
      await publishedPost(t);
      expect((await call("POST", "/v1/me/checkin", { token: t.accessToken })).status).toBe(200);
    }
    expect((await userDoc(referrer.id)).gemBalance).toBe(0);
    const list = await referralsOf(referrer);
    expect(list.body.items.map((i) => i.status)).toEqual(throwaways.map(() => "pending"));
  });

  it("needs a signed-in caller", async () => {
    expect((await call("GET", "/v1/me/referrals")).status).toBe(401);
  });
});
