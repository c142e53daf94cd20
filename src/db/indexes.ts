import type { IndexSpec } from "../platform/mongo/client";
import { DAY_SECONDS as DAY } from "../platform/time";
import { type CollectionKey, collections } from "./collections";

/**
 * Every index of seed 000, by collection, plus the platform's own. Where this departs from the seed it says
 * why. Names are explicit so that re-running migrations is a no-op and a changed spec is caught as a conflict.
 */
/**
 * Indexes that existed once and must go: migrations drop them by name (idempotently), with the reason.
 */
export const retiredIndexes: Partial<Record<CollectionKey, { name: string; why: string }[]>> = {
  votes: [{ name: "ttl_90d", why: "votes are permanent; only their fraud signals expire (vote-signal-retention)" }],
  emailOutbox: [
    { name: "ttl_1d", why: "deleted unsent mail after a day; sent and failed mail now expire at `expireAt` instead" },
    { name: "unsent", why: "the sweep reads pending messages by `status` and `nextAttemptAt` (index `due`)" },
  ],
};

export const indexes: Record<CollectionKey, IndexSpec[]> = {
  users: [
    { key: { username: 1 }, name: "username_unique", unique: true },
    // Usernames are unique case-insensitively; the lower-cased copy carries that rule in both backends.
    {
      key: { usernameLower: 1 },
      name: "username_lower_unique",
      unique: true,
      partialFilterExpression: { usernameLower: { $type: "string" } },
    },
    // Partial: erased accounts drop their email, and many missing emails must not collide.
    { key: { email: 1 }, name: "email_unique", unique: true, partialFilterExpression: { email: { $type: "string" } } },
    { key: { referralCode: 1 }, name: "referral_code_unique", unique: true },
    { key: { referredBy: 1 }, name: "referred_by" },
    { key: { trustScore: 1 }, name: "trust_score" },
    { key: { tier: 1, gemBalance: -1 }, name: "tier_gem_balance" },
    { key: { createdAt: -1 }, name: "created_at" },
    { key: { shadowBanned: 1 }, name: "shadow_banned" },
    { key: { "devices.deviceId": 1 }, name: "devices_device_id" },
    // Registering a push token finds the other account that still holds it (a token belongs to one install).
    { key: { "devices.pushToken": 1 }, name: "devices_push_token" },
    // The seed hesitates ("TTL or streak management"); a TTL here would delete accounts, so it is a plain index.
    { key: { lastActiveDate: 1 }, name: "last_active_date" },
    // Deleted accounts, oldest first: the `account-deletion` and `account-erasure` jobs' queues.
    { key: { deletedAt: 1 }, name: "deleted_at" },
    // Store notifications find their account by the token the app set at purchase, or by the subscription.
    {
      key: { billingAccountToken: 1 },
      name: "billing_account_token_unique",
      unique: true,
      partialFilterExpression: { billingAccountToken: { $type: "string" } },
    },
    { key: { "billing.entitlements.subscriptionId": 1 }, name: "billing_subscription_id" },
    // Accounts whose tier steps down to another running subscription at a known time (billing-sweep).
    {
      key: { "billing.nextChangeAt": 1 },
      name: "billing_next_change",
      partialFilterExpression: { "billing.nextChangeAt": { $type: "date" } },
    },
    // A signup retried with its Idempotency-Key finds the account its first attempt made.
    {
      key: { "signupRequest.key": 1 },
      name: "signup_request_key_unique",
      unique: true,
      partialFilterExpression: { "signupRequest.key": { $type: "string" } },
    },
    // The avatar-sync job's queue: accounts whose new avatar has not reached all their posts and comments yet.
    {
      key: { "avatarSync.requestedAt": 1 },
      name: "avatar_sync_queue",
      partialFilterExpression: { "avatarSync.requestedAt": { $type: "date" } },
    },
  ],
  posts: [
    { key: { userId: 1, createdAt: -1 }, name: "user_created" },
    { key: { createdAt: -1 }, name: "created_at" },
    { key: { trendingScore: -1, createdAt: -1 }, name: "trending" },
    { key: { hotScore: -1 }, name: "hot" },
    { key: { engagementScore: -1 }, name: "engagement" },
    { key: { tags: 1 }, name: "tags" },
    { key: { category: 1, trendingScore: -1 }, name: "category_trending" },
    { key: { moderationStatus: 1, createdAt: -1 }, name: "moderation_queue" },
    // The moderator queue of held content (GET /v1/admin/moderation-queue): only held posts are in it.
    {
      key: { "moderationHold.at": 1, _id: 1 },
      name: "held_queue",
      partialFilterExpression: { "moderationHold.at": { $type: "date" } },
    },
    { key: { visibility: 1 }, name: "visibility" },
    { key: { userId: 1, voteCount: -1 }, name: "user_top" },
    // The counters job's work list: only posts whose engagement moved since their last recount are in it.
    { key: { countersStale: -1 }, name: "counters_stale", partialFilterExpression: { countersStale: { $gt: 0 } } },
    { key: { prompt: "text", tags: "text" }, name: "prompt_tags_text" },
    // The lifecycle (features/posts/lifecycle.ts): due scheduled posts, oldest first, for `publish-scheduled`.
    { key: { publishAt: 1 }, name: "scheduled_due", partialFilterExpression: { publishAt: { $type: "date" } } },
    // A scheduled post holds one of its author's slots and one of its day's; the index refuses a taken slot,
    // so concurrent schedules cannot pass POST_SCHEDULED_MAX_PER_USER or POST_SCHEDULED_MAX_PER_DAY.
    {
      key: { userId: 1, scheduleSlot: 1 },
      name: "schedule_slot_unique",
      unique: true,
      partialFilterExpression: { scheduleSlot: { $type: "number" } },
    },
    {
      key: { userId: 1, scheduleDay: 1, scheduleDaySlot: 1 },
      name: "schedule_day_slot_unique",
      unique: true,
      partialFilterExpression: { scheduleDaySlot: { $type: "number" } },
    },
    // Published by a `publish-scheduled` batch that has not counted it yet (a crashed batch's are finished).
    { key: { publishedBy: 1 }, name: "published_by", partialFilterExpression: { publishedBy: { $type: "objectId" } } },
    // Followers still owed a "new post" notification.
    { key: { "fanout.since": 1 }, name: "fanout_owed", partialFilterExpression: { "fanout.since": { $type: "date" } } },
    // Tag counts (features/tags/counts.ts): changed posts, the batch working on them, and counted posts deleted
    // by paths that do not mark them (an account's deletion).
    { key: { tagsDirty: 1 }, name: "tags_dirty", partialFilterExpression: { tagsDirty: { $type: "objectId" } } },
    { key: { tagsBatch: 1 }, name: "tags_batch", partialFilterExpression: { tagsBatch: { $type: "objectId" } } },
    { key: { deletedAt: 1 }, name: "counted_deleted", partialFilterExpression: { tagsCounted: true } },
    // Trending tags count the posts published in the last eight days.
    { key: { publishedAt: -1 }, name: "published_at" },
    // A create retried with its Idempotency-Key finds what its first attempt made.
    {
      key: { "idempotency.key": 1 },
      name: "idempotency_key_unique",
      unique: true,
      partialFilterExpression: { "idempotency.key": { $type: "string" } },
    },
  ],
  votes: [
    { key: { postId: 1, userId: 1 }, name: "post_user_unique", unique: true },
    { key: { userId: 1, createdAt: -1 }, name: "user_history" },
    { key: { postAuthorId: 1, gemAwarded: 1 }, name: "settlement" },
    { key: { gemBatchId: 1, gemAwarded: 1 }, name: "settlement_batches" },
    // Settlement's claim: unclaimed votes (gemBatchId null) in _id order, stopping at the batch size, without
    // sorting or walking past a backlog of claimed votes on MongoDB.
    { key: { gemBatchId: 1, _id: 1 }, name: "settlement_claim" },
    { key: { createdAt: -1 }, name: "created_at" },
    { key: { flagged: 1 }, name: "flagged" },
    { key: { ipHash: 1, createdAt: -1 }, name: "ip_hash" },
    { key: { deviceId: 1, createdAt: -1 }, name: "device_id" },
    // The seed's 90-day TTL deleted votes, which let the same user vote (and pay the author) again and made
    // recounted totals drop. Votes are permanent; the `vote-signal-retention` job drops only the fraud
    // signals (ipHash, deviceId, sessionId) after 90 days. The TTL index is retired below.
  ],
  gemTransactions: [
    { key: { userId: 1, createdAt: -1 }, name: "user_history" },
    { key: { userId: 1, type: 1, createdAt: -1 }, name: "user_type_history" },
    { key: { source: 1, createdAt: -1 }, name: "source" },
    { key: { idempotencyKey: 1 }, name: "idempotency_key_unique", unique: true },
    // Gift card redemption looks a purchase up by its code (features/gems/store.ts).
    {
      key: { "metadata.giftCard.code": 1 },
      name: "gift_card_code",
      partialFilterExpression: { "metadata.giftCard.code": { $type: "string" } },
    },
    { key: { createdAt: -1 }, name: "created_at" },
  ],
  follows: [
    { key: { followerId: 1, followingId: 1 }, name: "follower_following_unique", unique: true },
    { key: { followingId: 1 }, name: "following" },
    { key: { followerId: 1, createdAt: -1 }, name: "follower_created" },
    // A new post's followers are told in batches, walking the author's follows in id order.
    { key: { followingId: 1, _id: 1 }, name: "following_keyset" },
  ],
  referrals: [
    { key: { referrerId: 1, createdAt: -1 }, name: "referrer_created" },
    { key: { referredUserId: 1 }, name: "referred_user_unique", unique: true },
    { key: { referralCode: 1 }, name: "referral_code" },
    { key: { validated: 1 }, name: "validated" },
    { key: { ipHash: 1 }, name: "ip_hash" },
  ],
  reports: [
    { key: { status: 1, createdAt: 1 }, name: "queue" },
    { key: { targetId: 1, targetType: 1 }, name: "target" },
    { key: { targetUserId: 1 }, name: "target_user" },
    { key: { reporterId: 1 }, name: "reporter" },
    // One open report per reporter and target: concurrent duplicates produce exactly one report.
    {
      key: { reporterId: 1, targetId: 1, targetType: 1 },
      name: "reporter_target_open_unique",
      unique: true,
      partialFilterExpression: { status: "pending" },
    },
    // The moderator queue groups a target's reports and sums their weight.
    { key: { targetId: 1, status: 1, createdAt: 1 }, name: "target_status_created" },
    // A create retried with its Idempotency-Key finds what its first attempt made.
    {
      key: { "idempotency.key": 1 },
      name: "idempotency_key_unique",
      unique: true,
      partialFilterExpression: { "idempotency.key": { $type: "string" } },
    },
  ],
  moderationActions: [
    { key: { targetUserId: 1, createdAt: -1 }, name: "target_user_created" },
    { key: { targetId: 1, targetType: 1 }, name: "target" },
    { key: { source: 1 }, name: "source" },
  ],
  appeals: [
    { key: { userId: 1, createdAt: -1 }, name: "user_created" },
    { key: { status: 1, createdAt: 1 }, name: "queue" },
    // One appeal per moderation action.
    { key: { moderationActionId: 1 }, name: "moderation_action_unique", unique: true },
  ],
  notifications: [
    { key: { userId: 1, read: 1, createdAt: -1 }, name: "user_unread" },
    { key: { userId: 1, createdAt: -1 }, name: "user_created" },
    { key: { aggregationKey: 1 }, name: "aggregation_key" },
    { key: { createdAt: 1 }, name: "ttl_30d", expireAfterSeconds: 30 * DAY },
    // The group an event joins: newest group of this key for this recipient (and filtered state).
    { key: { userId: 1, aggregationKey: 1, createdAt: -1 }, name: "user_group" },
    // At most one open group per recipient, key and inbox: concurrent first events can't open two.
    {
      key: { userId: 1, aggregationKey: 1, filtered: 1 },
      name: "open_group_unique",
      unique: true,
      partialFilterExpression: { openGroup: true },
    },
    // The list: newest-updated first, keyset on (updatedAt, _id), default and filtered inboxes apart.
    { key: { userId: 1, filtered: 1, updatedAt: -1, _id: -1 }, name: "user_feed" },
    // The push sweep (owed pushes whose time has come) and the sender's per-recipient read.
    { key: { pushOwed: 1, pushNotBefore: 1 }, name: "push_due", partialFilterExpression: { pushOwed: true } },
    { key: { userId: 1, pushOwed: 1 }, name: "user_push_owed", partialFilterExpression: { pushOwed: true } },
  ],
  featureFlags: [{ key: { name: 1 }, name: "name_unique", unique: true }],
  analyticsEvents: [
    { key: { timestamp: -1 }, name: "timestamp" },
    // The seed's TTL runs on the client's `timestamp`; events an app sends late (offline batches) would
    // expire before the flush saw them, so the 24 h buffer TTL runs on the server's receive time instead.
    { key: { receivedAt: 1 }, name: "ttl_24h", expireAfterSeconds: DAY },
    { key: { flushBatchId: 1, _id: 1 }, name: "flush_batch" },
    // A client's eventId is one event: a retry of a request whose answer was lost is refused here while the
    // first copy is buffered (the flush checks ClickHouse for copies it already delivered).
    { key: { eventId: 1 }, name: "event_id_unique", unique: true },
  ],
  analyticsQuarantine: [
    { key: { batchId: 1 }, name: "batch" },
    // A person's quarantined events, for their export and erasure.
    { key: { userId: 1, _id: 1 }, name: "user", partialFilterExpression: { userId: { $type: "string" } } },
    { key: { quarantinedAt: 1 }, name: "ttl_30d", expireAfterSeconds: 30 * DAY },
  ],
  generationJobs: [
    { key: { userId: 1, createdAt: -1 }, name: "user_created" },
    { key: { status: 1, priority: -1, createdAt: 1 }, name: "queue" },
    { key: { workerId: 1 }, name: "worker" },
    { key: { completedAt: 1 }, name: "ttl_7d", expireAfterSeconds: 7 * DAY },
    // A create retried with its Idempotency-Key finds what its first attempt made.
    {
      key: { "idempotency.key": 1 },
      name: "idempotency_key_unique",
      unique: true,
      partialFilterExpression: { "idempotency.key": { $type: "string" } },
    },
  ],
  jobRuns: [
    { key: { job: 1, startedAt: -1 }, name: "job_started" },
    { key: { outcome: 1, startedAt: -1 }, name: "outcome_started" },
    { key: { startedAt: 1 }, name: "ttl_90d", expireAfterSeconds: 90 * DAY },
  ],
  // Seeds 001/004: sessions with hashed refresh tokens; expired sessions disappear on their own.
  sessions: [
    { key: { refreshTokenHash: 1 }, name: "refresh_token_hash_unique", unique: true },
    { key: { previousTokenHashes: 1 }, name: "previous_token_hashes" },
    { key: { userId: 1, lastUsedAt: -1 }, name: "user_sessions" },
    { key: { expiresAt: 1 }, name: "ttl_expires_at", expireAfterSeconds: 0 },
  ],
  emailTokens: [
    { key: { tokenHash: 1 }, name: "token_hash_unique", unique: true },
    { key: { userId: 1, purpose: 1 }, name: "user_purpose" },
    { key: { expiresAt: 1 }, name: "ttl_expires_at", expireAfterSeconds: DAY },
  ],
  emailOutbox: [
    // The sweep: pending messages whose next attempt is due, oldest first.
    { key: { status: 1, nextAttemptAt: 1 }, name: "due", partialFilterExpression: { status: "pending" } },
    // Sent and failed messages are kept EMAIL_OUTBOX_RETENTION_DAYS; pending ones never expire (no expireAt).
    { key: { expireAt: 1 }, name: "ttl_expire_at", expireAfterSeconds: 0 },
    { key: { userId: 1, createdAt: -1 }, name: "user_mail" },
  ],
  // Seed 001's comments, threaded by parentId.
  comments: [
    { key: { postId: 1, parentId: 1, _id: 1 }, name: "post_threads" },
    { key: { parentId: 1, _id: 1 }, name: "replies" },
    { key: { userId: 1, createdAt: -1 }, name: "user_comments" },
    {
      key: { "moderationHold.at": 1, _id: 1 },
      name: "held_queue",
      partialFilterExpression: { "moderationHold.at": { $type: "date" } },
    },
    // A create retried with its Idempotency-Key finds what its first attempt made.
    {
      key: { "idempotency.key": 1 },
      name: "idempotency_key_unique",
      unique: true,
      partialFilterExpression: { "idempotency.key": { $type: "string" } },
    },
  ],
  // One share per post and person; the counters job counts a post's shares from here.
  shares: [
    { key: { postId: 1, userId: 1 }, name: "post_user_unique", unique: true },
    { key: { userId: 1, createdAt: -1 }, name: "user_shares" },
  ],
  // Blocks and mutes: one per (user, target, kind); a user's relations are rebuilt from both directions.
  blocks: [
    { key: { userId: 1, targetId: 1, kind: 1 }, name: "user_target_kind_unique", unique: true },
    { key: { userId: 1, kind: 1, _id: -1 }, name: "user_kind_list" },
    { key: { targetId: 1, kind: 1 }, name: "target_kind" },
  ],
  // Saves (seed 001's SAVE engagement): one per (user, post); the owner's list newest first; a post's saves
  // are recounted by the counters job, and an erased account's posts lose theirs.
  saves: [
    { key: { userId: 1, postId: 1 }, name: "user_post_unique", unique: true },
    { key: { userId: 1, _id: -1 }, name: "user_list" },
    { key: { postId: 1 }, name: "post" },
    { key: { postAuthorId: 1 }, name: "post_author" },
  ],
  // Tags by usage (autocomplete ranks prefix matches by it; the prefix itself runs on `_id`).
  tags: [{ key: { posts: -1, _id: 1 }, name: "usage" }],
  // Batches a crashed run left behind are finished oldest first.
  tagCountBatches: [{ key: { createdAt: 1 }, name: "created" }],
  // Seed 002's consent ledger: a user's decisions newest first (GET /v1/me/consents, export).
  consents: [{ key: { userId: 1, createdAt: -1, _id: -1 }, name: "user_created" }],
  // Seed 002's journal. One live entry per user and date (deleted ones wait for restore or purge beside it).
  journalEntries: [
    {
      key: { userId: 1, date: 1 },
      name: "user_date_active_unique",
      unique: true,
      partialFilterExpression: { state: "active" },
    },
    { key: { userId: 1, state: 1, date: -1 }, name: "user_state_date" },
    // Owner-scoped full-text search: the userId prefix makes every $text query one user's (equality required).
    {
      key: { userId: 1, title: "text", content: "text", tags: "text" },
      name: "user_text",
      weights: { title: 5, tags: 3, content: 1 },
    },
    { key: { purgeAfter: 1 }, name: "purge_after", partialFilterExpression: { state: "deleted" } },
  ],
  journalInsights: [
    { key: { userId: 1, kind: 1, periodStart: 1 }, name: "user_kind_period_unique", unique: true },
    { key: { userId: 1, kind: 1, periodStart: -1, _id: -1 }, name: "user_kind_list" },
    // Insights whose notification a crashed run still owes.
    { key: { notifiedAt: 1 }, name: "notified_at" },
  ],
  journalInsightRuns: [],
  // Store notifications: each counts once per store and notification id; a user's history newest first;
  // unsettled ones for billing-sweep; a subscription's notifications in provider order.
  subscriptions: [
    { key: { store: 1, notificationId: 1 }, name: "store_notification_unique", unique: true },
    { key: { userId: 1, receivedAt: -1 }, name: "user_history" },
    {
      key: { receivedAt: 1 },
      name: "pending",
      partialFilterExpression: { outcome: { $eq: "pending" } },
    },
    { key: { store: 1, subscriptionId: 1, eventAt: -1 }, name: "subscription_history" },
  ],
  // Seed 003's chats. A member's inbox: their conversations, newest message first (keyset on lastMessageAt, _id).
  conversations: [
    { key: { "members.userId": 1, lastMessageAt: -1, _id: -1 }, name: "member_inbox" },
    // One direct conversation per pair of people: concurrent first messages between two people make one.
    {
      key: { directKey: 1 },
      name: "direct_key_unique",
      unique: true,
      partialFilterExpression: { directKey: { $type: "string" } },
    },
  ],
  messages: [
    // History and catch-up: a conversation's messages in id order, both directions.
    { key: { conversationId: 1, _id: 1 }, name: "conversation_history" },
    // A retried send makes exactly one message: one per (conversation, sender, client message id).
    {
      key: { conversationId: 1, senderId: 1, clientMessageId: 1 },
      name: "client_message_unique",
      unique: true,
      partialFilterExpression: { clientMessageId: { $type: "string" } },
    },
    // The purge job: disappearing messages whose every copy has expired.
    { key: { purgeAt: 1 }, name: "purge_at", partialFilterExpression: { purgeAt: { $type: "date" } } },
    // A person's own messages (export, erasure).
    { key: { senderId: 1, _id: 1 }, name: "sender" },
  ],
  // Seed 003's stories: an author's live stories, the tray's followed authors, and the purge by expiry.
  stories: [
    { key: { userId: 1, expiresAt: -1 }, name: "user_expires" },
    { key: { expiresAt: 1 }, name: "expires_at" },
  ],
  storyViews: [
    // A view counts once per viewer: concurrent views by one person record one.
    { key: { storyId: 1, viewerId: 1 }, name: "story_viewer_unique", unique: true },
    // The owner's viewer list, newest first.
    { key: { storyId: 1, viewedAt: -1, _id: -1 }, name: "story_viewed" },
    // The tray's "seen?" (a viewer's views of the last STORY_TTL_HOURS), and erasure of a viewer's views.
    { key: { viewerId: 1, viewedAt: -1 }, name: "viewer_recent" },
  ],
  // What writes owe after their answer: the sweep reads pending records by when they are due.
  owedEffects: [
    { key: { state: 1, dueAt: 1 }, name: "due" },
    // Done and failed records are kept OWED_EFFECTS_RETENTION_HOURS; pending ones never expire (no expireAt).
    { key: { expireAt: 1 }, name: "ttl_expire_at", expireAfterSeconds: 0 },
    // A person's records (export, erasure).
    { key: { subjects: 1, _id: 1 }, name: "subjects" },
  ],
  // Seed 003's live streams: the live directory, a streamer's list, and what stream-maintenance looks for.
  liveStreams: [
    { key: { status: 1, startedAt: -1 }, name: "status_started" },
    // A create retried with its Idempotency-Key finds the stream it made (one per streamer and key).
    {
      key: { "idempotency.key": 1 },
      name: "idempotency_key_unique",
      unique: true,
      partialFilterExpression: { "idempotency.key": { $type: "string" } },
    },
    { key: { userId: 1, _id: -1 }, name: "user_streams" },
    { key: { status: 1, scheduledFor: 1 }, name: "status_scheduled_for" },
    { key: { status: 1, "video.deletedAt": 1 }, name: "status_video_deleted" },
    { key: { "liveNotice.state": 1, "liveNotice.updatedAt": 1 }, name: "live_notice_state" },
    // A person's co-hosting and moderating (erasure).
    { key: { "participants.userId": 1 }, name: "participants" },
    { key: { "moderators.userId": 1 }, name: "moderators" },
  ],
  streamGifts: [
    // One record per ledger transfer: a retried or re-completed gift counts on its stream once.
    { key: { transferId: 1 }, name: "transfer_unique", unique: true },
    // A stream's gifts and a sender's or a streamer's (export, erasure).
    { key: { streamId: 1, _id: 1 }, name: "stream" },
    { key: { senderId: 1, _id: 1 }, name: "sender" },
    { key: { recipientId: 1, _id: 1 }, name: "recipient" },
  ],
  streamGifters: [
    // One total per sender and stream: two first gifts at once make one.
    { key: { streamId: 1, senderId: 1 }, name: "stream_sender_unique", unique: true },
    // The stream's top gifters, most gems first.
    { key: { streamId: 1, amount: -1, _id: 1 }, name: "stream_top" },
    { key: { senderId: 1 }, name: "sender" },
  ],
  // Seed 001's media_files: a user's uploads newest first (export, erasure), keys unique, pending ones expire.
  media: [
    { key: { userId: 1, _id: 1 }, name: "user_id" },
    { key: { key: 1 }, name: "key_unique", unique: true, partialFilterExpression: { key: { $type: "string" } } },
    { key: { pendingExpiresAt: 1 }, name: "ttl_pending", expireAfterSeconds: 0 },
  ],
  // Seed 002's audit log shape; retention from AUDIT_LOG_TTL_DAYS (see buildIndexes).
  auditLogs: [
    { key: { userId: 1, timestamp: -1 }, name: "user_timestamp" },
    { key: { action: 1, timestamp: -1 }, name: "action_timestamp" },
    { key: { actorId: 1, timestamp: -1 }, name: "actor_timestamp" },
    { key: { timestamp: 1 }, name: "ttl_timestamp", expireAfterSeconds: 400 * DAY },
  ],
};

export function collectionName(key: CollectionKey): string {
  return collections[key];
}
