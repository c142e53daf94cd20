import { randomUUID, X509Certificate } from "node:crypto";
import { compactVerify, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  APPLE_MARKER_OIDS,
  type RunningAppStoreServer,
  startAppStoreServer,
} from "../../scripts/local/appstore-server";
import { freePort } from "../../scripts/local/ports";
import { certificateExtensions, certificateParts } from "../../scripts/local/x509";
import { type Receiver, startReceiver } from "./receiver";

type Payload = Record<string, unknown> & { data?: Record<string, unknown> };

let appstore: RunningAppStoreServer;
let receiver: Receiver;
let trustedRoot: X509Certificate;

beforeAll(async () => {
  appstore = await startAppStoreServer({ port: await freePort(), bundleId: "app.circle.test", appAppleId: 987654321 });
  receiver = await startReceiver();
  trustedRoot = new X509Certificate(Buffer.from(appstore.rootCertificate.der, "base64"));
});

afterAll(async () => {
  await appstore?.stop();
  await receiver?.stop();
});

beforeEach(() => {
  receiver.deliveries.length = 0;
  receiver.answer(200, { ok: true });
});

/**
 * The verification the Worker is to do (and Apple's server libraries do): exactly three certificates in
 * x5c; the intermediate issued and signed by the trusted root (the root in x5c is not trusted); the leaf
 * issued and signed by the intermediate; CA flags; Apple's marker OIDs; every certificate valid at `at`; then
 * the ES256 signature under the leaf's key.
 */
async function verifyAppleJws(jws: string, root: X509Certificate, at = new Date()): Promise<Payload> {
  const header = decodeProtectedHeader(jws);
  if (header.alg !== "ES256") throw new Error(`unexpected alg ${String(header.alg)}`);
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || x5c.length !== 3) throw new Error("x5c must hold three certificates");
  const [leaf, intermediate] = x5c.slice(0, 2).map((b64) => new X509Certificate(Buffer.from(b64, "base64")));
  if (!leaf || !intermediate) throw new Error("x5c must hold three certificates");
  if (intermediate.issuer !== root.subject || !intermediate.verify(root.publicKey)) {
    throw new Error("intermediate is not issued by the trusted root");
  }
  if (leaf.issuer !== intermediate.subject || !leaf.verify(intermediate.publicKey)) {
    throw new Error("leaf is not issued by the intermediate");
  }
  if (!intermediate.ca || leaf.ca) throw new Error("wrong CA flags");
  if (!certificateExtensions(intermediate.raw).some((e) => e.oid === APPLE_MARKER_OIDS.intermediate)) {
    throw new Error("intermediate lacks Apple's marker OID");
  }
  if (!certificateExtensions(leaf.raw).some((e) => e.oid === APPLE_MARKER_OIDS.leaf)) {
    throw new Error("leaf lacks Apple's marker OID");
  }
  for (const [label, certificate] of [
    ["leaf", leaf],
    ["intermediate", intermediate],
    ["root", root],
  ] as const) {
    if (new Date(certificate.validFrom) > at || new Date(certificate.validTo) < at) {
      throw new Error(`${label} certificate is not valid at ${at.toISOString()}`);
    }
  }
  try {
    const { payload } = await compactVerify(jws, leaf.publicKey, { algorithms: ["ES256"] });
    return JSON.parse(new TextDecoder().decode(payload)) as Payload;
  } catch {
    throw new Error("signature verification failed");
  }
}

/** X.509 carries ECDSA signatures as DER SEQUENCE { r, s }; WebCrypto wants r || s, each `size` bytes. */
function derEcdsaToRaw(der: Buffer, size: number): Uint8Array<ArrayBuffer> {
  const raw = new Uint8Array(new ArrayBuffer(size * 2));
  let offset = 2 + (der[1] === 0x81 ? 1 : 0);
  for (let part = 0; part < 2; part++) {
    const length = der[offset + 1] ?? 0;
    let value = der.subarray(offset + 2, offset + 2 + length);
    while (value.length > size && value[0] === 0) value = value.subarray(1);
    raw.set(value, size * (part + 1) - value.length);
    offset += 2 + length;
  }
  return raw;
}

async function control(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${appstore.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const subscriber = () => ({
  appAccountToken: randomUUID(),
  productId: "circle.pro.monthly",
  originalTransactionId: `1000000${Math.floor(Math.random() * 1e9)}`,
});

describe("App Store Server Notifications V2 stand-in", () => {
  it("mints a chain shaped like Apple's: CA root and intermediate, signing leaf, marker OIDs", () => {
    const { root, intermediate, leaf } = appstore.pki;
    expect(root.x509.ca).toBe(true);
    expect(root.x509.checkIssued(root.x509)).toBe(true);
    expect(intermediate.x509.ca).toBe(true);
    expect(intermediate.x509.checkIssued(root.x509)).toBe(true);
    expect(leaf.x509.ca).toBe(false);
    expect(leaf.x509.checkIssued(intermediate.x509)).toBe(true);
    expect(leaf.x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(root.x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");

    const rootExtensions = certificateExtensions(root.der).map((e) => e.oid);
    expect(rootExtensions).not.toContain(APPLE_MARKER_OIDS.intermediate);
    expect(certificateExtensions(intermediate.der)).toContainEqual(
      expect.objectContaining({ oid: APPLE_MARKER_OIDS.intermediate, critical: false }),
    );
    const leafExtensions = certificateExtensions(leaf.der);
    expect(leafExtensions).toContainEqual(expect.objectContaining({ oid: APPLE_MARKER_OIDS.leaf }));
    // basicConstraints and keyUsage are critical, as a path validator expects.
    expect(leafExtensions).toContainEqual(expect.objectContaining({ oid: "2.5.29.19", critical: true }));
    expect(leafExtensions).toContainEqual(expect.objectContaining({ oid: "2.5.29.15", critical: true }));

    // The exposed root is this one, in both encodings.
    expect(new X509Certificate(appstore.rootCertificate.pem).raw.equals(root.der)).toBe(true);
    expect(trustedRoot.fingerprint256).toBe(root.x509.fingerprint256);
  });

  it("every certificate verifies under WebCrypto alone, as it must in a Worker", async () => {
    const { root, intermediate, leaf } = appstore.pki;
    const pairs = [
      [leaf, intermediate],
      [intermediate, root],
      [root, root],
    ] as const;
    for (const [certificate, issuer] of pairs) {
      const { tbs, signatureAlgorithm, signature } = certificateParts(certificate.der);
      expect(signatureAlgorithm).toBe("1.2.840.10045.4.3.3"); // ecdsa-with-SHA384
      // Copies: WebCrypto wants ArrayBuffer-backed views, not node Buffers.
      const spki = Uint8Array.from(issuer.x509.publicKey.export({ type: "spki", format: "der" }));
      const signed = Uint8Array.from(tbs);
      const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-384" }, false, [
        "verify",
      ]);
      const raw = derEcdsaToRaw(signature, 48);
      expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, raw, signed)).toBe(true);
      raw[5] = (raw[5] ?? 0) ^ 1;
      expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, raw, signed)).toBe(false);
    }
  });

  it("POSTs { signedPayload } to the target and reports the target's answer", async () => {
    receiver.answer(202, { accepted: "yes" });
    const who = subscriber();
    const expiresDate = Date.now() + 30 * 86_400_000;
    const { status, json } = await control("/__notify", {
      target: receiver.url,
      notificationType: "SUBSCRIBED",
      subtype: "INITIAL_BUY",
      ...who,
      expiresDate,
    });
    expect(status).toBe(200);
    expect(json.status).toBe(202);
    expect(json.body).toEqual({ accepted: "yes" });

    expect(receiver.deliveries).toHaveLength(1);
    const delivery = receiver.deliveries[0];
    expect(delivery?.method).toBe("POST");
    expect(delivery?.headers["content-type"]).toBe("application/json");
    const sent = JSON.parse(delivery?.body ?? "{}") as { signedPayload: string };
    expect(Object.keys(sent)).toEqual(["signedPayload"]);
    expect(sent.signedPayload).toBe(json.signedPayload);

    const header = decodeProtectedHeader(sent.signedPayload);
    expect(Object.keys(header).sort()).toEqual(["alg", "x5c"]);
    expect(header.x5c?.[2]).toBe(appstore.rootCertificate.der);

    const payload = await verifyAppleJws(sent.signedPayload, trustedRoot);
    expect(payload).toMatchObject({
      notificationType: "SUBSCRIBED",
      subtype: "INITIAL_BUY",
      notificationUUID: json.notificationUUID,
      version: "2.0",
      data: { bundleId: "app.circle.test", environment: "Sandbox", status: 1 },
    });
    expect(typeof payload.signedDate).toBe("number");
    expect(payload.data).not.toHaveProperty("appAppleId"); // Sandbox

    const transaction = await verifyAppleJws(String(payload.data?.signedTransactionInfo), trustedRoot);
    expect(transaction).toMatchObject({
      appAccountToken: who.appAccountToken,
      productId: who.productId,
      originalTransactionId: who.originalTransactionId,
      expiresDate,
      type: "Auto-Renewable Subscription",
      inAppOwnershipType: "PURCHASED",
      environment: "Sandbox",
      bundleId: "app.circle.test",
    });
    expect(transaction).not.toHaveProperty("revocationDate");
    const renewal = await verifyAppleJws(String(payload.data?.signedRenewalInfo), trustedRoot);
    expect(renewal).toMatchObject({
      autoRenewStatus: 1,
      autoRenewProductId: who.productId,
      isInBillingRetryPeriod: false,
    });
  });

  it("fills refund, grace-period and production fields as Apple documents them", async () => {
    const refund = await appstore.signNotification({ notificationType: "REFUND", ...subscriber() });
    const refundPayload = await verifyAppleJws(refund.signedPayload, trustedRoot);
    expect(refundPayload.data?.status).toBe(5);
    const refunded = await verifyAppleJws(String(refundPayload.data?.signedTransactionInfo), trustedRoot);
    expect(refunded.revocationDate).toBe(refundPayload.signedDate);
    expect(refunded.revocationReason).toBe(0);

    const expiresDate = Date.now() - 86_400_000;
    const grace = await appstore.signNotification({
      notificationType: "DID_FAIL_TO_RENEW",
      subtype: "GRACE_PERIOD",
      ...subscriber(),
      expiresDate,
    });
    expect(grace.payload.data).toMatchObject({ status: 4 });
    expect(grace.renewal).toMatchObject({
      isInBillingRetryPeriod: true,
      gracePeriodExpiresDate: expiresDate + 16 * 86_400_000,
    });

    const expired = await appstore.signNotification({
      notificationType: "EXPIRED",
      subtype: "VOLUNTARY",
      ...subscriber(),
    });
    expect(expired.renewal).toMatchObject({ autoRenewStatus: 0, expirationIntent: 1 });
    expect(expired.payload.data).toMatchObject({ status: 2 });

    const production = await appstore.signNotification({
      notificationType: "DID_RENEW",
      environment: "Production",
      ...subscriber(),
    });
    const productionPayload = await verifyAppleJws(production.signedPayload, trustedRoot);
    expect(productionPayload.data).toMatchObject({ appAppleId: 987654321, environment: "Production" });
    expect(production.transaction).toMatchObject({ environment: "Production", transactionReason: "RENEWAL" });

    const test = await appstore.signNotification({ notificationType: "TEST" });
    expect(test.payload.data).toEqual({ bundleId: "app.circle.test", bundleVersion: "1", environment: "Sandbox" });
  });

  it.each([
    ["wrong-root", "intermediate is not issued by the trusted root"],
    ["bad-signature", "signature verification failed"],
    ["expired-leaf", "leaf certificate is not valid"],
  ] as const)("forge %s fails the chain check", async (forge, reason) => {
    const { status, json } = await control("/__notify", {
      target: receiver.url,
      notificationType: "DID_RENEW",
      ...subscriber(),
      forge,
    });
    expect(status).toBe(200);
    const sent = JSON.parse(receiver.deliveries[0]?.body ?? "{}") as { signedPayload: string };
    expect(sent.signedPayload).toBe(json.signedPayload);
    await expect(verifyAppleJws(sent.signedPayload, trustedRoot)).rejects.toThrow(reason);
    // The nested JWSs are forged the same way, so a handler cannot fall back to trusting them.
    const payload = JSON.parse(Buffer.from(sent.signedPayload.split(".")[1] ?? "", "base64url").toString()) as Payload;
    await expect(verifyAppleJws(String(payload.data?.signedTransactionInfo), trustedRoot)).rejects.toThrow(reason);
  });

  it("an expired leaf is still rejected when checked at the payload's signedDate", async () => {
    const forged = await appstore.signNotification({
      notificationType: "DID_RENEW",
      ...subscriber(),
      forge: "expired-leaf",
    });
    const signedAt = new Date(Number(forged.payload.signedDate));
    await expect(verifyAppleJws(forged.signedPayload, trustedRoot, signedAt)).rejects.toThrow(
      "leaf certificate is not valid",
    );
  });

  it("rejects bad control requests and reports an unreachable target", async () => {
    expect((await control("/__notify", { notificationType: "DID_RENEW", ...subscriber() })).status).toBe(400);
    expect((await control("/__notify", { target: receiver.url, notificationType: "DID_RENEW" })).status).toBe(400);
    const badForge = await control("/__notify", {
      target: receiver.url,
      notificationType: "DID_RENEW",
      ...subscriber(),
      forge: "nope",
    });
    expect(badForge.status).toBe(400);
    expect(receiver.deliveries).toHaveLength(0);

    const closedPort = await freePort();
    const unreachable = await control("/__notify", {
      target: `http://127.0.0.1:${closedPort}/hook`,
      notificationType: "DID_RENEW",
      ...subscriber(),
    });
    expect(unreachable.status).toBe(200);
    expect(unreachable.json.status).toBe(0);
    expect(String(unreachable.json.error)).toMatch(/fetch failed|ECONNREFUSED/);
  });

  it("serves the root and raw signed payloads, and records what it was asked", async () => {
    const res = await fetch(`${appstore.url}/__root`);
    expect(await res.json()).toEqual(appstore.rootCertificate);
    expect(appstore.received().some((r) => r.path === "/__root" && r.status === 200)).toBe(true);

    // The raw payload, unsent, for tests that post it themselves.
    const signed = await control("/__sign", { notificationType: "EXPIRED", subtype: "BILLING_RETRY", ...subscriber() });
    expect(signed.status).toBe(200);
    const payload = await verifyAppleJws(String(signed.json.signedPayload), trustedRoot);
    expect(payload).toMatchObject({
      notificationType: "EXPIRED",
      subtype: "BILLING_RETRY",
      notificationUUID: signed.json.notificationUUID,
    });
    expect(signed.json.renewal).toMatchObject({ expirationIntent: 2, autoRenewStatus: 0 });
    expect(receiver.deliveries).toHaveLength(0);
  });
});

describe("App Store stand-in: a PKI chosen up front", () => {
  it("signs with a PKI handed over as JSON, so the root can be configured before the server starts", async () => {
    const { createAppStorePki, exportAppStorePki, importAppStorePki } = await import(
      "../../scripts/local/appstore-server"
    );
    const pki = createAppStorePki();
    const serialized = JSON.parse(JSON.stringify(exportAppStorePki(pki)));
    const planned = await startAppStoreServer({
      port: await freePort(),
      bundleId: "app.circle.test",
      pki: importAppStorePki(serialized),
    });
    try {
      expect(planned.rootCertificate.der).toBe(pki.root.der.toString("base64"));
      const signed = await planned.signNotification({ notificationType: "DID_RENEW", ...subscriber() });
      const root = new X509Certificate(pki.root.der);
      await expect(verifyAppleJws(signed.signedPayload, root)).resolves.toMatchObject({
        notificationType: "DID_RENEW",
      });
      const forged = await planned.signNotification({
        notificationType: "DID_RENEW",
        ...subscriber(),
        forge: "wrong-root",
      });
      await expect(verifyAppleJws(forged.signedPayload, root)).rejects.toThrow(/trusted root/);
    } finally {
      await planned.stop();
    }
  });
});
