import { describeError, MAX_ERROR_MESSAGE, type ProviderError, parseObject, retryAfter } from "./provider";

/**
 * Resend's send-email call (https://resend.com/docs/api-reference/emails/send-email): `POST {base}/emails` with
 * a Bearer key and an `Idempotency-Key`, answered `{ id }` or Resend's error body `{ statusCode, message, name }`.
 * Outcomes are classified here, so callers only decide what to do with them.
 */

export interface ResendSettings {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
}

export interface OutgoingEmail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  tags: { name: string; value: string }[];
  /** Stable per message: Resend answers a repeat within 24 hours with the first send's id, sending nothing. */
  idempotencyKey: string;
}

export type { ProviderError };

export type EmailSendOutcome =
  | { kind: "sent"; id: string }
  /** Resend says this key already sent a mail (with another body): it went out; never send it again. */
  | { kind: "already_sent" }
  | { kind: "retry"; error: ProviderError; retryAfterSeconds: number | null }
  | { kind: "rejected"; error: ProviderError };

// Cloudflare in front of Resend refuses requests without a User-Agent (error 1010); Workers send none.
const USER_AGENT = "circle-api (+https://circle.example)";

export async function sendEmail(settings: ResendSettings, email: OutgoingEmail): Promise<EmailSendOutcome> {
  let response: Response;
  try {
    response = await fetch(`${settings.baseUrl}/emails`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${settings.apiKey}`,
        "content-type": "application/json",
        "idempotency-key": email.idempotencyKey,
        "user-agent": USER_AGENT,
      },
      body: JSON.stringify({
        from: email.from,
        to: [email.to],
        subject: email.subject,
        text: email.text,
        html: email.html,
        tags: email.tags,
      }),
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
  } catch (caught) {
    const error = { status: 0, name: "network_error", message: describeError(caught) };
    return { kind: "retry", error, retryAfterSeconds: null };
  }
  const text = await response.text();
  const body = parseObject(text);
  if (response.ok && typeof body?.id === "string") return { kind: "sent", id: body.id };
  const error: ProviderError = {
    status: response.status,
    name: typeof body?.name === "string" ? body.name : "http_error",
    message: (typeof body?.message === "string" ? body.message : text).slice(0, MAX_ERROR_MESSAGE),
  };
  if (response.status === 409 && error.name === "invalid_idempotent_request") return { kind: "already_sent" };
  // Rate limits, outages, a request still in flight under this key, and a missing or wrong key (an operator can
  // fix that; the message should survive it) are worth retrying. Anything else will not change on a retry.
  const retryable =
    response.status === 429 ||
    response.status >= 500 ||
    response.status === 401 ||
    response.status === 403 ||
    (response.status === 409 && error.name === "concurrent_idempotent_requests");
  if (!retryable) return { kind: "rejected", error };
  return { kind: "retry", error, retryAfterSeconds: retryAfter(response.headers.get("retry-after")) };
}
