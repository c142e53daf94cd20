import type { ObjectId } from "../../platform/ids";

export const CONSENT_KINDS = ["terms", "privacy", "data_processing", "marketing"] as const;
export type ConsentKind = (typeof CONSENT_KINDS)[number];

/**
 * `consents` (seed 002's GDPR consent, kept as a ledger, GDPR Art. 7(1): the controller must be able to show
 * that consent was given): one record per decision, never updated or deleted while the account lives. The
 * latest per kind is summarised on the user (`users.consents`).
 */
export interface ConsentDoc {
  _id: ObjectId;
  userId: ObjectId;
  kind: ConsentKind;
  granted: boolean;
  /** The document version agreed to (terms, privacy policy), or the consent text's version when given. */
  version: string | null;
  source: "signup" | "api";
  /** Keyed hash of the address the decision came from (never the address itself). */
  ipHash: string | null;
  userAgent: string | null;
  createdAt: Date;
}
