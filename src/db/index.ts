import type { AnalyticsEventDoc } from "../features/analytics/schema";
import type { AuditLogDoc } from "../features/audit/service";
import type { EmailOutboxDoc, EmailTokenDoc, SessionDoc } from "../features/auth/schema";
import type { CommentDoc } from "../features/comments/schema";
import type { FeatureFlagDoc } from "../features/flags/schema";
import type { FollowDoc } from "../features/follows/service";
import type { GemTransactionDoc } from "../features/gems/schema";
import type { GenerationJobDoc } from "../features/generations/schema";
import type { AppealDoc, ModerationActionDoc, ReportDoc } from "../features/moderation/schema";
import type { NotificationDoc } from "../features/notifications/schema";
import type { PostDoc } from "../features/posts/schema";
import type { ReferralDoc } from "../features/referrals/schema";
import type { UserDoc } from "../features/users/schema";
import type { VoteDoc } from "../features/votes/service";
import type { JobRunDoc } from "../jobs/types";
import type { Collection, DataApiClient, Document } from "../platform/mongo/client";
import { type CollectionKey, collections } from "./collections";

/** Document types per collection; collections whose feature has not landed yet stay loosely typed. */
interface DocumentTypes {
  analyticsEvents: AnalyticsEventDoc;
  jobRuns: JobRunDoc;
  users: UserDoc;
  follows: FollowDoc;
  sessions: SessionDoc;
  emailTokens: EmailTokenDoc;
  emailOutbox: EmailOutboxDoc;
  auditLogs: AuditLogDoc;
  generationJobs: GenerationJobDoc;
  posts: PostDoc;
  comments: CommentDoc;
  gemTransactions: GemTransactionDoc;
  featureFlags: FeatureFlagDoc;
  votes: VoteDoc;
  notifications: NotificationDoc;
  referrals: ReferralDoc;
  reports: ReportDoc;
  moderationActions: ModerationActionDoc;
  appeals: AppealDoc;
}

export type Db = { [K in CollectionKey]: Collection<K extends keyof DocumentTypes ? DocumentTypes[K] : Document> };

export function createDb(client: DataApiClient): Db {
  return Object.fromEntries(
    (Object.keys(collections) as CollectionKey[]).map((key) => [key, client.collection(collections[key])]),
  ) as unknown as Db;
}
