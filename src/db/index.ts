import type {
  BatchOptions,
  BatchOutcome,
  BatchResults,
  BatchStep,
  Collection,
  DataApiClient,
} from "../platform/mongo/client";
import { type CollectionKey, collections } from "./collections";
import type { AnalyticsEventDoc, AnalyticsQuarantineDoc } from "./documents/analytics";
import type { AuditLogDoc } from "./documents/audit";
import type { EmailOutboxDoc, EmailTokenDoc, SessionDoc } from "./documents/auth";
import type { SubscriptionEventDoc } from "./documents/billing";
import type { BlockDoc } from "./documents/blocks";
import type { CommentDoc } from "./documents/comments";
import type { ConsentDoc } from "./documents/consents";
import type { FeatureFlagDoc } from "./documents/flags";
import type { FollowDoc } from "./documents/follows";
import type { GemTransactionDoc } from "./documents/gems";
import type { GenerationJobDoc } from "./documents/generations";
import type { JobRunDoc } from "./documents/jobs";
import type { JournalEntryDoc, JournalInsightDoc, JournalInsightRunDoc } from "./documents/journal";
import type { MediaDoc } from "./documents/media";
import type { ConversationDoc, MessageDoc } from "./documents/messaging";
import type { AppealDoc, ModerationActionDoc, ReportDoc } from "./documents/moderation";
import type { NotificationDoc } from "./documents/notifications";
import type { OwedDoc } from "./documents/owed";
import type { PostDoc } from "./documents/posts";
import type { ReferralDoc } from "./documents/referrals";
import type { SaveDoc } from "./documents/saves";
import type { ShareDoc } from "./documents/shares";
import type { StoryDoc, StoryViewDoc } from "./documents/stories";
import type { StreamDoc, StreamGiftDoc, StreamGifterDoc } from "./documents/streams";
import type { TagCountBatchDoc, TagDoc } from "./documents/tags";
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
  saves: SaveDoc;
  tags: TagDoc;
  tagCountBatches: TagCountBatchDoc;
  consents: ConsentDoc;
  journalEntries: JournalEntryDoc;
  journalInsights: JournalInsightDoc;
  journalInsightRuns: JournalInsightRunDoc;
  subscriptions: SubscriptionEventDoc;
  conversations: ConversationDoc;
  messages: MessageDoc;
  stories: StoryDoc;
  storyViews: StoryViewDoc;
  owedEffects: OwedDoc;
  liveStreams: StreamDoc;
  streamGifts: StreamGiftDoc;
  streamGifters: StreamGifterDoc;
  media: MediaDoc;
}

export type Db = { [K in CollectionKey]: Collection<DocumentTypes[K]> } & {
  /** Steps built with the collections' `inBatch` helpers, in one round trip, in order (see DataApiClient.batch). */
  batch<const S extends readonly BatchStep<unknown>[]>(steps: S, options?: BatchOptions): Promise<BatchResults<S>>;
  /** A batch whose steps a unique index may refuse (see `DataApiClient.batchUnique`). */
  batchUnique(steps: readonly BatchStep<unknown>[], options?: BatchOptions): Promise<BatchOutcome>;
};

export function createDb(client: DataApiClient): Db {
  const byKey = Object.fromEntries(
    (Object.keys(collections) as CollectionKey[]).map((key) => [key, client.collection(collections[key])]),
  );
  return {
    ...byKey,
    batch: (steps, options) => client.batch(steps, options),
    batchUnique: (steps, options) => client.batchUnique(steps, options),
  } as Db;
}

export * from "./documents/analytics";
export * from "./documents/audit";
export * from "./documents/auth";
export * from "./documents/billing";
export * from "./documents/blocks";
export * from "./documents/comments";
export * from "./documents/consents";
export * from "./documents/flags";
export * from "./documents/follows";
export * from "./documents/gems";
export * from "./documents/generations";
export * from "./documents/jobs";
export * from "./documents/journal";
export * from "./documents/media";
export * from "./documents/messaging";
export * from "./documents/moderation";
export * from "./documents/notifications";
export * from "./documents/owed";
export * from "./documents/posts";
export * from "./documents/referrals";
export * from "./documents/requests";
export * from "./documents/saves";
export * from "./documents/shares";
export * from "./documents/stories";
export * from "./documents/streams";
export * from "./documents/tags";
export * from "./documents/users";
export * from "./documents/votes";
