import { createHmac, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import {
  controlBody,
  type Delivery,
  deliver,
  deliveryReport,
  HttpError,
  isObject,
  type JsonObject,
  oneOf,
  type ReceivedRequest,
  requiredString,
  sendJson,
  startStandIn,
} from "./standin-http";
import { DEFAULT_STRIPE_API_VERSION, type StripeObject, stripeEvent } from "./stripe-objects";

/**
 * Dev/test-only Stripe webhook sender. `POST /__send { target, type, object, secret?, forge?,
 * previous_attributes? }` wraps `object` in an Event and delivers it as Stripe does (webhooks docs, "Verify
 * webhook signatures"): pretty-printed JSON body, `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">` with one v1 per active endpoint secret (two while a rolled secret has not expired)
 * and, as test-mode deliveries carry, a v0 a verifier must ignore. Objects come from ./stripe-objects.
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
  apiVersion?: string;
  log?: (line: string) => void;
}

export interface RunningStripeServer {
  url: string;
  stop(): Promise<void>;
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

  const send = async (input: StripeSendInput): Promise<{ eventId: string; delivery: Delivery }> => {
    const event = stripeEvent(input.type, input.object, { apiVersion, previousAttributes: input.previousAttributes });
    // Stripe's bodies are indented JSON; verifiers must hash the raw bytes, not a re-serialization.
    const payload = JSON.stringify(event, null, 2);
    const now = Math.floor(Date.now() / 1000);
    const timestamp = input.forge === "stale-timestamp" ? now - 2 * STRIPE_DEFAULT_TOLERANCE_SECONDS : now;
    const chosen = input.secret === undefined ? secrets : Array.isArray(input.secret) ? input.secret : [input.secret];
    const signing = input.forge === "bad-signature" ? [newSecret()] : chosen;
    const delivery = await deliver(
      input.target,
      {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-cache",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": stripeSignatureHeader(payload, signing, timestamp),
      },
      payload,
    );
    deliveries.push(delivery);
    return { eventId: String(event.id), delivery };
  };

  const standIn = await startStandIn({
    name: "stripe",
    port: opts.port,
    host: opts.host,
    log: opts.log,
    handle: async ({ res, url, method, text }) => {
      if (method === "POST" && url.pathname === "/__send") {
        const { eventId, delivery } = await send(parseSendInput(controlBody(text)));
        return sendJson(res, 200, deliveryReport(delivery, { eventId }));
      }
      if (method === "POST" && url.pathname === "/__rotate") {
        rotate();
        return sendJson(res, 200, { secrets });
      }
      if (method === "GET" && url.pathname === "/__secrets") return sendJson(res, 200, { secrets, apiVersion });
      throw new HttpError(404, {
        error: { message: `Unrecognized request URL (${method}: ${url.pathname}).`, type: "invalid_request_error" },
      });
    },
  });

  return {
    url: standIn.url,
    stop: standIn.close,
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
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startStripeServer({
    port: Number(process.env.STRIPE_PORT ?? 8093),
    webhookSecrets: process.env.STRIPE_WEBHOOK_SECRET ? [process.env.STRIPE_WEBHOOK_SECRET] : undefined,
    log: process.env.STRIPE_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(`Stripe webhook stand-in on ${server.url}; endpoint secret ${server.webhookSecrets()[0]}`);
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
