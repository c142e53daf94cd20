import type { Collection, DataApiClient } from "../platform/mongo/client";
import { type CollectionKey, collections } from "./collections";
import type { AnalyticsEventDoc } from "./documents/analytics";
import type { AuditLogDoc } from "./documents/audit";
import type { EmailOutboxDoc, EmailTokenDoc, SessionDoc } from "./documents/auth";
import type { BlockDoc } from "./documents/blocks";
import type { CommentDoc } from "./documents/comments";
import type { FeatureFlagDoc } from "./documents/flags";
import type { FollowDoc } from "./documents/follows";
import type { GemTransactionDoc } from "./documents/gems";
import type { GenerationJobDoc } from "./documents/generations";
import type { JobRunDoc } from "./documents/jobs";
import type { MediaDoc } from "./documents/media";
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
  generationJobs: GenerationJobDoc;
  jobRuns: JobRunDoc;
  sessions: SessionDoc;
  emailTokens: EmailTokenDoc;
  emailOutbox: EmailOutboxDoc;
  auditLogs: AuditLogDoc;
  comments: CommentDoc;
  shares: ShareDoc;
  blocks: BlockDoc;
  media: MediaDoc;
}

export type Db = { [K in CollectionKey]: Collection<DocumentTypes[K]> };

export function createDb(client: DataApiClient): Db {
  return Object.fromEntries(
    (Object.keys(collections) as CollectionKey[]).map((key) => [key, client.collection(collections[key])]),
  ) as unknown as Db;
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
export * from "./documents/media";
export * from "./documents/moderation";
export * from "./documents/notifications";
export * from "./documents/posts";
export * from "./documents/referrals";
export * from "./documents/shares";
export * from "./documents/users";
export * from "./documents/votes";
