import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { NotificationDoc } from "../../src/db";
import { notify } from "../../src/features/notifications/service";
import { pushDeliveryJob } from "../../src/features/push/delivery";
import { registerPushDelivery } from "../../src/features/push/listener";
import { newBackgroundQueue, withBackgroundQueue } from "../../src/platform/background";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, uniqueIp } from "../support/api";
import {
  depsLater,
  device,
  eventually,
  failPushesTo,
  healPushesTo,
  pushesArrive,
  pushesTo,
  registrationToken,
  sweep,
  uninstall,
} from "../support/delivery";
import { testDeps } from "../support/deps";
import { publishedPost } from "../support/posts";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const MINUTE = 60_000;
// Notifications this file records itself (not through a request) get their immediate send too.
registerPushDelivery();
type Fetcher = (request: Request) => Promise<Response>;

/** Registers an install with a push token on the user's account; returns the token. */
async function installApp(user: TestUser, platform = "android", pushToken = registrationToken()): Promise<string> {
  const res = await call("PUT", `/v1/me/devices/${crypto.randomUUID()}`, {
    token: user.accessToken,
    body: { platform, pushToken, appVersion: "3.1.0" },
  });
  expect(res.status, res.text).toBe(200);
  return pushToken;
}

const vote = (voter: TestUser, postId: string, fetcher?: Fetcher) =>
  call("PUT", `/v1/posts/${postId}/vote`, { token: voter.accessToken, ip: uniqueIp() }, fetcher);
const follow = (follower: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/follow`, { token: follower.accessToken });
const preferences = (user: TestUser, notificationPreferences: Record<string, unknown>) =>
  call("PATCH", "/v1/me", { token: user.accessToken, body: { notificationPreferences } });
const groups = (user: TestUser) =>
  deps.db.notifications.find({ userId: new ObjectId(user.id) }, { sort: { updatedAt: -1 } });
const devicesOf = async (user: TestUser) =>
  (await deps.db.users.findOne({ _id: new ObjectId(user.id) }, { projection: { devices: 1 } }))?.devices ?? [];

/** A notification the way a request records it, whose request then ends before its background work runs. */
async function noticeWithoutImmediateSend(recipient: TestUser, title: string, extra: Record<string, unknown> = {}) {
  await withBackgroundQueue(newBackgroundQueue(), () =>
    notify(deps, { type: "system", kind: "system", recipientId: recipient.id, title, ...extra }),
  );
}

/** Lets whatever a request queued after its response finish (the immediate send). */
const settle = () => new Promise((r) => setTimeout(r, 500));

/** HH:MM (UTC) `minutes` from now. */
function utcTime(minutes: number): string {
  return new Date(Date.now() + minutes * MINUTE).toISOString().slice(11, 16);
}

describe("grouped pushes", () => {
  it("sends one push per grouped notification that replaces itself on the device, badge = unread count", async () => {
    const [author, first, second, fan, elsewhere] = await crowd(5);
    const token = await installApp(author);
    const [post, unpushed] = await Promise.all([publishedPost(author), publishedPost(elsewhere)]);

    const voted = await vote(first, post.id);
    expect(voted.status).toBe(200);
    const [one] = await pushesArrive(token, 1);
    // The push goes out after the response: the vote costs what a vote for someone without a device costs.
    const plain = await vote(first, unpushed.id);
    expect(roundTrips(voted.headers)).toEqual(roundTrips(plain.headers));
    expect(one?.message).toMatchObject({
      token,
      notification: { title: `${first.username} voted on your post` },
      data: { type: "vote", postId: post.id, aggregationKey: `vote:${post.id}`, aggregationCount: "1" },
      android: { collapse_key: `vote:${post.id}`, notification: { tag: `vote:${post.id}`, notification_count: 1 } },
      apns: { headers: { "apns-collapse-id": `vote:${post.id}` }, payload: { aps: { badge: 1 } } },
    });

    expect((await vote(second, post.id)).status).toBe(200);
    const [, two] = await pushesArrive(token, 2);
    const shown = await device(token);
    // Replaced, not stacked: one notification on each platform's tray, saying what the group says now.
    expect(shown.tray.android).toHaveLength(1);
    expect(shown.tray.ios).toHaveLength(1);
    expect(shown.tray.android[0]).toMatchObject({
      title: `${second.username} and 1 other voted on your post`,
      replaces: one?.name,
      message: two?.name,
      badge: 1,
    });
    expect(shown.appBadge).toBe(1);

    // Another group stacks beside it, and the badge counts both unread items.
    expect((await follow(fan, author)).status).toBe(204);
    await pushesArrive(token, 3);
    const after = await device(token);
    expect(after.tray.android.map((n) => n.title)).toEqual([
      `${fan.username} followed you`,
      `${second.username} and 1 other voted on your post`,
    ]);
    expect(after.appBadge).toBe(2);
    expect((await groups(author)).every((g) => g.pushOwed === false)).toBe(true);
  });

  it("reaches every device of the recipient", async () => {
    const [author, voter] = await crowd(2);
    const [phone, tablet] = [await installApp(author, "ios"), await installApp(author, "android")];
    const post = await publishedPost(author);
    expect((await vote(voter, post.id)).status).toBe(200);
    await Promise.all([pushesArrive(phone, 1), pushesArrive(tablet, 1)]);
    expect((await device(phone)).tray.ios[0]?.title).toBe(`${voter.username} voted on your post`);
  });
});

describe("dead tokens", () => {
  it("removes a token FCM reports UNREGISTERED from the user's devices, keeping the device", async () => {
    const [author, voter] = await crowd(2);
    const token = await installApp(author);
    await uninstall(token);
    const post = await publishedPost(author);
    expect((await vote(voter, post.id)).status).toBe(200);
    await eventually("the token to go", async () => (await devicesOf(author)).every((d) => d.pushToken === null));
    expect(await devicesOf(author)).toEqual([expect.objectContaining({ platform: "android", pushToken: null })]);
    const listed = await call<{ items: { hasPushToken: boolean }[] }>("GET", "/v1/me/devices", {
      token: author.accessToken,
    });
    expect(listed.body.items).toEqual([expect.objectContaining({ hasPushToken: false })]);
  });

  it("removes a token FCM calls not a valid registration token, and only that one", async () => {
    const [author, voter] = await crowd(2);
    const good = await installApp(author, "ios");
    await installApp(author, "android", "not-a-real-fcm-token");
    const post = await publishedPost(author);
    expect((await vote(voter, post.id)).status).toBe(200);
    await pushesArrive(good, 1);
    await eventually("the bad token to go", async () =>
      (await devicesOf(author)).every((d) => d.pushToken !== "not-a-real-fcm-token"),
    );
    expect((await devicesOf(author)).map((d) => d.pushToken)).toEqual([good, null]);
  });
});

describe("preferences", () => {
  it("sends nothing when push is off, and owes nothing the sweep could send later", async () => {
    const [author, voter] = await crowd(2);
    const token = await installApp(author);
    expect((await preferences(author, { push: false })).status).toBe(200);
    const post = await publishedPost(author);
    expect((await vote(voter, post.id)).status).toBe(200);
    await settle();
    await sweep(pushDeliveryJob, depsLater(5 * MINUTE));
    expect(await pushesTo(token)).toEqual([]);
    const [group] = await groups(author);
    expect(group?.type).toBe("vote");
    expect(group?.pushOwed).toBeUndefined();
  });

  it("drops what is owed when push is turned off before it goes out", async () => {
    const [author] = await crowd(1);
    const token = await installApp(author);
    await noticeWithoutImmediateSend(author, "Your weekly recap is ready");
    expect((await preferences(author, { push: false })).status).toBe(200);
    await sweep(pushDeliveryJob, depsLater(5 * MINUTE));
    expect(await pushesTo(token)).toEqual([]);
    expect((await groups(author))[0]?.pushOwed).toBe(false);
  });

  it("pushes promotional notices only to recipients who consented to marketing", async () => {
    const [declined, accepted, unconsented] = await crowd(3);
    const [no, yes, bypass] = [await installApp(declined), await installApp(accepted), await installApp(unconsented)];
    // Consent turns the preference on with it; the preference alone (PATCH /v1/me) is not consent.
    const consent = await call("POST", "/v1/me/consents", {
      token: accepted.accessToken,
      body: { kind: "marketing", granted: true },
    });
    expect(consent.status, consent.text).toBe(201);
    expect((await preferences(unconsented, { marketing: true })).status).toBe(200);
    for (const user of [declined, accepted, unconsented]) {
      await notify(deps, { type: "system", recipientId: user.id, title: "Flux is 50% off this week", marketing: true });
    }
    const [promo] = await pushesArrive(yes, 1);
    expect(promo?.message).toMatchObject({ notification: { title: "Flux is 50% off this week" } });
    await sweep(pushDeliveryJob, depsLater(5 * MINUTE));
    expect(await pushesTo(no)).toEqual([]);
    expect(await pushesTo(bypass)).toEqual([]);
    // The inbox still has it for both; only the one who opted in was ever owed a push.
    const [kept] = await groups(declined);
    expect(kept?.title).toBe("Flux is 50% off this week");
    expect(kept?.pushOwed).toBeUndefined();

    // Opting out after a promo was owed, before it went out: it never goes.
    await noticeWithoutImmediateSend(accepted, "Last day: Flux at 50% off", { marketing: true });
    expect((await preferences(accepted, { marketing: false })).status).toBe(200);
    await sweep(pushDeliveryJob, depsLater(5 * MINUTE));
    expect(await pushesTo(yes)).toHaveLength(1);
  });
});

describe("quiet hours", () => {
  it("holds pushes during quiet hours (UTC without a stored time zone) and sends one summary when they end", async () => {
    const [author, voter, fan] = await crowd(3);
    const token = await installApp(author);
    const quietHours = { start: utcTime(-30), end: utcTime(60) };
    expect((await preferences(author, { quietHours })).status).toBe(200);
    const me = await call<{ notificationPreferences: unknown }>("GET", "/v1/me", { token: author.accessToken });
    expect(me.body.notificationPreferences).toMatchObject({ quietHours });

    const post = await publishedPost(author);
    expect((await vote(voter, post.id)).status).toBe(200);
    expect((await follow(fan, author)).status).toBe(204);
    await eventually("both held", async () => (await groups(author)).filter((g) => g.pushHeld).length === 2);
    const held = await groups(author);
    // The next time the UTC clock shows the end.
    const end = new Date(`${new Date().toISOString().slice(0, 10)}T${quietHours.end}:00.000Z`);
    if (end.getTime() <= Date.now()) end.setUTCDate(end.getUTCDate() + 1);
    for (const g of held) expect(g.pushNotBefore?.toISOString()).toBe(end.toISOString());

    // Still quiet 30 minutes on: nothing.
    await sweep(pushDeliveryJob, depsLater(30 * MINUTE));
    expect(await pushesTo(token)).toEqual([]);

    await sweep(pushDeliveryJob, depsLater(61 * MINUTE));
    const [summary, ...rest] = await pushesTo(token);
    expect(rest).toEqual([]);
    expect(summary?.message).toMatchObject({
      notification: { title: "2 new notifications" },
      android: { notification: { tag: "summary", notification_count: 2 } },
    });
    const body = (summary?.message.notification as { body?: string } | undefined)?.body ?? "";
    expect(body).toContain(`${fan.username} followed you`);
    expect(body).toContain(`${voter.username} voted on your post`);
  });

  it("refuses malformed quiet hours naming the field", async () => {
    const [user] = await crowd(1);
    const res = await preferences(user, { quietHours: { start: "22:00", end: "24:00" } });
    expect(res.status).toBe(400);
    expect(res.text).toContain("notificationPreferences.quietHours.end");
    const same = await preferences(user, { quietHours: { start: "07:00", end: "07:00" } });
    expect(same.status).toBe(400);
    expect((await preferences(user, { quietHours: null })).status).toBe(200);
  });
});

describe("hourly cap", () => {
  it("sends PUSH_MAX_PER_USER_PER_HOUR pushes an hour; the rest fold into one summary in the next hour", async () => {
    // The cap counts per UTC clock hour: the capped app's clock stands at most half an hour back, so the test
    // never straddles the top of the hour.
    const hourStart = Date.now() - (Date.now() % (60 * MINUTE));
    const offset = -Math.max(0, Date.now() - (hourStart + 30 * MINUTE));
    const settings = { PUSH_MAX_PER_USER_PER_HOUR: "2" };
    const cappedDeps = depsLater(offset, settings);
    const app = createApp(() => cappedDeps);
    const capped: Fetcher = async (request) => app.fetch(request, {});
    const [author, voter] = await crowd(2);
    const token = await installApp(author);
    const posts = await Promise.all([1, 2, 3, 4].map(() => publishedPost(author)));
    for (const [i, post] of posts.entries()) {
      expect((await vote(voter, post.id, capped)).status).toBe(200);
      if (i < 2) await pushesArrive(token, i + 1);
    }
    await eventually("the rest held", async () => (await groups(author)).filter((g) => g.pushHeld).length === 2);
    expect(await pushesTo(token)).toHaveLength(2);

    await sweep(pushDeliveryJob, depsLater(hourStart + 61 * MINUTE - Date.now(), settings));
    const pushes = await pushesTo(token);
    expect(pushes).toHaveLength(3);
    expect(pushes[2]?.message).toMatchObject({
      notification: { title: "2 new notifications" },
      apns: { headers: { "apns-collapse-id": "summary" }, payload: { aps: { badge: 4 } } },
    });
  });
});

describe("durability", () => {
  it("a push whose request ended before sending it goes out with the sweep, once", async () => {
    const [author] = await crowd(1);
    const token = await installApp(author);
    await noticeWithoutImmediateSend(author, "Your image is trending");
    await settle();
    expect(await pushesTo(token)).toEqual([]);
    // Within the grace the immediate attempt has, the sweep leaves it alone.
    await sweep(pushDeliveryJob, depsLater(0));
    expect(await pushesTo(token)).toEqual([]);

    await sweep(pushDeliveryJob, depsLater(2 * MINUTE));
    expect((await pushesTo(token)).map((p) => p.message.notification)).toEqual([{ title: "Your image is trending" }]);
    await sweep(pushDeliveryJob, depsLater(3 * MINUTE));
    expect(await pushesTo(token)).toHaveLength(1);
  });

  it("when FCM is down, owes the push again with backoff and the sweep sends it once FCM is back", async () => {
    const [author, voter] = await crowd(2);
    const token = await installApp(author);
    await failPushesTo(token, { status: 503, retryAfterSeconds: 0 });
    const post = await publishedPost(author);
    expect((await vote(voter, post.id)).status).toBe(200);
    const owed = await eventually("the push owed again", async () =>
      (await groups(author)).find((g) => g.pushAttempts === 1 && g.pushOwed),
    );
    expect(owed.pushNotBefore!.getTime() - owed.pushedAt!.getTime()).toBe(30_000);
    expect(await pushesTo(token)).toEqual([]);

    await healPushesTo(token);
    await sweep(pushDeliveryJob, depsLater(MINUTE));
    const [push] = await pushesTo(token);
    expect(push?.message).toMatchObject({ notification: { title: `${voter.username} voted on your post` } });
    await sweep(pushDeliveryJob, depsLater(5 * MINUTE));
    expect(await pushesTo(token)).toHaveLength(1);
  });

  it("never pushes twice across a crash after FCM accepted the push", async () => {
    const [author] = await crowd(1);
    const token = await installApp(author);
    await noticeWithoutImmediateSend(author, "Your streak is on fire");
    const crashed = await sweep(pushDeliveryJob, depsLater(2 * MINUTE), "push-sent");
    expect(crashed.outcome).toBe("failed");
    expect(await pushesTo(token)).toHaveLength(1);
    await sweep(pushDeliveryJob, depsLater(3 * MINUTE));
    await sweep(pushDeliveryJob, depsLater(10 * MINUTE));
    expect(await pushesTo(token)).toHaveLength(1);
  });

  it("sends an owed push once however many senders race for it", async () => {
    const [author] = await crowd(1);
    const token = await installApp(author);
    await noticeWithoutImmediateSend(author, "You earned 25 gems");
    const { deliverPushes } = await import("../../src/features/push/delivery");
    const racers = await Promise.all(
      Array.from({ length: 8 }, () => deliverPushes(depsLater(2 * MINUTE), [new ObjectId(author.id)])),
    );
    expect(racers.reduce((n, r) => n + r.pushed, 0)).toBe(1);
    expect(await pushesTo(token)).toHaveLength(1);
    const [doc] = (await groups(author)) as NotificationDoc[];
    expect(doc?.pushOwed).toBe(false);
  });
});
