/**
 * Builders for the Stripe objects Circle's billing webhooks read — Checkout Session, Subscription, Invoice —
 * and the Event envelope, with Stripe's field names (API reference, "The … object"). Objects render for an
 * API version: from 2025-03-31.basil the subscription's `current_period_start/end` live on each subscription
 * item and an invoice names its subscription under `parent.subscription_details` (its top-level
 * `subscription`, `paid`, `charge` and `payment_intent` are gone); older versions render the old shape.
 * No node: imports, so Worker-side tests can use these too.
 */

export type StripeJson = null | boolean | number | string | StripeJson[] | { [key: string]: StripeJson };
export type StripeObject = { [key: string]: StripeJson };

export const DEFAULT_STRIPE_API_VERSION = "2025-09-30.clover";
/** The first version with item-level billing periods and invoice `parent`. */
const BASIL = "2025-03-31";

export type SubscriptionStatus =
  | "incomplete"
  | "incomplete_expired"
  | "trialing"
  | "active"
  | "past_due"
  | "canceled"
  | "unpaid"
  | "paused";

export type InvoiceStatus = "draft" | "open" | "paid" | "uncollectible" | "void";
export type BillingReason =
  | "subscription_create"
  | "subscription_cycle"
  | "subscription_update"
  | "subscription_threshold"
  | "subscription"
  | "manual"
  | "upcoming"
  | "automatic_pending_invoice_item_invoice"
  | "quote_accept";

export interface CheckoutSessionInput {
  id?: string;
  clientReferenceId?: string | null;
  customer?: string;
  subscription?: string;
  metadata?: Record<string, string>;
  customerEmail?: string;
  amountTotal?: number;
  currency?: string;
  status?: "open" | "complete" | "expired";
  paymentStatus?: "paid" | "unpaid" | "no_payment_required";
  successUrl?: string;
  cancelUrl?: string;
  created?: number;
}

export interface SubscriptionInput {
  id?: string;
  customer?: string;
  status?: SubscriptionStatus;
  priceId?: string;
  lookupKey?: string | null;
  productId?: string;
  unitAmount?: number;
  currency?: string;
  interval?: "day" | "week" | "month" | "year";
  /** UNIX seconds. */
  currentPeriodStart?: number;
  currentPeriodEnd?: number;
  cancelAtPeriodEnd?: boolean;
  canceledAt?: number | null;
  metadata?: Record<string, string>;
  latestInvoice?: string | null;
  trialEnd?: number | null;
  created?: number;
}

export interface InvoiceInput {
  id?: string;
  customer?: string;
  subscription?: string | null;
  status?: InvoiceStatus;
  billingReason?: BillingReason;
  attemptCount?: number;
  /** UNIX seconds of the next retry, null when Stripe stops retrying. */
  nextPaymentAttempt?: number | null;
  amountDue?: number;
  currency?: string;
  periodStart?: number;
  periodEnd?: number;
  customerEmail?: string;
  subscriptionMetadata?: Record<string, string>;
  created?: number;
}

export interface EventOptions {
  apiVersion?: string;
  id?: string;
  created?: number;
  previousAttributes?: StripeObject;
  /** The API request that caused the event; null ids (the default) mean Stripe acted on its own. */
  request?: { id: string | null; idempotency_key: string | null };
  pendingWebhooks?: number;
}

/** True when `apiVersion` renders the basil-era shapes. */
export function usesItemBillingPeriods(apiVersion: string): boolean {
  return apiVersion.slice(0, 10) >= BASIL;
}

/** An Event as Stripe POSTs it to a webhook endpoint. */
export function stripeEvent(type: string, object: StripeObject, options: EventOptions = {}): StripeObject {
  return {
    id: options.id ?? stripeId("evt"),
    object: "event",
    api_version: options.apiVersion ?? DEFAULT_STRIPE_API_VERSION,
    created: options.created ?? nowSeconds(),
    data: options.previousAttributes ? { object, previous_attributes: options.previousAttributes } : { object },
    livemode: false,
    pending_webhooks: options.pendingWebhooks ?? 1,
    request: options.request ?? { id: null, idempotency_key: null },
    type,
  };
}

export function checkoutSession(input: CheckoutSessionInput = {}): StripeObject {
  const created = input.created ?? nowSeconds();
  const status = input.status ?? "complete";
  const id = input.id ?? stripeId("cs_test", 58);
  return {
    id,
    object: "checkout.session",
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: input.amountTotal ?? 999,
    amount_total: input.amountTotal ?? 999,
    automatic_tax: { enabled: false, liability: null, status: null },
    billing_address_collection: null,
    cancel_url: input.cancelUrl ?? null,
    client_reference_id: input.clientReferenceId ?? null,
    client_secret: null,
    consent: null,
    consent_collection: null,
    created,
    currency: input.currency ?? "usd",
    custom_fields: [],
    custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
    customer: input.customer ?? stripeId("cus", 14),
    customer_creation: "always",
    customer_details: {
      address: null,
      email: input.customerEmail ?? "buyer@example.test",
      name: null,
      phone: null,
      tax_exempt: "none",
      tax_ids: [],
    },
    customer_email: null,
    expires_at: created + 86_400,
    invoice: status === "complete" ? stripeId("in") : null,
    invoice_creation: null,
    livemode: false,
    locale: null,
    metadata: input.metadata ?? {},
    mode: "subscription",
    payment_link: null,
    payment_method_collection: "always",
    payment_method_options: { card: { request_three_d_secure: "automatic" } },
    payment_method_types: ["card"],
    payment_status: input.paymentStatus ?? (status === "complete" ? "paid" : "unpaid"),
    phone_number_collection: { enabled: false },
    recovered_from: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_options: [],
    status,
    submit_type: null,
    subscription: status === "complete" ? (input.subscription ?? stripeId("sub")) : null,
    success_url: input.successUrl ?? "https://circle.test/billing/success",
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: "hosted",
    url: status === "open" ? `https://checkout.stripe.com/c/pay/${id}` : null,
  };
}

export function subscriptionObject(
  input: SubscriptionInput = {},
  apiVersion = DEFAULT_STRIPE_API_VERSION,
): StripeObject {
  const id = input.id ?? stripeId("sub");
  const created = input.created ?? nowSeconds();
  const periodStart = input.currentPeriodStart ?? created;
  const periodEnd = input.currentPeriodEnd ?? periodStart + 30 * 86_400;
  const status = input.status ?? "active";
  const canceledAt = input.canceledAt ?? (status === "canceled" ? periodEnd : null);
  const cancelAtPeriodEnd = input.cancelAtPeriodEnd ?? false;
  const currency = input.currency ?? "usd";
  const interval = input.interval ?? "month";
  const unitAmount = input.unitAmount ?? 999;
  const priceId = input.priceId ?? stripeId("price");
  const product = input.productId ?? stripeId("prod", 14);
  const lookupKey = input.lookupKey === undefined ? null : input.lookupKey;
  const itemPeriods = usesItemBillingPeriods(apiVersion);

  const price: StripeObject = {
    id: priceId,
    object: "price",
    active: true,
    billing_scheme: "per_unit",
    created,
    currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: lookupKey,
    metadata: {},
    nickname: null,
    product,
    recurring: { interval, interval_count: 1, meter: null, usage_type: "licensed" },
    tax_behavior: "unspecified",
    tiers_mode: null,
    transform_quantity: null,
    type: "recurring",
    unit_amount: unitAmount,
    unit_amount_decimal: String(unitAmount),
  };
  const plan: StripeObject = {
    id: priceId,
    object: "plan",
    active: true,
    amount: unitAmount,
    amount_decimal: String(unitAmount),
    billing_scheme: "per_unit",
    created,
    currency,
    interval,
    interval_count: 1,
    livemode: false,
    metadata: {},
    meter: null,
    nickname: null,
    product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: null,
    usage_type: "licensed",
  };
  const item: StripeObject = {
    id: stripeId("si", 14),
    object: "subscription_item",
    created,
    ...(itemPeriods ? { current_period_end: periodEnd, current_period_start: periodStart } : {}),
    discounts: [],
    metadata: {},
    plan,
    price,
    quantity: 1,
    subscription: id,
    tax_rates: [],
  };
  return {
    id,
    object: "subscription",
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: periodStart,
    billing_cycle_anchor_config: null,
    billing_thresholds: null,
    cancel_at: cancelAtPeriodEnd ? periodEnd : null,
    cancel_at_period_end: cancelAtPeriodEnd,
    canceled_at: canceledAt,
    cancellation_details: {
      comment: null,
      feedback: null,
      reason: status === "canceled" || cancelAtPeriodEnd ? "cancellation_requested" : null,
    },
    collection_method: "charge_automatically",
    created,
    currency,
    ...(itemPeriods ? {} : { current_period_end: periodEnd, current_period_start: periodStart }),
    customer: input.customer ?? stripeId("cus", 14),
    days_until_due: null,
    default_payment_method: stripeId("pm"),
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: status === "canceled" ? canceledAt : null,
    invoice_settings: { account_tax_ids: null, issuer: { type: "self" } },
    items: {
      object: "list",
      data: [item],
      has_more: false,
      total_count: 1,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: input.latestInvoice === undefined ? stripeId("in") : input.latestInvoice,
    livemode: false,
    metadata: input.metadata ?? {},
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: "off" },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: created,
    status,
    test_clock: null,
    transfer_data: null,
    trial_end: input.trialEnd ?? null,
    trial_settings: { end_behavior: { missing_payment_method: "create_invoice" } },
    trial_start: input.trialEnd ? created : null,
  };
}

export function invoiceObject(input: InvoiceInput = {}, apiVersion = DEFAULT_STRIPE_API_VERSION): StripeObject {
  const id = input.id ?? stripeId("in");
  const created = input.created ?? nowSeconds();
  const status = input.status ?? "paid";
  const amountDue = input.amountDue ?? 999;
  const paid = status === "paid";
  const attemptCount = input.attemptCount ?? (status === "draft" ? 0 : 1);
  const subscription = input.subscription === undefined ? stripeId("sub") : input.subscription;
  const periodStart = input.periodStart ?? created;
  const periodEnd = input.periodEnd ?? periodStart + 30 * 86_400;
  const nextPaymentAttempt =
    input.nextPaymentAttempt !== undefined ? input.nextPaymentAttempt : status === "open" ? created + 3 * 86_400 : null;

  const invoice: StripeObject = {
    id,
    object: "invoice",
    account_country: "US",
    account_name: "Circle",
    amount_due: amountDue,
    amount_paid: paid ? amountDue : 0,
    amount_remaining: paid ? 0 : amountDue,
    amount_shipping: 0,
    attempt_count: attemptCount,
    attempted: attemptCount > 0,
    auto_advance: status === "open" || status === "draft",
    billing_reason: input.billingReason ?? "subscription_cycle",
    collection_method: "charge_automatically",
    created,
    currency: input.currency ?? "usd",
    customer: input.customer ?? stripeId("cus", 14),
    customer_email: input.customerEmail ?? "buyer@example.test",
    hosted_invoice_url: status === "draft" ? null : `https://invoice.stripe.com/i/acct_test/${id}`,
    invoice_pdf: status === "draft" ? null : `https://pay.stripe.com/invoice/acct_test/${id}/pdf`,
    // Webhook payloads list the invoice's lines; the stand-in leaves them out (Circle does not read them).
    lines: { object: "list", data: [], has_more: false, total_count: 0, url: `/v1/invoices/${id}/lines` },
    livemode: false,
    metadata: {},
    next_payment_attempt: nextPaymentAttempt,
    number: status === "draft" ? null : `CIRCLE-${id.slice(-6).toUpperCase()}`,
    period_end: periodEnd,
    period_start: periodStart,
    status,
    status_transitions: {
      finalized_at: status === "draft" ? null : created,
      marked_uncollectible_at: status === "uncollectible" ? created : null,
      paid_at: paid ? created : null,
      voided_at: status === "void" ? created : null,
    },
    subtotal: amountDue,
    total: amountDue,
  };
  if (usesItemBillingPeriods(apiVersion)) {
    invoice.amount_overpaid = 0;
    invoice.parent = subscription
      ? {
          quote_details: null,
          subscription_details: { metadata: input.subscriptionMetadata ?? {}, subscription },
          type: "subscription_details",
        }
      : null;
  } else {
    invoice.subscription = subscription;
    invoice.subscription_details = { metadata: input.subscriptionMetadata ?? {} };
    invoice.paid = paid;
    invoice.charge = paid ? stripeId("ch") : null;
    invoice.payment_intent = status === "draft" ? null : stripeId("pi");
  }
  return invoice;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A Stripe-looking id: prefix, underscore, random base62. */
export function stripeId(prefix: string, length = 24): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let id = "";
  for (const byte of bytes) id += BASE62[byte % 62];
  return `${prefix}_${id}`;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
