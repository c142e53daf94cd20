import type { EmailTemplate } from "../../db";

/**
 * The mails the API sends, as plain text and HTML, built from an outbox message's template and data. Pure and
 * deterministic (the same message renders to the same bytes), which the provider's Idempotency-Key relies on:
 * a retry must send exactly the body of the first attempt. Links are universal links under APP_LINK_BASE_URL;
 * the app opens them and calls the API (`/verify-email?token=` → POST /v1/auth/email/verify, `/reset-password
 * ?token=` → POST /v1/auth/password/reset).
 */

export interface MailContext {
  appBaseUrl: string;
  passwordResetTtlMinutes: number;
  emailVerificationTtlHours: number;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** The message's data lacks a field its template needs: sending it would never work. */
export class TemplateDataError extends Error {
  override name = "TemplateDataError";
}

/** One paragraph of a mail: text, or a labelled link (a button in HTML, the bare URL in text). */
type Part = string | { link: string; label: string };

interface Draft {
  subject: string;
  greeting: string;
  parts: Part[];
}

export const mailLinks = (base: string) => ({
  verifyEmail: (token: string) => `${base}/verify-email?token=${encodeURIComponent(token)}`,
  resetPassword: (token: string) => `${base}/reset-password?token=${encodeURIComponent(token)}`,
  forgotPassword: () => `${base}/forgot-password`,
  security: () => `${base}/settings/security`,
});

export function renderMail(template: EmailTemplate, data: Record<string, string>, ctx: MailContext): RenderedMail {
  return layout(draft(template, data, ctx));
}

function draft(template: EmailTemplate, data: Record<string, string>, ctx: MailContext): Draft {
  const need = (field: string): string => {
    const value = data[field];
    if (typeof value !== "string" || value === "") throw new TemplateDataError(`${template} needs data.${field}`);
    return value;
  };
  const links = mailLinks(ctx.appBaseUrl);
  const greeting = `Hi @${need("username")},`;
  const notYou = (what: string): Part[] => [
    `If ${what} wasn't you, reset your password now and sign out your other devices:`,
    { link: links.forgotPassword(), label: "Reset my password" },
    { link: links.security(), label: "Review where I'm signed in" },
  ];
  switch (template) {
    case "verify_email":
      return {
        subject: "Confirm your email for Circle",
        greeting,
        parts: [
          "Please confirm that this is your address, so you can recover your account if you ever need to.",
          { link: links.verifyEmail(need("token")), label: "Confirm my email" },
          `The link works for ${hours(ctx.emailVerificationTtlHours)}, once. If you didn't sign up for Circle, ignore this mail.`,
        ],
      };
    case "password_reset":
      return {
        subject: "Reset your Circle password",
        greeting,
        parts: [
          "Someone asked to reset the password of your Circle account. If it was you, choose a new one here:",
          { link: links.resetPassword(need("token")), label: "Choose a new password" },
          `The link works for ${ctx.passwordResetTtlMinutes} minutes, once, and signs out every device. ` +
            "If you didn't ask for it, ignore this mail: your password stays as it is.",
        ],
      };
    case "password_changed":
      return {
        subject: "Your Circle password was changed",
        greeting,
        parts: [
          `The password of your account was changed on ${when(need("changedAt"))}; your other devices were signed out.`,
          ...notYou("this"),
        ],
      };
    case "verify_email_change":
      return {
        subject: "Confirm your new email for Circle",
        greeting,
        parts: [
          "Confirm this address as the new email of your Circle account:",
          { link: links.verifyEmail(need("token")), label: "Use this email" },
          `The link works until ${when(need("expiresAt"))}. Until you confirm, the account keeps its current address.`,
        ],
      };
    case "email_change_requested":
      return {
        subject: "Your Circle email is about to change",
        greeting,
        parts: [
          `Someone signed in to your account asked to change its email to ${need("newEmailMasked")}. Nothing ` +
            `changes unless that address confirms before ${when(need("expiresAt"))}.`,
          ...notYou("this"),
        ],
      };
    case "email_changed":
      return {
        subject: "Your Circle email was changed",
        greeting,
        parts: [
          `Since ${when(need("changedAt"))} the email of your account is ${need("newEmailMasked")}; this address no ` +
            "longer gets mail about it.",
          ...notYou("this"),
        ],
      };
    case "new_sign_in":
      return {
        subject: "New sign-in to your Circle account",
        greeting,
        parts: [
          `Your account was signed in on a device it hadn't used before (${platformName(need("platform"))}) ` +
            `on ${when(need("signedInAt"))}.`,
          "If it was you, there's nothing to do.",
          ...notYou("it"),
        ],
      };
  }
}

function hours(n: number): string {
  return n === 1 ? "1 hour" : `${n} hours`;
}

/** `2026-05-01T08:00:00.000Z` → `2026-05-01 08:00 UTC` (the account's time zone is not known to mail yet). */
function when(iso: string): string {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return match ? `${match[1]} ${match[2]} UTC` : iso;
}

function platformName(platform: string): string {
  const names: Record<string, string> = { ios: "an iPhone or iPad", android: "an Android device", web: "a browser" };
  return names[platform] ?? "a device";
}

function layout({ subject, greeting, parts }: Draft): RenderedMail {
  const text = [greeting, ...parts.map((p) => (typeof p === "string" ? p : `${p.label}: ${p.link}`)), "— Circle"].join(
    "\n\n",
  );
  const body = parts
    .map((p) =>
      typeof p === "string"
        ? `<p style="margin:0 0 16px">${escapeHtml(p)}</p>`
        : `<p style="margin:0 0 16px"><a href="${escapeHtml(p.link)}" style="display:inline-block;padding:10px 18px;` +
          `background:#5b3df5;color:#ffffff;border-radius:6px;text-decoration:none">${escapeHtml(p.label)}</a></p>`,
    )
    .join("\n");
  const html =
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>` +
    `<body style="margin:0;padding:24px;background:#f5f5f7;font:15px/1.5 -apple-system,Segoe UI,Roboto,sans-serif;color:#1d1d1f">` +
    `<div style="max-width:520px;margin:0 auto;background:#ffffff;border-radius:10px;padding:24px">\n` +
    `<p style="margin:0 0 16px">${escapeHtml(greeting)}</p>\n${body}\n` +
    `<p style="margin:24px 0 0;color:#6e6e73">— Circle</p></div></body></html>`;
  return { subject, text, html };
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}
