import { createHmac, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import {
  controlBody,
  type Delivery,
  deliver,
  deliveryReport,
  escapeHtml,
  HttpError,
  isObject,
  type JsonObject,
  oneOf,
  optionalBoolean,
  optionalNumber,
  optionalString,
  PAGE_STYLE,
  type ReceivedRequest,
  requiredString,
  sendHtml,
  sendJson,
  startStandIn,
} from "./standin-http";
import {
  checkoutSession,
  DEFAULT_STRIPE_API_VERSION,
  type StripeJson,
  type StripeObject,
  type SubscriptionStatus,
  stripeEvent,
  stripeId,
  subscriptionObject,
} from "./stripe-objects";

/**
 * Dev/test-only Stripe: webhooks and the slice of the API web checkout uses.
 *
 * Webhooks: `POST /__send { target, type, object, secret?, forge?, previous_attributes?, created? }` wraps `object` in an
 * Event and delivers it as Stripe does (webhooks docs, "Verify webhook signatures"): pretty-printed JSON body,
 * `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with one v1 per active endpoint secret
 * (two while a rolled secret has not expired) and, as test-mode deliveries carry, a v0 a verifier must ignore.
 * `POST /__sign` (same body, no target) returns the body and headers instead of delivering them, for callers
 * that post them themselves (tests inside workerd). Objects come from ./stripe-objects.
 *
 * API (form-encoded bodies with bracketed keys, `Authorization: Bearer <secret key>`, Stripe's error envelope):
 * `POST /v1/checkout/sessions` (subscription mode), `GET /v1/checkout/sessions/{id}`, `GET
 * /v1/subscriptions/{id}`. Paying: the session's `url` is a page here (`GET /c/pay/{id}`) whose button
 * completes it — a subscription is created with the session's price and `subscription_data.metadata`, and
 * `checkout.session.completed` is delivered to `webhookUrl`. Tests drive the same with `POST
 * /__checkout/{id}/complete { deliver? }` and change subscriptions with `POST /__subscriptions/{id} { status?,
 * cancelAtPeriodEnd?, currentPeriodEnd?, event?, deliver? }`, each answering the signed event.
 */

export type StripeForge = "bad-signature" | "stale-timestamp";

export interface StripeSendInput {
  target: string;
  type: string;
  object: StripeObject;
  /** Overrides the endpoint's secrets for this delivery. */
  secret?: string | string[];
  forge?: StripeForge;
  previousAttributes?: StripeObject;
  /** The event's `created` (UNIX seconds), to model Stripe's out-of-order deliveries; defaults to now. */
  created?: number;
}

export interface StripeSendResult {
  eventId: string;
  status: number;
  body: unknown;
  error?: string;
}

export interface StripeServerOptions {
  port: number;
  host?: string;
  /** Active endpoint secrets, newest first; one `whsec_…` is generated when absent. */
  webhookSecrets?: string[];
  /** The API key callers must present; one `sk_test_…` is generated when absent. */
  secretKey?: string;
  /** Where completed checkouts and subscription changes are delivered when no target is given. */
  webhookUrl?: string;
  apiVersion?: string;
  log?: (line: string) => void;
}

/** A signed event as it would be delivered: the exact body and the headers (Stripe-Signature among them). */
export interface SignedStripeEvent {
  eventId: string;
  payload: string;
  headers: Record<string, string>;
}

export interface RunningStripeServer {
  url: string;
  stop(): Promise<void>;
  /** The API key this stand-in accepts. */
  secretKey: string;
  /** Base URL for the API (`https://api.stripe.com` in production). */
  apiUrl: string;
  /** The endpoint's signing secrets, newest first (a copy). */
  webhookSecrets(): string[];
  /** Rolls the secret as the Dashboard does with an expiry: a new one signs alongside the old until expireOld. */
  rotateSecret(): string;
  expireOldSecrets(): void;
  apiVersion: string;
  send(input: StripeSendInput): Promise<StripeSendResult>;
  deliveries(): Delivery[];
  received(): ReceivedRequest[];
}

/** Stripe's libraries reject signatures older than this by default. */
export const STRIPE_DEFAULT_TOLERANCE_SECONDS = 300;

/** Hex HMAC-SHA256 of `${timestamp}.${payload}` keyed by the whole secret string. */
export function computeStripeSignature(payload: string, secret: string, timestamp: number): string {
  return createHmac("sha256", secret).update(`${timestamp}.${payload}`, "utf8").digest("hex");
}

/** The Stripe-Signature header value for `payload` signed with each secret. */
export function stripeSignatureHeader(payload: string, secrets: string[], timestamp: number): string {
  const v1 = secrets.map((secret) => `v1=${computeStripeSignature(payload, secret, timestamp)}`);
  const v0 = `v0=${computeStripeSignature(payload, newSecret(), timestamp)}`;
  return [`t=${timestamp}`, ...v1, v0].join(",");
}

export function newSecret(): string {
  return `whsec_${randomBytes(24).toString("base64url")}`;
}

export async function startStripeServer(opts: StripeServerOptions): Promise<RunningStripeServer> {
  const apiVersion = opts.apiVersion ?? DEFAULT_STRIPE_API_VERSION;
  let secrets = opts.webhookSecrets && opts.webhookSecrets.length > 0 ? [...opts.webhookSecrets] : [newSecret()];
  const deliveries: Delivery[] = [];
  const rotate = () => {
    const secret = newSecret();
    secrets = [secret, ...secrets];
    return secret;
  };

  const sign = (input: Omit<StripeSendInput, "target">): SignedStripeEvent => {
    const event = stripeEvent(input.type, input.object, {
      apiVersion,
      previousAttributes: input.previousAttributes,
      ...(input.created !== undefined ? { created: input.created } : {}),
    });
    // Stripe's bodies are indented JSON; verifiers must hash the raw bytes, not a re-serialization.
    const payload = JSON.stringify(event, null, 2);
    const now = Math.floor(Date.now() / 1000);
    const timestamp = input.forge === "stale-timestamp" ? now - 2 * STRIPE_DEFAULT_TOLERANCE_SECONDS : now;
    const chosen = input.secret === undefined ? secrets : Array.isArray(input.secret) ? input.secret : [input.secret];
    const signing = input.forge === "bad-signature" ? [newSecret()] : chosen;
    return {
      eventId: String(event.id),
      payload,
      headers: {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-cache",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": stripeSignatureHeader(payload, signing, timestamp),
      },
    };
  };

  const send = async (input: StripeSendInput): Promise<{ eventId: string; delivery: Delivery }> => {
    const signed = sign(input);
    const delivery = await deliver(input.target, signed.headers, signed.payload);
    deliveries.push(delivery);
    return { eventId: signed.eventId, delivery };
  };

  const secretKey = opts.secretKey ?? `sk_test_${randomBytes(24).toString("base64url")}`;
  const sessions = new Map<string, StripeObject>();
  const subscriptions = new Map<string, StripeObject>();

  /** Signs an event and delivers it to `target` (or the webhook URL) when asked; the report either way. */
  const emit = async (type: string, object: StripeObject, deliverTo: string | null): Promise<JsonObject> => {
    const signed = sign({ type, object });
    const report: JsonObject = { event: { eventId: signed.eventId, payload: signed.payload, headers: signed.headers } };
    if (deliverTo) {
      const delivery = await deliver(deliverTo, signed.headers, signed.payload);
      deliveries.push(delivery);
      report.delivery = deliveryReport(delivery);
    }
    return report;
  };

  const completeCheckout = async (id: string, deliverTo: string | null): Promise<JsonObject> => {
    const session = sessions.get(id);
    if (!session) throw missing("checkout.session", id);
    if (session.status !== "open") throw invalidRequest(`This Checkout Session is ${String(session.status)}.`, null);
    const data = isObject(session.subscription_data) ? session.subscription_data : {};
    const subscription = subscriptionObject(
      {
        customer: typeof session.customer === "string" ? session.customer : stripeId("cus", 14),
        priceId: String(session.__price),
        metadata: stringMap(data.metadata),
      },
      apiVersion,
    );
    subscriptions.set(String(subscription.id), subscription);
    const completed: StripeObject = {
      ...session,
      status: "complete",
      payment_status: "paid",
      customer: subscription.customer ?? null,
      subscription: subscription.id ?? null,
      url: null,
    };
    sessions.set(id, completed);
    return {
      session: publicSession(completed),
      subscription,
      ...(await emit("checkout.session.completed", publicSession(completed), deliverTo)),
    };
  };

  const authorize = (authorization: string | undefined) => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    const key = bearer ?? (basic ? Buffer.from(basic, "base64").toString("utf8").split(":")[0] : undefined);
    if (!key) {
      throw new HttpError(401, {
        error: {
          message:
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
          type: "invalid_request_error",
        },
      });
    }
    if (key !== secretKey) {
      throw new HttpError(401, {
        error: {
          code: "api_key_invalid",
          message: `Invalid API Key provided: ${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`,
          type: "invalid_request_error",
        },
      });
    }
  };

  const createSession = (form: StripeJson): StripeObject => {
    const params = isObject(form) ? form : {};
    if (params.mode !== "subscription") {
      throw invalidRequest(
        params.mode ? "This stand-in supports mode=subscription only." : "Missing required param: mode.",
        "mode",
      );
    }
    const items = Array.isArray(params.line_items) ? params.line_items : [];
    const first = items[0];
    const price = isObject(first) && typeof first.price === "string" ? first.price : null;
    if (!price) throw invalidRequest("Missing required param: line_items[0][price].", "line_items[0][price]");
    const session = checkoutSession({
      status: "open",
      clientReferenceId: typeof params.client_reference_id === "string" ? params.client_reference_id : null,
      customer: typeof params.customer === "string" ? params.customer : undefined,
      metadata: stringMap(params.metadata),
      successUrl: typeof params.success_url === "string" ? params.success_url : undefined,
      cancelUrl: typeof params.cancel_url === "string" ? params.cancel_url : undefined,
    });
    const id = String(session.id);
    const stored: StripeObject = {
      ...session,
      customer: typeof params.customer === "string" ? params.customer : null,
      url: `${standIn.url}/c/pay/${id}`,
      subscription_data: isObject(params.subscription_data) ? params.subscription_data : {},
      __price: price,
    };
    sessions.set(id, stored);
    return publicSession(stored);
  };

  const standIn = await startStandIn({
    name: "stripe",
    port: opts.port,
    host: opts.host,
    log: opts.log,
    handle: async ({ req, res, url, method, text }) => {
      const path = url.pathname;
      if (method === "POST" && path === "/__send") {
        const { eventId, delivery } = await send(parseSendInput(controlBody(text)));
        return sendJson(res, 200, deliveryReport(delivery, { eventId }));
      }
      if (method === "POST" && path === "/__sign") {
        const { target: _none, ...input } = parseSendInput({ target: "-", ...controlBody(text) });
        return sendJson(res, 200, { ...sign(input) });
      }
      if (method === "POST" && path === "/__rotate") {
        rotate();
        return sendJson(res, 200, { secrets });
      }
      if (method === "GET" && path === "/__secrets") return sendJson(res, 200, { secrets, apiVersion });

      const complete = /^\/__checkout\/([^/]+)\/complete$/.exec(path);
      if (complete && method === "POST") {
        const body = text ? controlBody(text) : {};
        const deliverTo = optionalBoolean(body, "deliver")
          ? (optionalString(body, "target") ?? opts.webhookUrl ?? null)
          : null;
        return sendJson(res, 200, await completeCheckout(decodeURIComponent(complete[1] ?? ""), deliverTo));
      }
      const change = /^\/__subscriptions\/([^/]+)$/.exec(path);
      if (change && method === "POST") {
        const id = decodeURIComponent(change[1] ?? "");
        const current = subscriptions.get(id);
        if (!current) throw missing("subscription", id);
        const body = controlBody(text);
        const updated = updateSubscription(current, body, apiVersion);
        subscriptions.set(id, updated);
        const type =
          oneOf(body, "event", ["customer.subscription.updated", "customer.subscription.deleted", "none"] as const) ??
          (updated.status === "canceled" ? "customer.subscription.deleted" : "customer.subscription.updated");
        const deliverTo = optionalBoolean(body, "deliver")
          ? (optionalString(body, "target") ?? opts.webhookUrl ?? null)
          : null;
        return sendJson(res, 200, {
          subscription: updated,
          ...(type === "none" ? {} : await emit(type, updated, deliverTo)),
        });
      }

      // The hosted payment page (dev): one button that pays and sends the buyer on.
      const pay = /^\/c\/pay\/([^/]+)$/.exec(path);
      if (pay) {
        const id = decodeURIComponent(pay[1] ?? "");
        const session = sessions.get(id);
        if (!session) return sendHtml(res, 404, page("Checkout", "<p>No such Checkout Session.</p>"));
        if (method === "GET") {
          const body =
            session.status === "open"
              ? `<p>Subscribe with price <b>${escapeHtml(String(session.__price))}</b> (test mode: no card needed).</p>` +
                `<form method="post"><button type="submit">Pay and subscribe</button></form>`
              : `<p>This Checkout Session is ${escapeHtml(String(session.status))}.</p>`;
          return sendHtml(res, 200, page("Circle checkout (local Stripe)", body));
        }
        if (method === "POST") {
          await completeCheckout(id, opts.webhookUrl ?? null);
          const next = typeof session.success_url === "string" ? session.success_url : "/";
          res.writeHead(303, { Location: next });
          res.end();
          return;
        }
      }

      if (path.startsWith("/v1/")) {
        authorize(req.headers.authorization);
        if (method === "POST" && path === "/v1/checkout/sessions") {
          return sendJson(res, 200, createSession(parseStripeForm(text)));
        }
        const session = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(path);
        if (session && method === "GET") {
          const found = sessions.get(decodeURIComponent(session[1] ?? ""));
          if (!found) throw missing("checkout.session", decodeURIComponent(session[1] ?? ""));
          return sendJson(res, 200, publicSession(found));
        }
        const subscription = /^\/v1\/subscriptions\/([^/]+)$/.exec(path);
        if (subscription && method === "GET") {
          const found = subscriptions.get(decodeURIComponent(subscription[1] ?? ""));
          if (!found) throw missing("subscription", decodeURIComponent(subscription[1] ?? ""));
          return sendJson(res, 200, found);
        }
      }
      throw new HttpError(404, {
        error: { message: `Unrecognized request URL (${method}: ${path}).`, type: "invalid_request_error" },
      });
    },
  });

  return {
    url: standIn.url,
    stop: standIn.close,
    secretKey,
    apiUrl: standIn.url,
    webhookSecrets: () => [...secrets],
    rotateSecret: rotate,
    expireOldSecrets: () => {
      secrets = secrets.slice(0, 1);
    },
    apiVersion,
    send: async (input) => {
      const { eventId, delivery } = await send(input);
      return {
        eventId,
        status: delivery.status,
        body: deliveryReport(delivery).body,
        ...(delivery.error ? { error: delivery.error } : {}),
      };
    },
    deliveries: () => [...deliveries],
    received: standIn.received,
  };
}

function parseSendInput(body: JsonObject): StripeSendInput {
  const object = body.object;
  if (!isObject(object) || typeof object.id !== "string" || typeof object.object !== "string") {
    throw new HttpError(400, { error: '"object" must be a Stripe object with "id" and "object"' });
  }
  const secret = body.secret;
  if (
    secret !== undefined &&
    !(
      typeof secret === "string" ||
      (Array.isArray(secret) && secret.length > 0 && secret.every((s) => typeof s === "string"))
    )
  ) {
    throw new HttpError(400, { error: '"secret" must be a string or a non-empty list of strings' });
  }
  const previous = body.previous_attributes;
  if (previous !== undefined && !isObject(previous))
    throw new HttpError(400, { error: '"previous_attributes" must be an object' });
  return {
    target: requiredString(body, "target"),
    type: requiredString(body, "type"),
    object,
    secret: secret as string | string[] | undefined,
    forge: oneOf(body, "forge", ["bad-signature", "stale-timestamp"] as const),
    previousAttributes: previous,
    created: optionalNumber(body, "created"),
  };
}

/** Stripe's API error envelope for a missing object. */
function missing(kind: string, id: string): HttpError {
  return new HttpError(404, {
    error: {
      code: "resource_missing",
      doc_url: "https://stripe.com/docs/error-codes/resource-missing",
      message: `No such ${kind === "checkout.session" ? "checkout.session" : kind}: '${id}'`,
      param: "id",
      type: "invalid_request_error",
    },
  });
}

function invalidRequest(message: string, param: string | null): HttpError {
  return new HttpError(400, {
    error: { ...(param ? { code: "parameter_missing", param } : {}), message, type: "invalid_request_error" },
  });
}

/** A session as the API shows it (without the stand-in's own bookkeeping). */
function publicSession(session: StripeObject): StripeObject {
  const { __price: _price, subscription_data: _data, ...rest } = session;
  return rest;
}

function stringMap(value: StripeJson | undefined): Record<string, string> {
  if (!isObject(value)) return {};
  return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (typeof v === "string" ? [[k, v]] : [])));
}

/** Stripe's form encoding: bracketed keys become nested objects, numeric segments arrays. */
export function parseStripeForm(text: string): StripeJson {
  const root: Record<string, StripeJson> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const path = key.replace(/\]/g, "").split("[");
    let node: Record<string, StripeJson> | StripeJson[] = root;
    path.forEach((segment, index) => {
      const last = index === path.length - 1;
      const container = node as Record<string, StripeJson>;
      if (last) {
        container[segment] = value;
        return;
      }
      const nextIsIndex = /^\d+$/.test(path[index + 1] ?? "");
      container[segment] ??= nextIsIndex ? [] : {};
      node = container[segment] as Record<string, StripeJson> | StripeJson[];
    });
  }
  return root;
}

const SUBSCRIPTION_STATUSES: readonly SubscriptionStatus[] = [
  "incomplete",
  "incomplete_expired",
  "trialing",
  "active",
  "past_due",
  "canceled",
  "unpaid",
  "paused",
];

/** A stored subscription after a control change, re-rendered as Stripe would show it. */
function updateSubscription(current: StripeObject, body: JsonObject, apiVersion: string): StripeObject {
  const status = oneOf(body, "status", SUBSCRIPTION_STATUSES) ?? (current.status as SubscriptionStatus);
  const items = isObject(current.items) && Array.isArray(current.items.data) ? current.items.data : [];
  const item = isObject(items[0]) ? items[0] : {};
  const price = isObject(item.price) ? item.price : {};
  const periodEnd =
    optionalNumber(body, "currentPeriodEnd") ??
    (typeof item.current_period_end === "number" ? item.current_period_end : undefined) ??
    (typeof current.current_period_end === "number" ? current.current_period_end : undefined);
  const periodStart =
    (typeof item.current_period_start === "number" ? item.current_period_start : undefined) ??
    (typeof current.current_period_start === "number" ? current.current_period_start : undefined);
  const now = Math.floor(Date.now() / 1000);
  const rendered = subscriptionObject(
    {
      id: String(current.id),
      customer: typeof current.customer === "string" ? current.customer : undefined,
      status,
      priceId: typeof price.id === "string" ? price.id : undefined,
      productId: typeof price.product === "string" ? price.product : undefined,
      currentPeriodStart: periodStart,
      currentPeriodEnd: periodEnd,
      cancelAtPeriodEnd: optionalBoolean(body, "cancelAtPeriodEnd") ?? Boolean(current.cancel_at_period_end),
      canceledAt: status === "canceled" ? now : null,
      metadata: stringMap(current.metadata),
      created: typeof current.created === "number" ? current.created : undefined,
    },
    apiVersion,
  );
  // Ids of the item and the price stay what they were.
  const renderedItems = isObject(rendered.items) && Array.isArray(rendered.items.data) ? rendered.items.data : [];
  if (isObject(renderedItems[0]) && typeof item.id === "string") renderedItems[0].id = item.id;
  if (status === "canceled") rendered.ended_at = now;
  return rendered;
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${PAGE_STYLE}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startStripeServer({
    port: Number(process.env.STRIPE_PORT ?? 8093),
    webhookSecrets: process.env.STRIPE_WEBHOOK_SECRET ? [process.env.STRIPE_WEBHOOK_SECRET] : undefined,
    webhookUrl: process.env.STRIPE_WEBHOOK_URL,
    log: process.env.STRIPE_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(
    `Stripe stand-in on ${server.url}; endpoint secret ${server.webhookSecrets()[0]}, API key ${server.secretKey}`,
  );
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
