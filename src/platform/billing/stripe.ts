import { z } from "zod";
import { hmacSha256Hex, timingSafeEqual } from "../crypto";
import { ProviderUnavailableError, providerFetch, providerJson } from "./provider";

/**
 * Stripe on the wire. Webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`, where each v1 is
 * HMAC-SHA256 keyed by an endpoint secret over `<t>.<raw body>` (the raw bytes: Stripe's bodies are indented
 * JSON, so a re-serialization would not match); v0 and unknown schemes are ignored. The API (Checkout Sessions,
 * Subscriptions) takes form-encoded bodies with bracketed keys and a secret key as the bearer.
 */

export class StripeSignatureError extends Error {
  override name = "StripeSignatureError";
}

export interface StripeSignatureSettings {
  /** Every secret that may sign (two while a rolled secret is still live). */
  secrets: string[];
  toleranceSeconds: number;
  now: Date;
}

/** Verifies `Stripe-Signature` over the raw body; throws StripeSignatureError saying what is wrong. */
export async function verifyStripeSignature(
  rawBody: string,
  header: string | undefined,
  settings: StripeSignatureSettings,
): Promise<void> {
  if (!header) throw new StripeSignatureError("the Stripe-Signature header is missing");
  let timestamp: number | null = null;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    const scheme = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (scheme === "t" && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (scheme === "v1" && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (timestamp === null || signatures.length === 0) {
    throw new StripeSignatureError("the Stripe-Signature header has no timestamp or no v1 signature");
  }
  const age = Math.abs(settings.now.getTime() / 1000 - timestamp);
  if (age > settings.toleranceSeconds)
    throw new StripeSignatureError("the signature's timestamp is outside the tolerance");
  const signedPayload = `${timestamp}.${rawBody}`;
  const expected = await Promise.all(settings.secrets.map((secret) => hmacSha256Hex(secret, signedPayload)));
  // Every pair is compared in constant time; one match from any live secret is enough.
  let matched = false;
  for (const candidate of expected)
    for (const signature of signatures) if (timingSafeEqual(candidate, signature)) matched = true;
  if (!matched) throw new StripeSignatureError("no v1 signature matches an endpoint secret");
}

const metadata = z
  .record(z.string(), z.string())
  .nullish()
  .transform((m) => m ?? {});
const idOrObject = z.union([z.string(), z.object({ id: z.string() }).passthrough()]).nullish();
export const stripeId = (value: z.infer<typeof idOrObject>): string | null =>
  value == null ? null : typeof value === "string" ? value : value.id;

export const StripePrice = z.object({ id: z.string(), lookup_key: z.string().nullish() }).passthrough();

/** A Subscription, either shape: item-level periods (2025-03-31.basil and later) or top-level (before). */
export const StripeSubscription = z
  .object({
    id: z.string(),
    object: z.literal("subscription"),
    customer: idOrObject,
    status: z.string(),
    metadata,
    cancel_at_period_end: z.boolean().nullish(),
    canceled_at: z.number().nullish(),
    ended_at: z.number().nullish(),
    current_period_end: z.number().nullish(),
    items: z.object({
      data: z.array(z.object({ price: StripePrice, current_period_end: z.number().nullish() }).passthrough()).min(1),
    }),
  })
  .passthrough();
export type StripeSubscription = z.infer<typeof StripeSubscription>;

/** When the subscription's paid period ends, in UNIX seconds, whichever API version rendered it. */
export function periodEndOf(subscription: StripeSubscription): number | null {
  return subscription.items.data[0]?.current_period_end ?? subscription.current_period_end ?? null;
}

export const StripeCheckoutSession = z
  .object({
    id: z.string(),
    object: z.literal("checkout.session"),
    mode: z.string().nullish(),
    status: z.string().nullish(),
    client_reference_id: z.string().nullish(),
    customer: idOrObject,
    subscription: idOrObject,
    metadata,
    url: z.string().nullish(),
  })
  .passthrough();
export type StripeCheckoutSession = z.infer<typeof StripeCheckoutSession>;

export const StripeInvoice = z
  .object({
    id: z.string(),
    object: z.literal("invoice"),
    customer: idOrObject,
    next_payment_attempt: z.number().nullish(),
    period_end: z.number().nullish(),
    // 2025-03-31.basil and later name the subscription here…
    parent: z
      .object({
        subscription_details: z.object({ subscription: idOrObject, metadata }).passthrough().nullish(),
      })
      .passthrough()
      .nullish(),
    // …earlier versions at the top level.
    subscription: idOrObject,
    subscription_details: z.object({ metadata }).passthrough().nullish(),
  })
  .passthrough();
export type StripeInvoice = z.infer<typeof StripeInvoice>;

export function invoiceSubscription(invoice: StripeInvoice): { id: string | null; metadata: Record<string, string> } {
  const details = invoice.parent?.subscription_details;
  return {
    id: stripeId(details?.subscription) ?? stripeId(invoice.subscription),
    metadata: details?.metadata ?? invoice.subscription_details?.metadata ?? {},
  };
}

export const StripeEvent = z
  .object({
    id: z.string().min(1).max(255),
    object: z.literal("event"),
    type: z.string(),
    created: z.number().int(),
    livemode: z.boolean(),
    data: z.object({ object: z.record(z.string(), z.unknown()) }).passthrough(),
  })
  .passthrough();
export type StripeEvent = z.infer<typeof StripeEvent>;

export interface StripeApiSettings {
  apiUrl: string;
  secretKey: string;
  timeoutMs: number;
}

/** Stripe's form encoding: nested objects and arrays as bracketed keys (`line_items[0][price]=…`). */
export function formEncode(params: Record<string, unknown>): string {
  const pairs: [string, string][] = [];
  const walk = (value: unknown, key: string): void => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, `${key}[${i}]`);
    } else if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) walk(v, `${key}[${k}]`);
    } else {
      pairs.push([key, String(value)]);
    }
  };
  for (const [key, value] of Object.entries(params)) walk(value, key);
  return new URLSearchParams(pairs).toString();
}

async function stripeCall(settings: StripeApiSettings, method: "GET" | "POST", path: string, body?: string) {
  const response = await providerFetch(
    "stripe",
    `${settings.apiUrl}${path}`,
    {
      method,
      headers: {
        authorization: `Bearer ${settings.secretKey}`,
        ...(body !== undefined ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      ...(body !== undefined ? { body } : {}),
    },
    settings.timeoutMs,
  );
  return { response, body: await providerJson("stripe", response) };
}

/** `GET /v1/subscriptions/{id}`; null when Stripe has no such subscription. */
export async function retrieveSubscription(
  settings: StripeApiSettings,
  id: string,
): Promise<StripeSubscription | null> {
  const { response, body } = await stripeCall(settings, "GET", `/v1/subscriptions/${encodeURIComponent(id)}`);
  if (response.status === 404) return null;
  if (!response.ok) throw new ProviderUnavailableError("stripe", `subscriptions.retrieve answered ${response.status}`);
  const parsed = StripeSubscription.safeParse(body);
  if (!parsed.success) throw new ProviderUnavailableError("stripe", "subscriptions.retrieve answered an unknown shape");
  return parsed.data;
}

/** `POST /v1/checkout/sessions`; the session as Stripe created it (with its hosted `url`). */
export async function createCheckoutSession(
  settings: StripeApiSettings,
  params: Record<string, unknown>,
): Promise<StripeCheckoutSession> {
  const { response, body } = await stripeCall(settings, "POST", "/v1/checkout/sessions", formEncode(params));
  if (!response.ok)
    throw new ProviderUnavailableError("stripe", `checkout.sessions.create answered ${response.status}`);
  const parsed = StripeCheckoutSession.safeParse(body);
  if (!parsed.success)
    throw new ProviderUnavailableError("stripe", "checkout.sessions.create answered an unknown shape");
  return parsed.data;
}
