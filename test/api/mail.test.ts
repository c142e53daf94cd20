import { describe, expect, it } from "vitest";
import type { EmailOutboxDoc } from "../../src/db";
import { emailDeliveryJob, emailIdempotencyKey } from "../../src/features/mail/delivery";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips } from "../support/api";
import {
  depsLater,
  eventually,
  failMailTo,
  healMailTo,
  linkIn,
  mailFor,
  mailsTo,
  sweep,
  tagOf,
  tokenIn,
} from "../support/delivery";
import { appWith, testDeps } from "../support/deps";
import { signupUser, TEST_EMAIL_DOMAIN, uniqueName } from "../support/users";

const deps = testDeps();
const MINUTE = 60_000;

const outbox = (userId: string, template: EmailOutboxDoc["template"]) =>
  deps.db.emailOutbox.find({ userId: new ObjectId(userId), template }, { sort: { _id: 1 } });

/** The outbox record once `settled` says so (the send runs after the response). */
const outboxWhen = (userId: string, template: EmailOutboxDoc["template"], settled: (d: EmailOutboxDoc) => boolean) =>
  eventually(`${template} outbox record`, async () => (await outbox(userId, template)).find(settled));

const forgot = (email: string, fetcher?: (r: Request) => Promise<Response>) =>
  call("POST", "/v1/auth/password/forgot", { body: { email } }, fetcher);
const reset = (token: string, password: string) =>
  call("POST", "/v1/auth/password/reset", { body: { token, password } });
const login = (login: string, password: string, device?: { deviceId: string; platform?: string }) =>
  call<{ accessToken: string }>("POST", "/v1/auth/login", { body: { login, password, ...device } });

describe("verification mail", () => {
  it("reaches the address with a link (same in text and HTML) that verifies it, then forgets the token", async () => {
    const user = await signupUser();
    const mail = await mailFor(user.email, "verify_email");
    expect(mail).toMatchObject({
      to: [user.email],
      from: "Circle <no-reply@circle.example>",
      subject: "Confirm your email for Circle",
    });
    expect(mail.text).toContain(`Hi @${user.username},`);
    const link = linkIn(mail, "/verify-email");
    expect(link.origin).toBe("https://circle.example");

    const verified = await call("POST", "/v1/auth/email/verify", { body: { token: link.searchParams.get("token") } });
    expect(verified.status).toBe(204);
    const me = await call<{ emailVerified: boolean }>("GET", "/v1/me", { token: user.accessToken });
    expect(me.body.emailVerified).toBe(true);

    const [record] = await outbox(user.id, "verify_email");
    expect(record).toMatchObject({ status: "sent", attempts: 1, providerId: mail.id, lastError: null });
    expect(mail.idempotencyKey).toBe(emailIdempotencyKey(record!._id));
    expect(tagOf(mail, "message_id")).toBe(record!._id.toHexString());
    // Kept for debugging without the link, and only for the retention period.
    expect(record?.data).toEqual({ username: user.username });
    expect(record!.expireAt!.getTime() - record!.sentAt!.getTime()).toBe(14 * 24 * 60 * MINUTE);
  });
});

describe("password reset mail", () => {
  it("carries a token that resets the password", async () => {
    const user = await signupUser();
    expect((await forgot(user.email.toUpperCase())).status).toBe(202);
    const mail = await mailFor(user.email, "password_reset");
    expect(mail.subject).toBe("Reset your Circle password");
    expect(mail.text).toContain("The link works for 30 minutes");
    expect((await reset(tokenIn(mail, "/reset-password"), "a brand new secret")).status).toBe(204);
    expect((await login(user.username, "a brand new secret")).status).toBe(200);
    expect((await login(user.username, user.password)).status).toBe(401);
  });
});

describe("email change", () => {
  it("mails the link to the new address and notices without it to the old one, before and after", async () => {
    const user = await signupUser();
    const next = `${uniqueName("n")}@${TEST_EMAIL_DOMAIN}`;
    const res = await call("POST", "/v1/me/email", {
      token: user.accessToken,
      body: { email: next, password: user.password },
    });
    expect(res.status, res.text).toBe(202);

    const [link, requested] = await Promise.all([
      mailFor(next, "verify_email_change"),
      mailFor(user.email, "email_change_requested"),
    ]);
    expect(link.subject).toBe("Confirm your new email for Circle");
    expect(requested.subject).toBe("Your Circle email is about to change");
    expect(requested.text).toContain(`${next[0]}***@${TEST_EMAIL_DOMAIN}`);
    for (const mail of [requested]) {
      expect(`${mail.text}${mail.html}`).not.toContain(next);
      expect(mail.text).not.toMatch(/token=/);
    }

    const verified = await call("POST", "/v1/auth/email/verify", { body: { token: tokenIn(link, "/verify-email") } });
    expect(verified.status).toBe(204);
    const changed = await mailFor(user.email, "email_changed");
    expect(changed.subject).toBe("Your Circle email was changed");
    expect(changed.text).toContain("/settings/security");
    expect(`${changed.text}${changed.html}`).not.toContain(next);
    // The new address got exactly its link; nothing else went there.
    expect((await mailsTo(next)).map((m) => tagOf(m, "template"))).toEqual(["verify_email_change"]);
  });
});

describe("new sign-in notice", () => {
  it("mails the owner when the account signs in on a device it has not used, once per device", async () => {
    const user = await signupUser({ deviceId: "signup-phone", platform: "ios" });
    const known = await login(user.username, user.password, { deviceId: "signup-phone", platform: "ios" });
    const fresh = await login(user.username, user.password, { deviceId: "borrowed-tablet", platform: "android" });
    expect([known.status, fresh.status]).toEqual([200, 200]);
    // The notice's outbox record goes in the sign-in's own batch: no round trip of its own (the send follows
    // the response).
    expect(roundTrips(fresh.headers).mongo).toBe(roundTrips(known.headers).mongo);

    const notice = await mailFor(user.email, "new_sign_in");
    expect(notice.subject).toBe("New sign-in to your Circle account");
    expect(notice.text).toContain("(an Android device)");
    expect(notice.text).toContain("https://circle.example/forgot-password");
    expect((await login(user.username, user.password, { deviceId: "borrowed-tablet" })).status).toBe(200);
    expect(await outbox(user.id, "new_sign_in")).toHaveLength(1);
  });

  it("respects notificationPreferences.email; sign-ins without a device id send nothing", async () => {
    const user = await signupUser();
    const off = await call("PATCH", "/v1/me", {
      token: user.accessToken,
      body: { notificationPreferences: { email: false } },
    });
    expect(off.status).toBe(200);
    expect((await login(user.username, user.password, { deviceId: "new-laptop", platform: "web" })).status).toBe(200);
    const other = await signupUser();
    expect((await login(other.username, other.password)).status).toBe(200);
    // Both signed in; the verification mails they got at signup show their mail flows.
    await Promise.all([mailFor(user.email, "verify_email"), mailFor(other.email, "verify_email")]);
    expect(await outbox(user.id, "new_sign_in")).toEqual([]);
    expect(await outbox(other.id, "new_sign_in")).toEqual([]);
  });
});

describe("when Resend is down", () => {
  it("keeps the message pending with the provider's error, and the sweep sends it later", async () => {
    const user = await signupUser();
    await mailFor(user.email, "verify_email");
    await failMailTo(user.email, { status: 503, retryAfterSeconds: 1 });
    expect((await forgot(user.email)).status).toBe(202);
    const pending = await outboxWhen(user.id, "password_reset", (d) => d.attempts >= 1);
    expect(pending).toMatchObject({
      status: "pending",
      attempts: 1,
      sentAt: null,
      lastError: { status: 503, name: "service_unavailable", message: "API is temporarily unavailable" },
    });
    // First retry after EMAIL_RETRY_BASE_SECONDS (30 s).
    expect(pending.nextAttemptAt!.getTime() - pending.lastError!.at.getTime()).toBe(30_000);
    expect((await mailsTo(user.email)).filter((m) => tagOf(m, "template") === "password_reset")).toEqual([]);

    // Still down a minute later: the sweep tries, fails, and backs off further.
    const retry = await sweep(emailDeliveryJob, depsLater(MINUTE));
    expect(retry.outcome).toBe("succeeded");
    const again = (await outbox(user.id, "password_reset"))[0]!;
    expect(again).toMatchObject({ status: "pending", attempts: 2 });
    expect(again.nextAttemptAt!.getTime() - again.lastError!.at.getTime()).toBe(60_000);

    await healMailTo(user.email);
    expect((await sweep(emailDeliveryJob, depsLater(3 * MINUTE))).outcome).toBe("succeeded");
    const mail = await mailFor(user.email, "password_reset");
    expect((await outbox(user.id, "password_reset"))[0]).toMatchObject({
      status: "sent",
      attempts: 3,
      providerId: mail.id,
    });
    expect((await reset(tokenIn(mail, "/reset-password"), "sent after the outage")).status).toBe(204);
  });

  it("marks the message failed after EMAIL_MAX_ATTEMPTS, keeping the last error and dropping the token", async () => {
    const settings = { EMAIL_MAX_ATTEMPTS: "2" };
    const user = await signupUser();
    await mailFor(user.email, "verify_email");
    await failMailTo(user.email, { status: 500 });
    expect((await forgot(user.email, appWith(settings))).status).toBe(202);
    await outboxWhen(user.id, "password_reset", (d) => d.attempts >= 1);
    await sweep(emailDeliveryJob, depsLater(MINUTE, settings));
    const [failed] = await outbox(user.id, "password_reset");
    expect(failed).toMatchObject({
      status: "failed",
      attempts: 2,
      nextAttemptAt: null,
      lastError: { status: 500, name: "application_error", message: "An unexpected error occurred." },
    });
    expect(failed?.data).toEqual({ username: user.username });
    expect(failed!.expireAt!.getTime() - failed!.failedAt!.getTime()).toBe(14 * 24 * 60 * MINUTE);

    await healMailTo(user.email);
    await sweep(emailDeliveryJob, depsLater(10 * MINUTE, settings));
    expect((await outbox(user.id, "password_reset"))[0]?.status).toBe("failed");
    expect((await mailsTo(user.email)).map((m) => tagOf(m, "template"))).toEqual(["verify_email"]);
  });
});

describe("a crash between sending and recording", () => {
  it("sends the mail once: the retry's Idempotency-Key makes Resend answer with the first send", async () => {
    const user = await signupUser();
    await mailFor(user.email, "verify_email");
    await failMailTo(user.email, { status: 503, count: 1 });
    expect((await forgot(user.email)).status).toBe(202);
    await outboxWhen(user.id, "password_reset", (d) => d.attempts >= 1);

    const crashed = await sweep(emailDeliveryJob, depsLater(MINUTE), "email-sent");
    expect(crashed.outcome).toBe("failed");
    const [first] = (await mailsTo(user.email)).filter((m) => tagOf(m, "template") === "password_reset");
    expect(first).toBeDefined();
    // Sent, but nothing recorded it.
    expect((await outbox(user.id, "password_reset"))[0]).toMatchObject({ status: "pending", attempts: 1 });

    expect((await sweep(emailDeliveryJob, depsLater(2 * MINUTE))).outcome).toBe("succeeded");
    const resets = (await mailsTo(user.email)).filter((m) => tagOf(m, "template") === "password_reset");
    expect(resets.map((m) => m.id)).toEqual([first?.id]);
    expect((await outbox(user.id, "password_reset"))[0]).toMatchObject({ status: "sent", providerId: first?.id });
  });
});

describe("outbox indexes", () => {
  it("no longer deletes unsent mail after a day, and expires settled mail at expireAt", async () => {
    const names = (await deps.db.emailOutbox.listIndexes()).map((i) => ({
      name: i.name,
      ttl: i.expireAfterSeconds ?? null,
      key: i.key,
    }));
    expect(names).not.toContainEqual(expect.objectContaining({ name: "ttl_1d" }));
    expect(names).toContainEqual({ name: "ttl_expire_at", ttl: 0, key: { expireAt: 1 } });
  });
});
