import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { checkoutSession, invoiceObject, subscriptionObject } from "../../scripts/local/stripe-objects";
import { type RunningStripeServer, startStripeServer } from "../../scripts/local/stripe-server";
import { type Receiver, startReceiver } from "./receiver";

const SECRET = "whsec_test_endpoint_secret_0123456789";

let stripe: RunningStripeServer;
let receiver: Receiver;

beforeAll(async () => {
  stripe = await startStripeServer({ port: await freePort(), webhookSecrets: [SECRET] });
  receiver = await startReceiver();
});

afterAll(async () => {
  await stripe?.stop();
  await receiver?.stop();
});

beforeEach(() => {
  receiver.deliveries.length = 0;
  receiver.answer(200, { received: true });
});

/** HMAC-SHA256 hex through WebCrypto: an implementation independent of the stand-in's node:crypto one. */
async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Stripe's documented verification: take `t` and every `v1` (ignore other schemes), reject a timestamp
 * outside the tolerance, accept when any v1 equals HMAC(secret, "<t>.<raw body>").
 */
async function verifyStripe(
  rawBody: string,
  header: string | undefined,
  secret: string,
  toleranceSeconds: number | null = 300,
) {
  const parts = (header ?? "").split(",").map((p) => p.split("=") as [string, string]);
  const timestamp = Number(parts.find(([k]) => k === "t")?.[1]);
  const signatures = parts.filter(([k]) => k === "v1").map(([, v]) => v);
  if (!Number.isFinite(timestamp) || signatures.length === 0)
    throw new Error("unable to extract timestamp and signatures");
  if (toleranceSeconds !== null && Math.abs(Date.now() / 1000 - timestamp) > toleranceSeconds) {
    throw new Error("timestamp outside the tolerance zone");
  }
  const expected = await hmacHex(secret, `${timestamp}.${rawBody}`);
  if (!signatures.includes(expected)) throw new Error("no signatures found matching the expected signature");
  return JSON.parse(rawBody) as Record<string, unknown>;
}

async function send(body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${stripe.url}/__send`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const signatureOf = (index = 0) => receiver.deliveries[index]?.headers["stripe-signature"] as string | undefined;
const bodyOf = (index = 0) => receiver.deliveries[index]?.body ?? "";

describe("Stripe webhook stand-in", () => {
  it("delivers an Event the way Stripe does and reports the endpoint's answer", async () => {
    receiver.answer(400, { error: "nope" });
    const session = checkoutSession({ clientReferenceId: "user_42", metadata: { plan: "pro" } });
    const { status, json } = await send({ target: receiver.url, type: "checkout.session.completed", object: session });
    expect(status).toBe(200);
    expect(json).toMatchObject({ status: 400, body: { error: "nope" }, eventId: expect.stringMatching(/^evt_/) });

    const delivery = receiver.deliveries[0];
    expect(delivery?.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(delivery?.headers["user-agent"]).toMatch(/^Stripe\/1\.0/);
    expect(signatureOf()).toMatch(/^t=\d{10},v1=[0-9a-f]{64},v0=[0-9a-f]{64}$/);
    expect(bodyOf()).toContain('\n  "object": "event"'); // indented, like Stripe's

    const event = await verifyStripe(bodyOf(), signatureOf(), SECRET);
    expect(event).toEqual({
      id: json.eventId,
      object: "event",
      api_version: stripe.apiVersion,
      created: expect.any(Number),
      data: { object: session },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type: "checkout.session.completed",
    });
  });

  it("signs v1 as HMAC-SHA256 of '<t>.<raw body>' with the endpoint secret", async () => {
    await send({ target: receiver.url, type: "customer.subscription.created", object: subscriptionObject() });
    const header = signatureOf() ?? "";
    const t = /t=(\d+)/.exec(header)?.[1];
    const v1 = /v1=([0-9a-f]+)/.exec(header)?.[1];
    expect(v1).toBe(await hmacHex(SECRET, `${t}.${bodyOf()}`));
    // A different body or secret gives a different signature: the check can fail.
    expect(v1).not.toBe(await hmacHex(SECRET, `${t}.${bodyOf().replace("subscription", "Subscription")}`));
    expect(v1).not.toBe(await hmacHex(`${SECRET}x`, `${t}.${bodyOf()}`));
    // v0 is not a valid signature under the endpoint secret: verifiers must ignore it.
    const v0 = /v0=([0-9a-f]+)/.exec(header)?.[1];
    expect(v0).not.toBe(await hmacHex(SECRET, `${t}.${bodyOf()}`));
  });

  it("signs with both secrets while a rolled secret is still active", async () => {
    // A server of its own: rotation changes the endpoint's secrets.
    const rolling = await startStripeServer({ port: await freePort(), webhookSecrets: [SECRET] });
    try {
      const rolled = rolling.rotateSecret();
      expect(rolling.webhookSecrets()).toEqual([rolled, SECRET]);
      await rolling.send({ target: receiver.url, type: "invoice.paid", object: invoiceObject() });
      expect(signatureOf()?.match(/v1=/g)).toHaveLength(2);
      await expect(verifyStripe(bodyOf(), signatureOf(), rolled)).resolves.toMatchObject({ type: "invoice.paid" });
      await expect(verifyStripe(bodyOf(), signatureOf(), SECRET)).resolves.toMatchObject({ type: "invoice.paid" });

      rolling.expireOldSecrets();
      await rolling.send({ target: receiver.url, type: "invoice.paid", object: invoiceObject() });
      expect(signatureOf(1)?.match(/v1=/g)).toHaveLength(1);
      await expect(verifyStripe(bodyOf(1), signatureOf(1), rolled)).resolves.toBeTruthy();
      await expect(verifyStripe(bodyOf(1), signatureOf(1), SECRET)).rejects.toThrow(/no signatures found/);

      const res = await fetch(`${rolling.url}/__rotate`, { method: "POST" });
      expect(((await res.json()) as { secrets: string[] }).secrets).toHaveLength(2);
    } finally {
      await rolling.stop();
    }
  });

  it("accepts a per-delivery secret (or list of secrets)", async () => {
    await send({ target: receiver.url, type: "invoice.paid", object: invoiceObject(), secret: ["whsec_a", "whsec_b"] });
    await expect(verifyStripe(bodyOf(), signatureOf(), "whsec_b")).resolves.toBeTruthy();
    await expect(verifyStripe(bodyOf(), signatureOf(), "whsec_other")).rejects.toThrow();
  });

  it("forged and stale deliveries fail a correct verifier", async () => {
    const secret = "whsec_forge_test";
    await send({
      target: receiver.url,
      type: "invoice.payment_failed",
      object: invoiceObject(),
      secret,
      forge: "bad-signature",
    });
    await expect(verifyStripe(bodyOf(0), signatureOf(0), secret)).rejects.toThrow(/no signatures found/);

    await send({
      target: receiver.url,
      type: "invoice.payment_failed",
      object: invoiceObject(),
      secret,
      forge: "stale-timestamp",
    });
    await expect(verifyStripe(bodyOf(1), signatureOf(1), secret)).rejects.toThrow(/tolerance/);
    // The stale one is genuinely signed: only the timestamp check stops a replay.
    await expect(verifyStripe(bodyOf(1), signatureOf(1), secret, null)).resolves.toBeTruthy();

    // A body altered in transit fails too.
    await send({ target: receiver.url, type: "invoice.paid", object: invoiceObject(), secret });
    await expect(verifyStripe(bodyOf(2).replace('"paid"', '"void"'), signatureOf(2), secret)).rejects.toThrow();
  });

  it("rejects malformed control requests", async () => {
    expect((await send({ target: receiver.url, type: "invoice.paid", object: { amount: 1 } })).status).toBe(400);
    expect((await send({ type: "invoice.paid", object: invoiceObject() })).status).toBe(400);
    expect(
      (await send({ target: receiver.url, type: "invoice.paid", object: invoiceObject(), forge: "x" })).status,
    ).toBe(400);
    expect(receiver.deliveries).toHaveLength(0);
  });
});

describe("Stripe object builders", () => {
  it("checkout.session in subscription mode carries the fields a fulfilment handler reads", () => {
    const session = checkoutSession({
      clientReferenceId: "user_42",
      customer: "cus_123",
      subscription: "sub_123",
      metadata: { userId: "42" },
    });
    expect(session).toMatchObject({
      id: expect.stringMatching(/^cs_test_/),
      object: "checkout.session",
      mode: "subscription",
      status: "complete",
      payment_status: "paid",
      client_reference_id: "user_42",
      customer: "cus_123",
      subscription: "sub_123",
      metadata: { userId: "42" },
    });
    expect(checkoutSession({ status: "expired" })).toMatchObject({ subscription: null, payment_status: "unpaid" });
  });

  it("subscription periods sit on the item from basil on, on the subscription before", () => {
    const input = {
      priceId: "price_pro",
      lookupKey: "pro_monthly",
      currentPeriodEnd: 1_900_000_000,
      cancelAtPeriodEnd: true,
      metadata: { userId: "42" },
    };
    const current = subscriptionObject(input);
    const item = (current.items as { data: Record<string, unknown>[] }).data[0];
    expect(current).not.toHaveProperty("current_period_end");
    expect(item).toMatchObject({
      object: "subscription_item",
      current_period_end: 1_900_000_000,
      price: { id: "price_pro", lookup_key: "pro_monthly", object: "price", type: "recurring" },
    });
    expect(current).toMatchObject({
      object: "subscription",
      status: "active",
      cancel_at_period_end: true,
      cancel_at: 1_900_000_000,
      metadata: { userId: "42" },
    });

    const legacy = subscriptionObject(input, "2024-06-20");
    expect(legacy.current_period_end).toBe(1_900_000_000);
    expect((legacy.items as { data: Record<string, unknown>[] }).data[0]).not.toHaveProperty("current_period_end");

    const canceled = subscriptionObject({ status: "canceled", canceledAt: 1_800_000_000 });
    expect(canceled).toMatchObject({ status: "canceled", canceled_at: 1_800_000_000, ended_at: 1_800_000_000 });
  });

  it("invoice names its subscription under parent from basil on, at the top level before", () => {
    const failed = invoiceObject({
      subscription: "sub_123",
      customer: "cus_123",
      status: "open",
      attemptCount: 2,
      nextPaymentAttempt: 1_900_000_000,
    });
    expect(failed).toMatchObject({
      object: "invoice",
      status: "open",
      customer: "cus_123",
      billing_reason: "subscription_cycle",
      attempt_count: 2,
      attempted: true,
      next_payment_attempt: 1_900_000_000,
      amount_paid: 0,
      parent: { type: "subscription_details", subscription_details: { subscription: "sub_123" } },
    });
    expect(failed).not.toHaveProperty("subscription");
    expect(failed).not.toHaveProperty("paid");

    const legacy = invoiceObject(
      { subscription: "sub_123", status: "paid", billingReason: "subscription_create" },
      "2024-06-20",
    );
    expect(legacy).toMatchObject({ subscription: "sub_123", paid: true, billing_reason: "subscription_create" });
    expect(legacy).not.toHaveProperty("parent");
    expect(invoiceObject({ subscription: null })).toMatchObject({ parent: null });
  });
});

describe("Stripe stand-in: Checkout and Subscriptions API", () => {
  const KEY = "sk_test_circle_local_0123456789";
  let api: RunningStripeServer;
  let hooks: Receiver;

  beforeAll(async () => {
    hooks = await startReceiver();
    api = await startStripeServer({ port: await freePort(), webhookSecrets: [SECRET], secretKey: KEY });
  });
  afterAll(async () => {
    await api?.stop();
    await hooks?.stop();
  });

  const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
  const stripeCall = (method: string, path: string, body?: string, key = KEY) =>
    fetch(`${api.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/x-www-form-urlencoded" },
      ...(body === undefined ? {} : { body }),
    });
  const createSession = () =>
    stripeCall(
      "POST",
      "/v1/checkout/sessions",
      form({
        mode: "subscription",
        "line_items[0][price]": "price_pro",
        "line_items[0][quantity]": "1",
        success_url: "https://circle.test/done",
        client_reference_id: "64b000000000000000000001",
        "metadata[userId]": "64b000000000000000000001",
        "subscription_data[metadata][userId]": "64b000000000000000000001",
      }),
    );

  it("creates an open subscription-mode session from a form-encoded body, with Stripe's errors for bad keys and params", async () => {
    const res = await createSession();
    expect(res.status).toBe(200);
    const session = (await res.json()) as Record<string, unknown>;
    expect(session).toMatchObject({
      object: "checkout.session",
      mode: "subscription",
      status: "open",
      client_reference_id: "64b000000000000000000001",
      metadata: { userId: "64b000000000000000000001" },
      subscription: null,
      url: `${api.url}/c/pay/${session.id}`,
    });
    expect(session).not.toHaveProperty("subscription_data");
    const wrongKey = await stripeCall("POST", "/v1/checkout/sessions", form({ mode: "subscription" }), "sk_test_wrong");
    expect(wrongKey.status).toBe(401);
    expect(await wrongKey.json()).toMatchObject({ error: { type: "invalid_request_error", code: "api_key_invalid" } });
    const noMode = await stripeCall("POST", "/v1/checkout/sessions", form({ "line_items[0][price]": "p" }));
    expect(noMode.status).toBe(400);
    expect(await noMode.json()).toMatchObject({ error: { param: "mode", code: "parameter_missing" } });
    const unknown = await stripeCall("GET", "/v1/subscriptions/sub_nope");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "resource_missing", param: "id" } });
  });

  it("completing a session creates the subscription (price, metadata) and signs checkout.session.completed", async () => {
    const session = (await (await createSession()).json()) as { id: string };
    const res = await fetch(`${api.url}/__checkout/${session.id}/complete`, { method: "POST" });
    const done = (await res.json()) as {
      subscription: { id: string; metadata: Record<string, string>; items: { data: { price: { id: string } }[] } };
      event: { payload: string; headers: Record<string, string> };
    };
    expect(done.subscription.metadata).toEqual({ userId: "64b000000000000000000001" });
    expect(done.subscription.items.data[0]?.price.id).toBe("price_pro");
    const event = await verifyStripe(done.event.payload, done.event.headers["Stripe-Signature"], SECRET);
    expect(event).toMatchObject({
      type: "checkout.session.completed",
      data: { object: { id: session.id, status: "complete", subscription: done.subscription.id } },
    });
    const fetched = (await (await stripeCall("GET", `/v1/subscriptions/${done.subscription.id}`)).json()) as {
      status: string;
    };
    expect(fetched.status).toBe("active");
    const again = await fetch(`${api.url}/__checkout/${session.id}/complete`, { method: "POST" });
    expect(again.status).toBe(400);

    const canceled = await fetch(`${api.url}/__subscriptions/${done.subscription.id}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status: "canceled" }),
    });
    const change = (await canceled.json()) as { event: { payload: string; headers: Record<string, string> } };
    const deleted = await verifyStripe(change.event.payload, change.event.headers["Stripe-Signature"], SECRET);
    expect(deleted).toMatchObject({ type: "customer.subscription.deleted", data: { object: { status: "canceled" } } });
  });

  it("the pay page completes the session, delivers the event to the webhook URL and sends the buyer on", async () => {
    const paying = await startStripeServer({
      port: await freePort(),
      webhookSecrets: [SECRET],
      secretKey: KEY,
      webhookUrl: hooks.url,
    });
    try {
      const res = await fetch(`${paying.apiUrl}/v1/checkout/sessions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/x-www-form-urlencoded" },
        body: form({
          mode: "subscription",
          "line_items[0][price]": "price_pro",
          success_url: "https://circle.test/done",
        }),
      });
      const { url } = (await res.json()) as { url: string };
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("Pay and subscribe");
      const paid = await fetch(url, { method: "POST", redirect: "manual" });
      expect(paid.status).toBe(303);
      expect(paid.headers.get("location")).toBe("https://circle.test/done");
      expect(hooks.deliveries).toHaveLength(1);
      const delivered = hooks.deliveries[0];
      await expect(
        verifyStripe(delivered?.body ?? "", delivered?.headers["stripe-signature"] as string, SECRET),
      ).resolves.toMatchObject({ type: "checkout.session.completed" });
    } finally {
      await paying.stop();
    }
  });

  it("/__sign hands back the body and headers without delivering, honouring `created`", async () => {
    const res = await fetch(`${api.url}/__sign`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "invoice.payment_failed", object: invoiceObject(), created: 1_700_000_000 }),
    });
    const signed = (await res.json()) as { payload: string; headers: Record<string, string> };
    const event = await verifyStripe(signed.payload, signed.headers["Stripe-Signature"], SECRET);
    expect(event).toMatchObject({ type: "invoice.payment_failed", created: 1_700_000_000 });
  });
});
