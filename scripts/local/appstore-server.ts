import { createPrivateKey, generateKeyPairSync, type KeyObject, randomUUID, X509Certificate } from "node:crypto";
import { pathToFileURL } from "node:url";
import { CompactSign } from "jose";
import {
  controlBody,
  type Delivery,
  deliver,
  deliveryReport,
  HttpError,
  type JsonObject,
  oneOf,
  optionalNumber,
  optionalString,
  type ReceivedRequest,
  requiredString,
  sendJson,
  startStandIn,
} from "./standin-http";
import { createCertificate, DER_NULL, type IssuedCertificate, type NameAttributes, toPem } from "./x509";

/**
 * Dev/test-only App Store Server Notifications V2 sender. It mints a test PKI shaped like Apple's (root CA →
 * intermediate CA carrying 1.2.840.113635.100.6.2.1 → leaf carrying 1.2.840.113635.100.6.11.1; root and
 * intermediate P-384 signing with SHA-384, leaf P-256 signing the JWS with ES256, as Apple's chain is) and
 * POSTs `{ "signedPayload": "<JWS>" }` exactly as the App Store does: a JWS with header `{ alg: "ES256",
 * x5c: [leaf, intermediate, root] }` over responseBodyV2DecodedPayload, whose `data.signedTransactionInfo`
 * and `data.signedRenewalInfo` are JWSs signed the same way. The checks Apple's own server libraries make
 * (app-store-server-library: x5c of exactly three, intermediate is a CA issued by a trusted root, leaf issued
 * by the intermediate, both marker OIDs present, validity at signedDate) all pass against `rootCertificate`,
 * and each `forge` mode breaks exactly one of them.
 */

export type AppStoreEnvironment = "Sandbox" | "Production";
export type AppStoreForge = "wrong-root" | "bad-signature" | "expired-leaf";

/** The compact description a test gives; everything else is derived as the App Store would fill it in. */
export interface AppStoreNotificationDescription {
  notificationType: string;
  subtype?: string;
  /** Required except for TEST notifications, which carry no transaction. */
  appAccountToken?: string;
  productId?: string;
  originalTransactionId?: string;
  transactionId?: string;
  /** UNIX ms; defaults to signedDate. */
  purchaseDate?: number;
  /** UNIX ms; defaults to purchaseDate + 30 days. */
  expiresDate?: number;
  environment?: AppStoreEnvironment;
  bundleId?: string;
  bundleVersion?: string;
  appAppleId?: number;
  gracePeriodExpiresDate?: number;
  /** UNIX ms the App Store signed the payload; defaults to now. */
  signedDate?: number;
  autoRenewStatus?: 0 | 1;
  autoRenewProductId?: string;
  /** Subscription status (1 active, 2 expired, 3 billing retry, 4 grace period, 5 revoked); derived when absent. */
  status?: 1 | 2 | 3 | 4 | 5;
  revocationDate?: number;
  revocationReason?: 0 | 1;
  inAppOwnershipType?: "PURCHASED" | "FAMILY_SHARED";
  forge?: AppStoreForge;
}

export interface SignedAppStoreNotification {
  notificationUUID: string;
  signedPayload: string;
  /** The decoded payloads, for assertions. */
  payload: JsonObject;
  transaction?: JsonObject;
  renewal?: JsonObject;
}

export interface AppStoreNotifyResult {
  notificationUUID: string;
  signedPayload: string;
  /** The target's answer. */
  status: number;
  body: unknown;
  error?: string;
}

export interface AppStorePki {
  root: IssuedCertificate;
  intermediate: IssuedCertificate;
  leaf: IssuedCertificate;
  leafKey: KeyObject;
  /** A complete chain under a different root, for `forge: "wrong-root"`. */
  impostor: { root: IssuedCertificate; intermediate: IssuedCertificate; leaf: IssuedCertificate; leafKey: KeyObject };
  /** A leaf under the real intermediate whose validity ended a day before the PKI was made. */
  expiredLeaf: { leaf: IssuedCertificate; leafKey: KeyObject };
}

export interface AppStoreDefaults {
  bundleId: string;
  bundleVersion: string;
  appAppleId: number;
  environment: AppStoreEnvironment;
}

export interface AppStoreServerOptions {
  port: number;
  host?: string;
  bundleId?: string;
  bundleVersion?: string;
  /** Apple's numeric app id; sent in Production notifications only (Apple omits it in Sandbox). */
  appAppleId?: number;
  environment?: AppStoreEnvironment;
  /** The PKI to sign with (see `exportAppStorePki`); generated when absent. Given, its root can be configured first. */
  pki?: AppStorePki;
  log?: (line: string) => void;
}

export interface RunningAppStoreServer {
  url: string;
  stop(): Promise<void>;
  /** The root to trust: base64 DER (as Apple publishes AppleRootCA-G3.cer, base64'd) and PEM. */
  rootCertificate: { der: string; pem: string };
  pki: AppStorePki;
  signNotification(description: AppStoreNotificationDescription): Promise<SignedAppStoreNotification>;
  notify(target: string, description: AppStoreNotificationDescription): Promise<AppStoreNotifyResult>;
  deliveries(): Delivery[];
  received(): ReceivedRequest[];
}

export const APPLE_MARKER_OIDS = {
  /** Apple Worldwide Developer Relations intermediate marker, checked by Apple's libraries. */
  intermediate: "1.2.840.113635.100.6.2.1",
  /** App Store receipt-signing leaf marker, checked by Apple's libraries. */
  leaf: "1.2.840.113635.100.6.11.1",
} as const;

const DAY_MS = 86_400_000;
const FORGES: readonly AppStoreForge[] = ["wrong-root", "bad-signature", "expired-leaf"];
const ENVIRONMENTS: readonly AppStoreEnvironment[] = ["Sandbox", "Production"];

export async function startAppStoreServer(opts: AppStoreServerOptions): Promise<RunningAppStoreServer> {
  const defaults: AppStoreDefaults = {
    bundleId: opts.bundleId ?? "app.circle.local",
    bundleVersion: opts.bundleVersion ?? "1",
    appAppleId: opts.appAppleId ?? 1_234_567_890,
    environment: opts.environment ?? "Sandbox",
  };
  const pki = opts.pki ?? createAppStorePki();
  const deliveries: Delivery[] = [];

  const sign = (description: AppStoreNotificationDescription) => signAppStoreNotification(pki, description, defaults);

  const notify = async (target: string, description: AppStoreNotificationDescription) => {
    const signed = await sign(description);
    const delivery = await deliver(
      target,
      { "Content-Type": "application/json" },
      JSON.stringify({ signedPayload: signed.signedPayload }),
    );
    deliveries.push(delivery);
    return { notificationUUID: signed.notificationUUID, signedPayload: signed.signedPayload, delivery };
  };

  const rootCertificate = { der: pki.root.der.toString("base64"), pem: pki.root.pem };

  const standIn = await startStandIn({
    name: "appstore",
    port: opts.port,
    host: opts.host,
    log: opts.log,
    handle: async ({ res, url, method, text }) => {
      if (method === "POST" && url.pathname === "/__notify") {
        const body = controlBody(text);
        const target = requiredString(body, "target");
        const { notificationUUID, signedPayload, delivery } = await notify(target, parseDescription(body));
        return sendJson(res, 200, deliveryReport(delivery, { notificationUUID, signedPayload }));
      }
      if (method === "POST" && url.pathname === "/__sign") {
        return sendJson(res, 200, await sign(parseDescription(controlBody(text))));
      }
      if (method === "GET" && url.pathname === "/__root") return sendJson(res, 200, rootCertificate);
      throw new HttpError(404, { error: "not found" });
    },
  });

  return {
    url: standIn.url,
    stop: standIn.close,
    rootCertificate,
    pki,
    signNotification: sign,
    notify: async (target, description) => {
      const { notificationUUID, signedPayload, delivery } = await notify(target, description);
      return {
        notificationUUID,
        signedPayload,
        status: delivery.status,
        body: deliveryReport(delivery).body,
        ...(delivery.error ? { error: delivery.error } : {}),
      };
    },
    deliveries: () => [...deliveries],
    received: standIn.received,
  };
}

/** Generates the test PKI (a few EC keys: milliseconds). */
export function createAppStorePki(now = new Date()): AppStorePki {
  const chain = (label: string, leafValidity: { notBefore: Date; notAfter: Date }) => {
    const rootKey = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const intermediateKey = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const rootName: NameAttributes = {
      commonName: `${label} Root CA - G3`,
      organizationalUnit: "Local Test Certification Authority",
      organization: "Circle Local Test",
      country: "US",
    };
    const intermediateName: NameAttributes = {
      commonName: `${label} Worldwide Developer Relations Certification Authority`,
      organizationalUnit: "G6",
      organization: "Circle Local Test",
      country: "US",
    };
    const root = createCertificate({
      subject: rootName,
      issuer: rootName,
      publicKey: rootKey.publicKey,
      signingKey: rootKey.privateKey,
      issuerPublicKey: rootKey.publicKey,
      hash: "sha384",
      notBefore: new Date(now.getTime() - 365 * DAY_MS),
      notAfter: new Date(now.getTime() + 20 * 365 * DAY_MS),
      ca: true,
      keyUsage: ["keyCertSign", "cRLSign"],
    });
    const intermediate = createCertificate({
      subject: intermediateName,
      issuer: rootName,
      publicKey: intermediateKey.publicKey,
      signingKey: rootKey.privateKey,
      issuerPublicKey: rootKey.publicKey,
      hash: "sha384",
      notBefore: new Date(now.getTime() - 365 * DAY_MS),
      notAfter: new Date(now.getTime() + 10 * 365 * DAY_MS),
      ca: true,
      pathLength: 0,
      keyUsage: ["keyCertSign", "cRLSign"],
      extensions: [{ oid: APPLE_MARKER_OIDS.intermediate, value: DER_NULL }],
    });
    const issueLeaf = (validity: { notBefore: Date; notAfter: Date }) => {
      const leafKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const leaf = createCertificate({
        subject: {
          commonName: `${label} ECC Mac App Store and iTunes Store Receipt Signing`,
          organizationalUnit: "Local Test Certification Authority",
          organization: "Circle Local Test",
          country: "US",
        },
        issuer: intermediateName,
        publicKey: leafKey.publicKey,
        signingKey: intermediateKey.privateKey,
        issuerPublicKey: intermediateKey.publicKey,
        hash: "sha384",
        ...validity,
        ca: false,
        keyUsage: ["digitalSignature"],
        extensions: [{ oid: APPLE_MARKER_OIDS.leaf, value: DER_NULL }],
      });
      return { leaf, leafKey: leafKey.privateKey };
    };
    return { root, intermediate, ...issueLeaf(leafValidity), issueLeaf };
  };

  const current = {
    notBefore: new Date(now.getTime() - 30 * DAY_MS),
    notAfter: new Date(now.getTime() + 2 * 365 * DAY_MS),
  };
  const real = chain("Circle Local Apple", current);
  const impostor = chain("Impostor Apple", current);
  const expiredLeaf = real.issueLeaf({
    notBefore: new Date(now.getTime() - 400 * DAY_MS),
    notAfter: new Date(now.getTime() - DAY_MS),
  });
  return {
    root: real.root,
    intermediate: real.intermediate,
    leaf: real.leaf,
    leafKey: real.leafKey,
    impostor: {
      root: impostor.root,
      intermediate: impostor.intermediate,
      leaf: impostor.leaf,
      leafKey: impostor.leafKey,
    },
    expiredLeaf,
  };
}

/** The PKI as plain JSON (certificates as base64 DER, keys as PKCS#8 PEM), to hand to another process. */
export type SerializedAppStorePki = Record<
  "root" | "intermediate" | "leaf" | "impostorRoot" | "impostorIntermediate" | "impostorLeaf" | "expiredLeaf",
  string
> &
  Record<"leafKey" | "impostorLeafKey" | "expiredLeafKey", string>;

export function exportAppStorePki(pki: AppStorePki): SerializedAppStorePki {
  const cert = (c: IssuedCertificate) => c.der.toString("base64");
  const key = (k: KeyObject) => k.export({ type: "pkcs8", format: "pem" }).toString();
  return {
    root: cert(pki.root),
    intermediate: cert(pki.intermediate),
    leaf: cert(pki.leaf),
    leafKey: key(pki.leafKey),
    impostorRoot: cert(pki.impostor.root),
    impostorIntermediate: cert(pki.impostor.intermediate),
    impostorLeaf: cert(pki.impostor.leaf),
    impostorLeafKey: key(pki.impostor.leafKey),
    expiredLeaf: cert(pki.expiredLeaf.leaf),
    expiredLeafKey: key(pki.expiredLeaf.leafKey),
  };
}

export function importAppStorePki(serialized: SerializedAppStorePki): AppStorePki {
  const cert = (b64: string): IssuedCertificate => {
    const der = Buffer.from(b64, "base64");
    return { der, pem: toPem(der), x509: new X509Certificate(der) };
  };
  return {
    root: cert(serialized.root),
    intermediate: cert(serialized.intermediate),
    leaf: cert(serialized.leaf),
    leafKey: createPrivateKey(serialized.leafKey),
    impostor: {
      root: cert(serialized.impostorRoot),
      intermediate: cert(serialized.impostorIntermediate),
      leaf: cert(serialized.impostorLeaf),
      leafKey: createPrivateKey(serialized.impostorLeafKey),
    },
    expiredLeaf: { leaf: cert(serialized.expiredLeaf), leafKey: createPrivateKey(serialized.expiredLeafKey) },
  };
}

/** Builds and signs one notification (and its nested transaction / renewal JWSs) as the App Store does. */
export async function signAppStoreNotification(
  pki: AppStorePki,
  description: AppStoreNotificationDescription,
  defaults: AppStoreDefaults,
): Promise<SignedAppStoreNotification> {
  const signer = signerFor(pki, description.forge);
  const signedDate = description.signedDate ?? Date.now();
  const environment = description.environment ?? defaults.environment;
  const bundleId = description.bundleId ?? defaults.bundleId;
  const notificationUUID = randomUUID();

  const data: JsonObject = {
    // Apple sends appAppleId in Production only.
    ...(environment === "Production" || description.appAppleId !== undefined
      ? { appAppleId: description.appAppleId ?? defaults.appAppleId }
      : {}),
    bundleId,
    bundleVersion: description.bundleVersion ?? defaults.bundleVersion,
    environment,
  };

  let transaction: JsonObject | undefined;
  let renewal: JsonObject | undefined;
  if (description.notificationType !== "TEST") {
    const derived = deriveSubscription(description, signedDate);
    const { appAccountToken, productId, originalTransactionId } = description;
    if (!appAccountToken || !productId || !originalTransactionId) {
      throw new HttpError(400, { error: "appAccountToken, productId and originalTransactionId are required" });
    }
    transaction = {
      transactionId: description.transactionId ?? numericId(),
      originalTransactionId,
      webOrderLineItemId: numericId(),
      bundleId,
      productId,
      subscriptionGroupIdentifier: "21000001",
      purchaseDate: derived.purchaseDate,
      originalPurchaseDate: derived.purchaseDate,
      expiresDate: derived.expiresDate,
      quantity: 1,
      type: "Auto-Renewable Subscription",
      appAccountToken,
      inAppOwnershipType:
        description.inAppOwnershipType ?? (description.notificationType === "REVOKE" ? "FAMILY_SHARED" : "PURCHASED"),
      signedDate,
      environment,
      transactionReason: description.notificationType === "DID_RENEW" ? "RENEWAL" : "PURCHASE",
      storefront: "USA",
      storefrontId: "143441",
      price: 4990,
      currency: "USD",
      ...(derived.revocationDate !== undefined ? { revocationDate: derived.revocationDate } : {}),
      ...(derived.revocationReason !== undefined ? { revocationReason: derived.revocationReason } : {}),
    };
    renewal = {
      originalTransactionId,
      autoRenewProductId: description.autoRenewProductId ?? productId,
      productId,
      autoRenewStatus: derived.autoRenewStatus,
      isInBillingRetryPeriod: derived.isInBillingRetryPeriod,
      signedDate,
      environment,
      recentSubscriptionStartDate: derived.purchaseDate,
      renewalDate: derived.expiresDate,
      renewalPrice: 4990,
      currency: "USD",
      ...(derived.gracePeriodExpiresDate !== undefined
        ? { gracePeriodExpiresDate: derived.gracePeriodExpiresDate }
        : {}),
      ...(derived.expirationIntent !== undefined ? { expirationIntent: derived.expirationIntent } : {}),
    };
    data.signedTransactionInfo = await signer(transaction);
    data.signedRenewalInfo = await signer(renewal);
    data.status = derived.status;
  }

  const payload: JsonObject = {
    notificationType: description.notificationType,
    ...(description.subtype ? { subtype: description.subtype } : {}),
    notificationUUID,
    data,
    version: "2.0",
    signedDate,
  };
  return { notificationUUID, signedPayload: await signer(payload), payload, transaction, renewal };
}

interface DerivedSubscription {
  purchaseDate: number;
  expiresDate: number;
  status: number;
  autoRenewStatus: number;
  isInBillingRetryPeriod: boolean;
  gracePeriodExpiresDate?: number;
  expirationIntent?: number;
  revocationDate?: number;
  revocationReason?: number;
}

// expirationIntent per EXPIRED subtype (JWSRenewalInfoDecodedPayload.expirationIntent: 1 customer canceled,
// 2 billing error, 3 declined a price increase, 4 product unavailable, 5 other).
const EXPIRATION_INTENT: Record<string, number> = {
  VOLUNTARY: 1,
  BILLING_RETRY: 2,
  PRICE_INCREASE: 3,
  PRODUCT_NOT_FOR_SALE: 4,
};

/** The fields Apple derives from what happened, following the notificationType/subtype documentation. */
function deriveSubscription(d: AppStoreNotificationDescription, signedDate: number): DerivedSubscription {
  const purchaseDate = d.purchaseDate ?? signedDate;
  const expiresDate = d.expiresDate ?? purchaseDate + 30 * DAY_MS;
  const type = d.notificationType;
  const inGrace = type === "DID_FAIL_TO_RENEW" && d.subtype === "GRACE_PERIOD";
  const revoked = type === "REFUND" || type === "REVOKE";

  let status: number;
  if (revoked) status = 5;
  else if (type === "EXPIRED") status = 2;
  else if (inGrace) status = 4;
  else if (type === "DID_FAIL_TO_RENEW" || type === "GRACE_PERIOD_EXPIRED") status = 3;
  else status = expiresDate > signedDate ? 1 : 2;

  const autoRenewOff =
    type === "EXPIRED" || revoked || (type === "DID_CHANGE_RENEWAL_STATUS" && d.subtype === "AUTO_RENEW_DISABLED");
  return {
    purchaseDate,
    expiresDate,
    status: d.status ?? status,
    autoRenewStatus: d.autoRenewStatus ?? (autoRenewOff ? 0 : 1),
    isInBillingRetryPeriod: type === "DID_FAIL_TO_RENEW" || type === "GRACE_PERIOD_EXPIRED",
    gracePeriodExpiresDate: d.gracePeriodExpiresDate ?? (inGrace ? expiresDate + 16 * DAY_MS : undefined),
    expirationIntent: type === "EXPIRED" ? (EXPIRATION_INTENT[d.subtype ?? ""] ?? 5) : undefined,
    revocationDate: d.revocationDate ?? (revoked ? signedDate : undefined),
    revocationReason: d.revocationReason ?? (type === "REFUND" ? 0 : undefined),
  };
}

type Signer = (payload: JsonObject) => Promise<string>;

function signerFor(pki: AppStorePki, forge: AppStoreForge | undefined): Signer {
  let chain = [pki.leaf, pki.intermediate, pki.root];
  let key = pki.leafKey;
  if (forge === "wrong-root") {
    chain = [pki.impostor.leaf, pki.impostor.intermediate, pki.impostor.root];
    key = pki.impostor.leafKey;
  } else if (forge === "expired-leaf") {
    chain = [pki.expiredLeaf.leaf, pki.intermediate, pki.root];
    key = pki.expiredLeaf.leafKey;
  } else if (forge === "bad-signature") {
    // The genuine chain, but signed by a key that is not the leaf's.
    key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  }
  const x5c = chain.map((certificate) => certificate.der.toString("base64"));
  return (payload) =>
    new CompactSign(Buffer.from(JSON.stringify(payload), "utf8")).setProtectedHeader({ alg: "ES256", x5c }).sign(key);
}

function parseDescription(body: JsonObject): AppStoreNotificationDescription {
  return {
    notificationType: requiredString(body, "notificationType"),
    subtype: optionalString(body, "subtype"),
    appAccountToken: optionalString(body, "appAccountToken"),
    productId: optionalString(body, "productId"),
    originalTransactionId: optionalString(body, "originalTransactionId"),
    transactionId: optionalString(body, "transactionId"),
    purchaseDate: optionalNumber(body, "purchaseDate"),
    expiresDate: optionalNumber(body, "expiresDate"),
    environment: oneOf(body, "environment", ENVIRONMENTS),
    bundleId: optionalString(body, "bundleId"),
    bundleVersion: optionalString(body, "bundleVersion"),
    appAppleId: optionalNumber(body, "appAppleId"),
    gracePeriodExpiresDate: optionalNumber(body, "gracePeriodExpiresDate"),
    signedDate: optionalNumber(body, "signedDate"),
    autoRenewStatus: numberIn(body, "autoRenewStatus", [0, 1] as const),
    autoRenewProductId: optionalString(body, "autoRenewProductId"),
    status: numberIn(body, "status", [1, 2, 3, 4, 5] as const),
    revocationDate: optionalNumber(body, "revocationDate"),
    revocationReason: numberIn(body, "revocationReason", [0, 1] as const),
    inAppOwnershipType: oneOf(body, "inAppOwnershipType", ["PURCHASED", "FAMILY_SHARED"] as const),
    forge: oneOf(body, "forge", FORGES),
  };
}

function numberIn<T extends number>(body: JsonObject, key: string, allowed: readonly T[]): T | undefined {
  const value = optionalNumber(body, key);
  if (value === undefined) return undefined;
  if (!(allowed as readonly number[]).includes(value)) {
    throw new HttpError(400, { error: `"${key}" must be one of ${allowed.join(", ")}` });
  }
  return value as T;
}

/** Apple transaction ids are decimal strings. */
function numericId(): string {
  return `2000000${Math.floor(Math.random() * 1e9)
    .toString()
    .padStart(9, "0")}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startAppStoreServer({
    port: Number(process.env.APPSTORE_PORT ?? 8091),
    log: process.env.APPSTORE_QUIET ? undefined : (line) => console.log(line),
  });
  console.log(
    `App Store notifications stand-in on ${server.url}; root certificate (PEM):\n${server.rootCertificate.pem}`,
  );
  const shutdown = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
