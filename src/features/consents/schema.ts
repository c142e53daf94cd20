import { z } from "zod";
import { pageOf } from "../../core/schemas";
import { CONSENT_KINDS, type ConsentDoc, type ConsentKind, type ConsentState, type UserDoc } from "../../db";

/** The documents whose current version an account must have accepted (the others are optional consents). */
export const VERSIONED_KINDS = ["terms", "privacy"] as const satisfies readonly ConsentKind[];
export type VersionedKind = (typeof VERSIONED_KINDS)[number];

/** The current terms and privacy-policy versions (LEGAL_TERMS_VERSION, LEGAL_PRIVACY_VERSION). */
export interface LegalVersions {
  termsVersion: string;
  privacyVersion: string;
}

export function currentVersionOf(kind: VersionedKind, legal: LegalVersions): string {
  return kind === "terms" ? legal.termsVersion : legal.privacyVersion;
}

/**
 * The documents the user must (re-)accept: those never accepted, withdrawn, or accepted in a version that is
 * no longer current (a new terms version asks everyone again).
 */
export function requiredConsents(user: Pick<UserDoc, "consents">, legal: LegalVersions): VersionedKind[] {
  return VERSIONED_KINDS.filter((kind) => {
    const state = user.consents?.[kind];
    return !state?.granted || state.version !== currentVersionOf(kind, legal);
  });
}

const Version = z
  .string()
  .min(1)
  .max(40)
  .regex(/^[\p{L}\p{N}._-]+$/u, "letters, digits, '.', '_' or '-'");

export const ConsentBody = z
  .object({
    kind: z.enum(CONSENT_KINDS),
    version: Version.optional().meta({
      description: "terms / privacy: the version agreed to (default and only accepted value: the current one)",
    }),
    granted: z.boolean(),
  })
  .strict()
  .meta({ id: "ConsentDecision" });
export type ConsentBody = z.infer<typeof ConsentBody>;

export const ConsentRecord = z
  .object({
    id: z.string(),
    kind: z.enum(CONSENT_KINDS),
    granted: z.boolean(),
    version: z.string().nullable(),
    source: z.enum(["signup", "api"]),
    userAgent: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: "ConsentRecord" });
export type ConsentRecord = z.infer<typeof ConsentRecord>;

const CurrentConsent = z
  .object({ granted: z.boolean(), version: z.string().nullable(), at: z.string() })
  .nullable()
  .meta({ id: "CurrentConsent" });

export const ConsentOverview = pageOf(ConsentRecord, "ConsentHistory")
  .extend({
    current: z.object({
      terms: CurrentConsent,
      privacy: CurrentConsent,
      data_processing: CurrentConsent,
      marketing: CurrentConsent,
    }),
    versions: z.object({ terms: z.string(), privacy: z.string() }).meta({ description: "The current versions" }),
    required: z.array(z.enum(VERSIONED_KINDS)).meta({ description: "Documents to (re-)accept before going on" }),
  })
  .meta({ id: "ConsentOverview" });
export type ConsentOverview = z.infer<typeof ConsentOverview>;

export const LegalVersionsView = z
  .object({ termsVersion: z.string(), privacyVersion: z.string() })
  .meta({ id: "LegalVersions" });

export function toConsentRecord(doc: ConsentDoc): ConsentRecord {
  return {
    id: doc._id.toHexString(),
    kind: doc.kind,
    granted: doc.granted,
    version: doc.version,
    source: doc.source,
    userAgent: doc.userAgent,
    createdAt: doc.createdAt.toISOString(),
  };
}

export function toCurrentConsent(state: ConsentState | undefined) {
  return state ? { granted: state.granted, version: state.version, at: state.at.toISOString() } : null;
}
