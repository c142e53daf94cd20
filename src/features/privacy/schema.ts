import { z } from "zod";
import { FEATURE_SECTIONS } from "./features";

export const DeletionAccepted = z
  .object({ erasureAfter: z.string().meta({ description: "When the erasure job removes personal data" }) })
  .meta({ id: "DeletionAccepted" });
export type DeletionAccepted = z.infer<typeof DeletionAccepted>;

/** The export's format version: raised whenever a section is added, removed or changes shape. */
export const EXPORT_SCHEMA_VERSION = 2;

/**
 * The export's sections in the order they are written, each a list of stored records (ids and times as
 * strings). `export.ts` fills each from its collection; this list is also what the OpenAPI
 * description says.
 */
export const EXPORT_SECTIONS = {
  devices: "Devices registered on the account (push tokens are not included, only whether one is set)",
  sessions: "Sign-in sessions, revoked ones too (token hashes are not included)",
  emailTokens: "Verification, reset and email-change links issued (their hashes are not included)",
  emailOutbox: "Emails waiting to be sent to you (links in them are not included)",
  posts: "Posts you published, deleted ones too",
  comments: "Comments and replies you wrote, deleted ones too",
  votes: "Votes you cast",
  shares: "Posts you shared",
  generations: "Image generations you requested, with their prompts",
  gemTransactions: "Your gem ledger: every earning, spending and gift",
  following: "People you follow",
  followers: "People who follow you",
  blocksAndMutes: "People you block or mute",
  referralsMade: "People who signed up with your code",
  referredBy: "The referral you signed up with, if any",
  notifications: "Your notifications",
  reportsMade: "Reports you filed",
  moderationActions: "Moderation actions on your account or content (moderators are not named)",
  appeals: "Appeals you made",
  featureFlags: "Feature flags and experiments that target your account by name",
  auditLogs: "Security and account events about you (sign-ins, changes, exports); other people's ids are left out",
  analyticsArchive: "App analytics events sent while signed in, from the analytics store",
} as const;
export type ExportSectionName = keyof typeof EXPORT_SECTIONS;

const StoredRecord = z.record(z.string(), z.unknown());
const sectionShapes = Object.fromEntries(
  Object.entries({ ...EXPORT_SECTIONS, ...FEATURE_SECTIONS }).map(([name, description]) => [
    name,
    z.array(StoredRecord).meta({ description }),
  ]),
) as { [N in ExportSectionName]: z.ZodArray<typeof StoredRecord> } & Record<string, z.ZodArray<typeof StoredRecord>>;

export const DataExport = z
  .object({
    schemaVersion: z.literal(EXPORT_SCHEMA_VERSION).meta({ description: "The format version of this document" }),
    exportedAt: z.string(),
    user: StoredRecord.meta({ description: "Your account as stored (the password hash is not included)" }),
    ...sectionShapes,
    itemCounts: z
      .record(z.string(), z.number().int())
      .meta({ description: "How many records each section holds, to check the download is whole" }),
    complete: z
      .literal(true)
      .meta({ description: "Written last: a download that ends without it was cut off (sections are streamed)" }),
  })
  .meta({
    id: "DataExport",
    description:
      "Everything stored about the caller (GDPR Art. 15 and 20), streamed section by section in this order, " +
      "with no limit on the number of records. Secrets (password hash, token hashes, push tokens, links " +
      "that sign you in) and other people's emails are never included.",
  });
export type DataExport = z.infer<typeof DataExport>;
