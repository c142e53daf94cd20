import { compactVerify, decodeProtectedHeader, errors } from "jose";
import { z } from "zod";
import { type Certificate, CertificateError, fromBase64, parseCertificate, verifyChain } from "../x509";

/**
 * App Store Server Notifications V2 on the wire: `{ signedPayload }`, a JWS (ES256) whose header carries the
 * signing chain in `x5c` (leaf, Apple WWDR intermediate, Apple root). Verified the way Apple's own server
 * libraries verify it: exactly three certificates ending at a configured root, each issued and signed by the
 * next, all valid now, CA constraints respected, Apple's marker OIDs on the intermediate and the leaf, and the
 * JWS signature under the leaf's key with the algorithm pinned. The nested `signedTransactionInfo` and
 * `signedRenewalInfo` are JWSs of the same kind and are verified the same way.
 */

/** Apple's marker extensions (checked by app-store-server-library's ChainVerifier). */
export const APPLE_WWDR_INTERMEDIATE_OID = "1.2.840.113635.100.6.2.1";
export const APPLE_RECEIPT_SIGNING_LEAF_OID = "1.2.840.113635.100.6.11.1";

/** Why a signed payload was refused. */
export class AppleSignatureError extends Error {
  override name = "AppleSignatureError";
  constructor(
    readonly reason: "malformed" | "untrusted" | "bad_signature",
    message: string,
  ) {
    super(message);
  }
}

const ms = z.number().int().nonnegative();

/** responseBodyV2DecodedPayload, the fields the API reads. */
export const AppleNotificationPayload = z.object({
  notificationType: z.string().min(1),
  subtype: z.string().optional(),
  notificationUUID: z.string().min(1).max(64),
  version: z.string().optional(),
  signedDate: ms,
  data: z
    .object({
      environment: z.string(),
      bundleId: z.string(),
      appAppleId: z.number().int().optional(),
      bundleVersion: z.string().optional(),
      signedTransactionInfo: z.string().optional(),
      signedRenewalInfo: z.string().optional(),
      status: z.number().int().optional(),
    })
    .optional(),
  summary: z.unknown().optional(),
  externalPurchaseToken: z.unknown().optional(),
});
export type AppleNotificationPayload = z.infer<typeof AppleNotificationPayload>;

/** JWSTransactionDecodedPayload, the fields the API reads. */
export const AppleTransaction = z.object({
  transactionId: z.string(),
  originalTransactionId: z.string().min(1),
  bundleId: z.string(),
  productId: z.string().min(1),
  purchaseDate: ms.optional(),
  expiresDate: ms.optional(),
  appAccountToken: z.string().optional(),
  environment: z.string(),
  signedDate: ms,
  type: z.string().optional(),
  inAppOwnershipType: z.string().optional(),
  revocationDate: ms.optional(),
  revocationReason: z.number().int().optional(),
});
export type AppleTransaction = z.infer<typeof AppleTransaction>;

/** JWSRenewalInfoDecodedPayload, the fields the API reads. */
export const AppleRenewalInfo = z.object({
  originalTransactionId: z.string(),
  autoRenewProductId: z.string().optional(),
  autoRenewStatus: z.number().int().optional(),
  gracePeriodExpiresDate: ms.optional(),
  isInBillingRetryPeriod: z.boolean().optional(),
  environment: z.string().optional(),
  signedDate: ms.optional(),
});
export type AppleRenewalInfo = z.infer<typeof AppleRenewalInfo>;

export interface VerifiedAppleNotification {
  payload: AppleNotificationPayload;
  transaction: AppleTransaction | null;
  renewal: AppleRenewalInfo | null;
}

/** Parses configured roots (base64 DER, as Apple publishes AppleRootCA-G3.cer); a bad one fails loudly. */
export function appleRoots(base64Certificates: string[]): Certificate[] {
  return base64Certificates.map((b64) => parseCertificate(fromBase64(b64)));
}

/**
 * A verifier for one notification: the outer payload and its nested JWSs usually share one chain, which is
 * then checked once.
 */
export function appleVerifier(roots: Certificate[], now: Date) {
  const keys = new Map<string, Promise<CryptoKey>>();

  const keyFor = (x5c: string[]): Promise<CryptoKey> => {
    const id = x5c.join(".");
    let key = keys.get(id);
    if (!key) {
      key = (async () => {
        let chain: Certificate[];
        try {
          chain = x5c.map((b64) => parseCertificate(fromBase64(b64)));
        } catch (error) {
          throw new AppleSignatureError("malformed", `x5c: ${(error as Error).message}`);
        }
        try {
          return await verifyChain(chain, roots, {
            at: now,
            length: 3,
            leafOids: [APPLE_RECEIPT_SIGNING_LEAF_OID],
            intermediateOids: [APPLE_WWDR_INTERMEDIATE_OID],
          });
        } catch (error) {
          if (error instanceof CertificateError) throw new AppleSignatureError("untrusted", error.message);
          throw error;
        }
      })();
      keys.set(id, key);
    }
    return key;
  };

  const verify = async (jws: string): Promise<unknown> => {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(jws);
    } catch {
      throw new AppleSignatureError("malformed", "not a compact JWS");
    }
    if (header.alg !== "ES256") throw new AppleSignatureError("malformed", "the JWS must be signed with ES256");
    const x5c = header.x5c;
    if (!Array.isArray(x5c) || !x5c.every((c) => typeof c === "string")) {
      throw new AppleSignatureError("malformed", "the JWS header carries no x5c chain");
    }
    const key = await keyFor(x5c);
    try {
      const { payload } = await compactVerify(jws, key, { algorithms: ["ES256"] });
      return JSON.parse(new TextDecoder().decode(payload)) as unknown;
    } catch (error) {
      if (error instanceof errors.JWSSignatureVerificationFailed) {
        throw new AppleSignatureError("bad_signature", "the JWS signature does not verify under the leaf certificate");
      }
      if (error instanceof errors.JOSEError || error instanceof SyntaxError) {
        throw new AppleSignatureError("malformed", "the JWS could not be read");
      }
      throw error;
    }
  };

  const parsed = <T>(schema: z.ZodType<T>, value: unknown, what: string): T => {
    const result = schema.safeParse(value);
    if (!result.success) throw new AppleSignatureError("malformed", `${what} is not what Apple sends`);
    return result.data;
  };

  return {
    /** Verifies the notification and its nested JWSs; throws AppleSignatureError for anything untrusted. */
    async notification(signedPayload: string): Promise<VerifiedAppleNotification> {
      const payload = parsed(AppleNotificationPayload, await verify(signedPayload), "the payload");
      const transactionJws = payload.data?.signedTransactionInfo;
      const renewalJws = payload.data?.signedRenewalInfo;
      const [transaction, renewal] = await Promise.all([
        transactionJws
          ? verify(transactionJws).then((v) => parsed(AppleTransaction, v, "signedTransactionInfo"))
          : null,
        renewalJws ? verify(renewalJws).then((v) => parsed(AppleRenewalInfo, v, "signedRenewalInfo")) : null,
      ]);
      return { payload, transaction, renewal };
    },
  };
}
