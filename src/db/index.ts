import type { BatchOutcome, BatchStep, Collection, DataApiClient } from "../platform/mongo/client";
import { type CollectionKey, collections } from "./collections";
import type { AnalyticsEventDoc, AnalyticsQuarantineDoc } from "./documents/analytics";
import type { AuditLogDoc } from "./documents/audit";
import type { EmailOutboxDoc, EmailTokenDoc, SessionDoc } from "./documents/auth";
import type { BlockDoc } from "./documents/blocks";
import type { CommentDoc } from "./documents/comments";
import type { FeatureFlagDoc } from "./documents/flags";
import type { FollowDoc } from "./documents/follows";
import type { GemTransactionDoc } from "./documents/gems";
import type { GenerationJobDoc } from "./documents/generations";
import type { JobRunDoc } from "./documents/jobs";
import type { AppealDoc, ModerationActionDoc, ReportDoc } from "./documents/moderation";
import type { NotificationDoc } from "./documents/notifications";
import type { PostDoc } from "./documents/posts";
import type { ReferralDoc } from "./documents/referrals";
import type { ShareDoc } from "./documents/shares";
import type { UserDoc } from "./documents/users";
import type { VoteDoc } from "./documents/votes";

/** The document type stored in each collection: the persisted shape, owned by the data layer. */
export interface DocumentTypes {
  users: UserDoc;
  posts: PostDoc;
  votes: VoteDoc;
  gemTransactions: GemTransactionDoc;
  follows: FollowDoc;
  referrals: ReferralDoc;
  reports: ReportDoc;
  moderationActions: ModerationActionDoc;
  appeals: AppealDoc;
  notifications: NotificationDoc;
  featureFlags: FeatureFlagDoc;
  analyticsEvents: AnalyticsEventDoc;
  analyticsQuarantine: AnalyticsQuarantineDoc;
  generationJobs: GenerationJobDoc;
  jobRuns: JobRunDoc;
  sessions: SessionDoc;
  emailTokens: EmailTokenDoc;
  emailOutbox: EmailOutboxDoc;
  auditLogs: AuditLogDoc;
  comments: CommentDoc;
  shares: ShareDoc;
  blocks: BlockDoc;
}

export type Db = { [K in CollectionKey]: Collection<DocumentTypes[K]> } & {
  /** Writes to several collections in one round trip, in order (see `DataApiClient.batch`). */
  batch(steps: BatchStep[]): Promise<void>;
  /** A batch whose steps a unique index may refuse (see `DataApiClient.batchUnique`). */
  batchUnique(steps: BatchStep[]): Promise<BatchOutcome>;
};

export function createDb(client: DataApiClient): Db {
  const byCollection = Object.fromEntries(
    (Object.keys(collections) as CollectionKey[]).map((key) => [key, client.collection(collections[key])]),
  );
  return {
    ...byCollection,
    batch: (steps: BatchStep[]) => client.batch(steps),
    batchUnique: (steps: BatchStep[]) => client.batchUnique(steps),
  } as unknown as Db;
}

export * from "./documents/analytics";
export * from "./documents/audit";
export * from "./documents/auth";
export * from "./documents/blocks";
export * from "./documents/comments";
export * from "./documents/flags";
export * from "./documents/follows";
export * from "./documents/gems";
export * from "./documents/generations";
export * from "./documents/jobs";
export * from "./documents/moderation";
export * from "./documents/notifications";
export * from "./documents/posts";
export * from "./documents/referrals";
export * from "./documents/requests";
export * from "./documents/shares";
export * from "./documents/users";
export * from "./documents/votes";
