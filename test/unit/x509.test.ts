import { generateKeyPairSync } from "node:crypto";
import { CompactSign } from "jose";
import { describe, expect, it } from "vitest";
import { APPLE_MARKER_OIDS, createAppStorePki, signAppStoreNotification } from "../../scripts/local/appstore-server";
import { createCertificate, DER_NULL } from "../../scripts/local/x509";
import { loadConfig } from "../../src/config";
import {
  APPLE_RECEIPT_SIGNING_LEAF_OID,
  APPLE_WWDR_INTERMEDIATE_OID,
  AppleSignatureError,
  appleRoots,
  appleVerifier,
} from "../../src/platform/billing/appstore";
import { CertificateError, fromBase64, parseCertificate, verifyChain } from "../../src/platform/x509";
import { APPLE_REAL_CHAIN_VALID_AT, APPLE_REAL_INTERMEDIATE, APPLE_REAL_LEAF } from "./fixtures/apple-chain";
import { unitEnv } from "./support/env";

const appleRoot = loadConfig(unitEnv()).billing.appStore.rootCertificates;
const applePolicy = (at: Date) => ({
  at,
  length: 3,
  leafOids: [APPLE_RECEIPT_SIGNING_LEAF_OID],
  intermediateOids: [APPLE_WWDR_INTERMEDIATE_OID],
});
const parse = (b64: string) => parseCertificate(fromBase64(b64));

describe("X.509 chains on WebCrypto", () => {
  it("accepts Apple's genuine App Store chain up to the default root (Apple Root CA - G3)", async () => {
    const chain = [APPLE_REAL_LEAF, APPLE_REAL_INTERMEDIATE, ...appleRoot].map(parse);
    const key = await verifyChain(chain, appleRoots(appleRoot), applePolicy(APPLE_REAL_CHAIN_VALID_AT));
    expect(key.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    const [leaf, intermediate] = chain;
    expect(intermediate?.basicConstraints).toEqual({ ca: true, pathLength: 0 });
    expect([...(intermediate?.keyUsage ?? [])].sort()).toEqual(["cRLSign", "keyCertSign"]);
    expect(leaf?.basicConstraints).toEqual({ ca: false, pathLength: null });
    expect(leaf?.keyUsage).toEqual(new Set(["digitalSignature"]));
  });

  it("refuses the genuine chain once its leaf has expired, and under another root", async () => {
    const chain = [APPLE_REAL_LEAF, APPLE_REAL_INTERMEDIATE, ...appleRoot].map(parse);
    await expect(verifyChain(chain, appleRoots(appleRoot), applePolicy(new Date("2024-06-01")))).rejects.toThrow(
      /leaf certificate is not valid/,
    );
    const pki = createAppStorePki();
    await expect(
      verifyChain(chain, [parseCertificate(pki.root.der)], applePolicy(APPLE_REAL_CHAIN_VALID_AT)),
    ).rejects.toThrow(/trusted root/);
  });

  it("accepts the stand-in's chain and refuses each way of breaking it", async () => {
    const pki = createAppStorePki();
    const anchors = [parseCertificate(pki.root.der)];
    const now = new Date();
    const of = (...certs: { der: Buffer }[]) => certs.map((c) => parseCertificate(c.der));
    await expect(
      verifyChain(of(pki.leaf, pki.intermediate, pki.root), anchors, applePolicy(now)),
    ).resolves.toBeDefined();
    // An impostor's complete chain, a leaf that expired, the order swapped, a chain cut short.
    await expect(
      verifyChain(of(pki.impostor.leaf, pki.impostor.intermediate, pki.impostor.root), anchors, applePolicy(now)),
    ).rejects.toThrow(CertificateError);
    await expect(
      verifyChain(of(pki.expiredLeaf.leaf, pki.intermediate, pki.root), anchors, applePolicy(now)),
    ).rejects.toThrow(/leaf certificate is not valid/);
    await expect(verifyChain(of(pki.intermediate, pki.leaf, pki.root), anchors, applePolicy(now))).rejects.toThrow(
      CertificateError,
    );
    await expect(verifyChain(of(pki.leaf, pki.root), anchors, applePolicy(now))).rejects.toThrow(/exactly 3/);
    // The impostor's leaf under the genuine intermediate: names match nothing, signature neither.
    await expect(
      verifyChain(of(pki.impostor.leaf, pki.intermediate, pki.root), anchors, applePolicy(now)),
    ).rejects.toThrow(CertificateError);
  });

  it("refuses a forged issuer signature, a leaf that is a CA, an intermediate that is not, missing marker OIDs and unknown critical extensions", async () => {
    const now = new Date();
    const intermediateKey = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const leafKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rootName = {
      commonName: "Circle Local Apple Root CA - G3",
      organizationalUnit: "Local Test Certification Authority",
      organization: "Circle Local Test",
      country: "US",
    };
    const validity = {
      notBefore: new Date(now.getTime() - 86_400_000),
      notAfter: new Date(now.getTime() + 86_400_000),
    };
    // A fresh root and intermediate, so that each variation differs from a valid chain in one way only.
    const freshRoot = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const root = createCertificate({
      subject: rootName,
      issuer: rootName,
      publicKey: freshRoot.publicKey,
      signingKey: freshRoot.privateKey,
      issuerPublicKey: freshRoot.publicKey,
      hash: "sha384",
      ...validity,
      ca: true,
      keyUsage: ["keyCertSign", "cRLSign"],
    });
    const intermediateName = { commonName: "Test WWDR" };
    const intermediate = (ca: boolean, marker = true) =>
      createCertificate({
        subject: intermediateName,
        issuer: rootName,
        publicKey: intermediateKey.publicKey,
        signingKey: freshRoot.privateKey,
        issuerPublicKey: freshRoot.publicKey,
        hash: "sha384",
        ...validity,
        ca,
        pathLength: ca ? 0 : undefined,
        keyUsage: ca ? ["keyCertSign", "cRLSign"] : ["digitalSignature"],
        extensions: marker ? [{ oid: APPLE_MARKER_OIDS.intermediate, value: DER_NULL }] : [],
      });
    const leaf = (options: { ca?: boolean; marker?: boolean; critical?: string; forged?: boolean } = {}) =>
      createCertificate({
        subject: { commonName: "Test leaf" },
        issuer: intermediateName,
        publicKey: leafKey.publicKey,
        // A forger names the genuine intermediate as issuer but can only sign with a key of their own.
        signingKey: options.forged
          ? generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey
          : intermediateKey.privateKey,
        issuerPublicKey: intermediateKey.publicKey,
        hash: "sha384",
        ...validity,
        ca: options.ca ?? false,
        keyUsage: options.ca ? ["keyCertSign"] : ["digitalSignature"],
        extensions: [
          ...(options.marker === false ? [] : [{ oid: APPLE_MARKER_OIDS.leaf, value: DER_NULL }]),
          ...(options.critical ? [{ oid: options.critical, critical: true, value: DER_NULL }] : []),
        ],
      });
    const trust = [parseCertificate(root.der)];
    const check = (l: { der: Buffer }, i: { der: Buffer }) =>
      verifyChain(
        [l, i, root].map((c) => parseCertificate(c.der)),
        trust,
        applePolicy(now),
      );
    await expect(check(leaf(), intermediate(true))).resolves.toBeDefined();
    await expect(check(leaf({ forged: true }), intermediate(true))).rejects.toThrow(/signature does not verify/);
    await expect(check(leaf(), intermediate(false))).rejects.toThrow(/intermediate certificate is not a CA/);
    await expect(check(leaf({ ca: true }), intermediate(true))).rejects.toThrow(/leaf certificate is a CA/);
    await expect(check(leaf({ marker: false }), intermediate(true))).rejects.toThrow(/leaf certificate lacks/);
    await expect(check(leaf(), intermediate(true, false))).rejects.toThrow(/intermediate certificate lacks/);
    await expect(check(leaf({ critical: "1.2.3.4.5" }), intermediate(true))).rejects.toThrow(/unknown critical/);
  });

  it("holds intermediates to their issuer's path length", async () => {
    const now = new Date();
    const validity = {
      notBefore: new Date(now.getTime() - 86_400_000),
      notAfter: new Date(now.getTime() + 86_400_000),
    };
    const keys = Array.from({ length: 4 }, () => generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const names = ["Root", "Upper CA", "Lower CA", "Leaf"].map((commonName) => ({ commonName }));
    const issue = (subject: number, pathLength: number | undefined) =>
      createCertificate({
        subject: names[subject] as { commonName: string },
        issuer: names[Math.max(0, subject - 1)] as { commonName: string },
        publicKey: (keys[subject] as (typeof keys)[number]).publicKey,
        signingKey: (keys[Math.max(0, subject - 1)] as (typeof keys)[number]).privateKey,
        issuerPublicKey: (keys[Math.max(0, subject - 1)] as (typeof keys)[number]).publicKey,
        hash: "sha256",
        ...validity,
        ca: subject < 3,
        pathLength,
        keyUsage: subject < 3 ? ["keyCertSign"] : ["digitalSignature"],
      });
    const root = parseCertificate(issue(0, undefined).der);
    const chainWith = (upperPathLength: number) =>
      [issue(3, undefined), issue(2, 0), issue(1, upperPathLength)].map((c) => parseCertificate(c.der)).concat(root);
    await expect(verifyChain(chainWith(1), [root], { at: now })).resolves.toBeDefined();
    await expect(verifyChain(chainWith(0), [root], { at: now })).rejects.toThrow(/path length/);
  });

  it("refuses bytes that are not a certificate", () => {
    expect(() => parseCertificate(new TextEncoder().encode("abc123"))).toThrow(CertificateError);
    const real = fromBase64(APPLE_REAL_LEAF);
    expect(() => parseCertificate(real.subarray(0, real.length - 10))).toThrow(CertificateError);
    expect(() => parseCertificate(new Uint8Array([...real, 0]))).toThrow(CertificateError);
  });
});

describe("App Store signed payloads", () => {
  const pki = createAppStorePki();
  const roots = [parseCertificate(pki.root.der)];
  const defaults = { bundleId: "app.circle.test", bundleVersion: "1", appAppleId: 1, environment: "Sandbox" as const };
  const subscriber = {
    appAccountToken: crypto.randomUUID(),
    productId: "circle.pro.monthly",
    originalTransactionId: "1000000000000001",
  };

  it("verifies a notification and its nested transaction and renewal", async () => {
    const signed = await signAppStoreNotification(
      pki,
      { notificationType: "SUBSCRIBED", subtype: "INITIAL_BUY", ...subscriber },
      defaults,
    );
    const verified = await appleVerifier(roots, new Date()).notification(signed.signedPayload);
    expect(verified.payload).toMatchObject({
      notificationType: "SUBSCRIBED",
      notificationUUID: signed.notificationUUID,
    });
    expect(verified.transaction).toMatchObject({
      appAccountToken: subscriber.appAccountToken,
      productId: "circle.pro.monthly",
    });
    expect(verified.renewal?.originalTransactionId).toBe(subscriber.originalTransactionId);
  });

  it.each([
    ["wrong-root", "untrusted"],
    ["expired-leaf", "untrusted"],
    ["bad-signature", "bad_signature"],
  ] as const)("refuses a %s payload (%s)", async (forge, reason) => {
    const signed = await signAppStoreNotification(
      pki,
      { notificationType: "DID_RENEW", ...subscriber, forge },
      defaults,
    );
    const error = await appleVerifier(roots, new Date())
      .notification(signed.signedPayload)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppleSignatureError);
    expect((error as AppleSignatureError).reason).toBe(reason);
  });

  it("refuses another algorithm, a missing chain and a payload whose signature was cut", async () => {
    const x5c = [pki.leaf, pki.intermediate, pki.root].map((c) => c.der.toString("base64"));
    const body = new TextEncoder().encode(JSON.stringify({ notificationType: "TEST" }));
    const es384 = await new CompactSign(body)
      .setProtectedHeader({ alg: "ES384", x5c })
      .sign(generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey);
    const noChain = await new CompactSign(body).setProtectedHeader({ alg: "ES256" }).sign(pki.leafKey);
    const verifier = appleVerifier(roots, new Date());
    for (const jws of [es384, noChain, "not.a.jws", `${noChain.split(".").slice(0, 2).join(".")}.`]) {
      await expect(verifier.notification(jws)).rejects.toBeInstanceOf(AppleSignatureError);
    }
  });
});
