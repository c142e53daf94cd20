import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, mailRetrySpanSeconds } from "../../src/config";
import { EMAIL_TEMPLATES } from "../../src/db";
import { retryDelaySeconds } from "../../src/features/mail/delivery";
import { renderMail, TemplateDataError } from "../../src/features/mail/templates";
import { unitEnv } from "./support/env";

const ctx = { appBaseUrl: "https://circle.example", passwordResetTtlMinutes: 30, emailVerificationTtlHours: 48 };
const data = {
  token: "tok_abc-123",
  username: "ada_l",
  expiresAt: "2026-05-03T08:00:00.000Z",
  changedAt: "2026-05-01T08:15:30.000Z",
  signedInAt: "2026-05-01T09:00:00.000Z",
  newEmailMasked: "n***@example.test",
  platform: "ios",
};

describe("mail templates", () => {
  it("render every template as text and HTML, greeting the user, with nothing left unescaped", () => {
    for (const template of EMAIL_TEMPLATES) {
      const mail = renderMail(template, data, ctx);
      expect(mail.subject.length, template).toBeGreaterThan(5);
      expect(mail.text, template).toMatch(/^Hi @ada_l,\n\n/);
      expect(mail.html, template).toContain('<p style="margin:0 0 16px">Hi @ada_l,</p>');
      expect(mail.html, template).not.toMatch(/\{\{|undefined|NaN/);
    }
  });

  it("link to the app's universal links with the token, the same in text and HTML", () => {
    const links: [string, string][] = [
      ["verify_email", "https://circle.example/verify-email?token=tok_abc-123"],
      ["verify_email_change", "https://circle.example/verify-email?token=tok_abc-123"],
      ["password_reset", "https://circle.example/reset-password?token=tok_abc-123"],
    ];
    for (const [template, link] of links) {
      const mail = renderMail(template as (typeof EMAIL_TEMPLATES)[number], data, ctx);
      expect(mail.text).toContain(link);
      expect(mail.html).toContain(`href="${link}"`);
    }
    // Notices carry no token, only the way back in.
    for (const template of ["password_changed", "email_change_requested", "email_changed", "new_sign_in"] as const) {
      const mail = renderMail(template, data, ctx);
      expect(`${mail.text}${mail.html}`).not.toContain("tok_abc-123");
      expect(mail.text).toContain("https://circle.example/forgot-password");
      expect(mail.text).toContain("https://circle.example/settings/security");
    }
  });

  it("say how long links work and when things happened, in UTC", () => {
    expect(renderMail("password_reset", data, ctx).text).toContain("works for 30 minutes");
    expect(renderMail("verify_email", data, { ...ctx, emailVerificationTtlHours: 1 }).text).toContain("1 hour,");
    expect(renderMail("password_changed", data, ctx).text).toContain("on 2026-05-01 08:15 UTC");
    expect(renderMail("new_sign_in", data, ctx).text).toContain("(an iPhone or iPad) on 2026-05-01 09:00 UTC");
  });

  it("escape what they show in HTML", () => {
    const mail = renderMail(
      "email_change_requested",
      { ...data, newEmailMasked: `<img src=x onerror="alert(1)">` },
      ctx,
    );
    expect(mail.html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
    expect(mail.html).not.toContain("<img");
  });

  it("are deterministic (a retry must send the first attempt's exact body) and refuse missing data", () => {
    expect(renderMail("verify_email", data, ctx)).toEqual(renderMail("verify_email", { ...data }, ctx));
    expect(() => renderMail("password_reset", { username: "ada_l" }, ctx)).toThrow(TemplateDataError);
    expect(() => renderMail("password_reset", { username: "ada_l" }, ctx)).toThrow(/data\.token/);
  });
});

describe("mail retries", () => {
  const mail = { retryBaseSeconds: 30, retryMaxSeconds: 3_600 };

  it("back off exponentially from the base, capped, and honour a longer Retry-After", () => {
    expect([1, 2, 3, 4, 8].map((a) => retryDelaySeconds(mail, a, null))).toEqual([30, 60, 120, 240, 3_600]);
    expect(retryDelaySeconds(mail, 1, 90)).toBe(90);
    expect(retryDelaySeconds(mail, 3, 5)).toBe(120);
    expect(retryDelaySeconds(mail, 1, 999_999)).toBe(3_600);
  });

  it("must end inside Resend's 24-hour idempotency window, or the config is refused", () => {
    expect(mailRetrySpanSeconds({ maxAttempts: 8, ...mail })).toBe(30 + 60 + 120 + 240 + 480 + 960 + 1_920);
    expect(() => loadConfig(unitEnv({ EMAIL_MAX_ATTEMPTS: "20", EMAIL_RETRY_MAX_SECONDS: "21600" }))).toThrow(
      /retries must end within 23 hours/,
    );
    expect(loadConfig(unitEnv()).mail).toMatchObject({ maxAttempts: 8, retentionDays: 14 });
  });
});

describe("delivery settings", () => {
  const keyFile = {
    type: "service_account",
    project_id: "circle-prod",
    private_key_id: "abc123",
    private_key: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    client_email: "push@circle-prod.iam.gserviceaccount.com",
    token_uri: "https://oauth2.googleapis.com/token",
  };

  it("take the FCM key file as JSON or base64 of it, and are off without one", () => {
    const expected = {
      projectId: "circle-prod",
      privateKeyId: "abc123",
      clientEmail: "push@circle-prod.iam.gserviceaccount.com",
      tokenUri: "https://oauth2.googleapis.com/token",
    };
    const json = JSON.stringify(keyFile);
    expect(loadConfig(unitEnv({ FCM_SERVICE_ACCOUNT_JSON: json })).push.serviceAccount).toMatchObject(expected);
    const base64 = Buffer.from(json).toString("base64");
    expect(loadConfig(unitEnv({ FCM_SERVICE_ACCOUNT_JSON: base64 })).push.serviceAccount).toMatchObject(expected);
    expect(loadConfig(unitEnv()).push.serviceAccount).toBeUndefined();
    expect(loadConfig(unitEnv()).mail.resendApiKey).toBeUndefined();
  });

  it("name a bad key file without echoing the key", () => {
    const broken = JSON.stringify({ ...keyFile, client_email: undefined });
    let message = "";
    try {
      loadConfig(unitEnv({ FCM_SERVICE_ACCOUNT_JSON: broken }));
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toContain("FCM_SERVICE_ACCOUNT_JSON: not a service-account key file");
    expect(message).toContain("missing: client_email");
    expect(message).not.toContain("PRIVATE KEY");
    expect(() => loadConfig(unitEnv({ FCM_SERVICE_ACCOUNT_JSON: "%%%" }))).toThrow(/FCM_SERVICE_ACCOUNT_JSON/);
    expect(() => loadConfig(unitEnv({ EMAIL_FROM: "Circle <nobody>" }))).toThrow(/EMAIL_FROM/);
  });
});
