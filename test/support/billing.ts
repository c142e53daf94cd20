import { env } from "cloudflare:workers";
import type { AppAccountToken } from "../../src/features/billing/schema";
import { type ApiResponse, call } from "./api";
import type { TestUser } from "./users";

/**
 * The billing stand-ins' controls, from inside workerd: they sign notifications exactly as the stores do and
 * hand them back, and the test posts them to the Worker (which has no address a stand-in could deliver to).
 */
const bindings = env as unknown as Record<string, string>;

async function control<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} on a stand-in answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

export const DAY = 86_400_000;

export async function appAccountToken(user: TestUser): Promise<string> {
  const res = await call<AppAccountToken>("GET", "/v1/me/billing/app-account-token", { token: user.accessToken });
  if (res.status !== 200) throw new Error(`app account token: ${res.status} ${res.text}`);
  return res.body.token;
}

// ---- App Store ----

export interface AppStoreDescription {
  notificationType: string;
  subtype?: string;
  appAccountToken?: string;
  productId?: string;
  originalTransactionId?: string;
  expiresDate?: number;
  purchaseDate?: number;
  signedDate?: number;
  gracePeriodExpiresDate?: number;
  autoRenewProductId?: string;
  environment?: "Sandbox" | "Production";
  bundleId?: string;
  forge?: "wrong-root" | "bad-signature" | "expired-leaf";
}

export interface SignedAppStore {
  notificationUUID: string;
  signedPayload: string;
}

export function signAppStore(description: AppStoreDescription): Promise<SignedAppStore> {
  return control(bindings.TEST_APPSTORE_URL!, "POST", "/__sign", description);
}

export function postAppStore(signedPayload: string): Promise<ApiResponse<{ received: boolean; outcome: string }>> {
  return call("POST", "/v1/billing/apple", { body: { signedPayload } });
}

let transactions = 0;
/** A fresh App Store subscription (originalTransactionId) for a test. */
export function originalTransactionId(): string {
  transactions += 1;
  return `${Date.now()}${String(transactions).padStart(4, "0")}`;
}

// ---- Google Play ----

export interface PlayPurchaseInput {
  productId?: string;
  subscriptionState?: string;
  expiryTime?: number | string;
  obfuscatedExternalAccountId?: string;
  acknowledgementState?: "ACKNOWLEDGEMENT_STATE_PENDING" | "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED";
  linkedPurchaseToken?: string;
  autoRenewEnabled?: boolean;
}

/** Sets (or reads, with `{}`) a purchase the Play Developer API stand-in answers. */
export function setPlayPurchase(token: string, input: PlayPurchaseInput): Promise<Record<string, unknown>> {
  return control(bindings.TEST_PLAY_URL!, "PUT", `/__purchases/${encodeURIComponent(token)}`, input);
}

export interface PlayPush {
  messageId: string;
  headers: Record<string, string>;
  body: string;
}

export function playPush(input: {
  purchaseToken: string;
  notificationType: string | number;
  packageName?: string;
  forge?: "wrong-key" | "wrong-audience" | "expired";
}): Promise<PlayPush> {
  return control(bindings.TEST_PLAY_URL!, "POST", "/__push", input);
}

export function postPlay(push: PlayPush, headers: Record<string, string> = push.headers) {
  return call<{ received: boolean; outcome: string }>("POST", "/v1/billing/google", { rawBody: push.body, headers });
}

let purchases = 0;
export function purchaseToken(): string {
  purchases += 1;
  return `playtoken.${Date.now().toString(36)}.${purchases}.${crypto.randomUUID()}`;
}

// ---- Stripe ----

export interface SignedStripe {
  eventId: string;
  payload: string;
  headers: Record<string, string>;
}

export function signStripe(input: {
  type: string;
  object: Record<string, unknown>;
  forge?: "bad-signature" | "stale-timestamp";
  secret?: string | string[];
  created?: number;
}): Promise<SignedStripe> {
  return control(bindings.TEST_STRIPE_URL!, "POST", "/__sign", input);
}

export function postStripe(
  event: Pick<SignedStripe, "payload" | "headers">,
  headers: Record<string, string> = event.headers,
) {
  return call<{ received: boolean; outcome: string }>("POST", "/v1/billing/stripe", {
    rawBody: event.payload,
    headers,
  });
}

export interface CompletedCheckout {
  session: Record<string, unknown>;
  subscription: Record<string, unknown> & { id: string };
  event: SignedStripe;
}

/** Pays an open Checkout Session at the stand-in (as the buyer would on Stripe's page). */
export function completeCheckout(sessionId: string): Promise<CompletedCheckout> {
  return control(bindings.TEST_STRIPE_URL!, "POST", `/__checkout/${encodeURIComponent(sessionId)}/complete`, {});
}

/** Changes a subscription at the stand-in and answers the event Stripe would send about it. */
export function changeStripeSubscription(
  id: string,
  change: { status?: string; cancelAtPeriodEnd?: boolean; currentPeriodEnd?: number; event?: string },
): Promise<{ subscription: Record<string, unknown>; event: SignedStripe }> {
  return control(bindings.TEST_STRIPE_URL!, "POST", `/__subscriptions/${encodeURIComponent(id)}`, change);
}

export const stripeBindings = {
  pricePro: () => bindings.STRIPE_PRICE_PRO!,
  pricePremium: () => bindings.STRIPE_PRICE_PREMIUM!,
  webhookSecret: () => bindings.STRIPE_WEBHOOK_SECRETS!,
};
