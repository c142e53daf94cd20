/**
 * Every Redis key the API uses, one builder per pattern of seed 000's "Redis Data Structures" plus the
 * few the platform itself needs (job leases, idempotency records). TTLs live in config; nothing else in
 * the code base spells a key.
 */
export const keys = {
  // Session management
  session: (userId: string) => `session:${userId}`,
  // Rate limiting
  rateVote: (userId: string, day: string) => `rate:vote:${userId}:${day}`,
  rateGen: (userId: string, day: string) => `rate:gen:${userId}:${day}`,
  rateApi: (ip: string) => `rate:api:${ip}`,
  rateAuth: (action: "login" | "signup" | "forgot" | "verify", subject: string) => `rate:auth:${action}:${subject}`,
  rateReport: (userId: string) => `rate:report:${userId}`,
  /** Uploads one account started (POST /v1/media), a sliding window. */
  rateMedia: (userId: string) => `rate:media:${userId}`,
  /** Request-body bytes one IP sent to a budgeted route family (`name`) in one fixed window (its index). */
  rateBytes: (name: string, ip: string, window: number) => `rate:bytes:${name}:${ip}:${window}`,
  // Feed caching
  feedTrending: (page: string | number) => `feed:trending:${page}`,
  feedNew: (page: string | number) => `feed:new:${page}`,
  feedHot: (page: string | number) => `feed:hot:${page}`,
  feedUser: (userId: string, page: string | number) => `feed:user:${userId}:${page}`,
  feedFollowing: (userId: string, page: string | number) => `feed:following:${userId}:${page}`,
  /** The cached first pages a newly published, deleted or hidden post makes stale. */
  publicFeedFirstPages: () => ["feed:new:0", "feed:trending:0", "feed:hot:0"],
  /** A post's cached document (posts/visibility.ts `loadPost`), dropped on every change to what it shows. */
  postDoc: (postId: string) => `post:doc:${postId}`,
  /** What never changes about a post (its author, its image), kept long: writes on it need no read for them. */
  postFacts: (postId: string) => `post:facts:${postId}`,
  // Real-time counters
  postVotes: (postId: string) => `post:votes:${postId}`,
  /** Views not yet added to `posts.viewCount` (a delta, taken and cleared by the counters job). */
  postViews: (postId: string) => `post:views:${postId}`,
  /** Marks a viewer (`u:{userId}`, `d:{deviceId}` or `ip:{hash}`) as counted on a post for the view window. */
  postViewer: (postId: string, viewer: string) => `post:viewer:${postId}:${viewer}`,
  /** Signed-out views one IP added to a post in the view window (caps device-id rotation). */
  postViewsByIp: (postId: string, ipHash: string) => `post:views:ip:${postId}:${ipHash}`,
  // Posts whose Redis counters changed since the counters job last synced them to MongoDB
  countersDirtyPosts: () => "counters:dirty:posts",
  countersSyncingPosts: () => "counters:syncing:posts",
  // Leaderboards
  // Leaderboards: one sorted set per period, suffixed with the period's first UTC day so boards roll over at
  // UTC boundaries without a reset job (the old set just expires).
  leaderboardDaily: (day: string) => `leaderboard:daily:${day}`,
  leaderboardWeekly: (weekStart: string) => `leaderboard:weekly:${weekStart}`,
  leaderboardAlltime: () => "leaderboard:alltime",
  /** The rendered top of a board, one field per page size. */
  leaderboardPage: (boardKey: string) => `${boardKey}:page`,
  /** Ledger entries already added to the boards, by the UTC day they were written (makes adding idempotent). */
  leaderboardCounted: (day: string) => `leaderboard:counted:${day}`,
  // User state
  userOnline: (userId: string) => `user:online:${userId}`,
  userStreak: (userId: string) => `user:streak:${userId}`,
  // Feature flags cache
  flagsAll: () => "flags:all",
  flagsUser: (userId: string) => `flags:user:${userId}`,
  // Anti-fraud
  fraudIp: (ipHash: string, day: string) => `fraud:ip:${ipHash}:${day}`,
  fraudDevice: (deviceId: string) => `fraud:device:${deviceId}`,
  /** Referrals validated for one referrer on one UTC day (the per-referrer daily cap). */
  fraudReferrals: (referrerId: string, day: string) => `fraud:referrals:${referrerId}:${day}`,
  // Blocks and mutes: each user's relations (see core/relations.ts), and the counter that guards their rebuild
  relations: (userId: string) => `relations:${userId}`,
  relationsGeneration: (userId: string) => `relations:gen:${userId}`,
  // Conversations: members, roles and timer (messaging/state.ts), the counter that guards their rebuild, the
  // one-time WebSocket tickets (by hash) and the pub/sub channel that carries events where no Durable Object does
  conversation: (conversationId: string) => `conversation:${conversationId}`,
  conversationGeneration: (conversationId: string) => `conversation:gen:${conversationId}`,
  socketTicket: (ticketHash: string) => `socket:ticket:${ticketHash}`,
  conversationChannel: (conversationId: string) => `channel:conversation:${conversationId}`,
  // Live streams (features/streams): while a stream is live, its hosts and peak (`stream:live:{id}`, a hash whose
  // existence means live), its viewers by last heartbeat (a sorted set pruned on read) and everyone who watched
  streamLive: (streamId: string) => `stream:live:${streamId}`,
  /** The live directory as last ranked (features/streams/discovery.ts), for everyone: filtered per viewer. */
  streamDirectory: () => "streams:live",
  streamViewers: (streamId: string) => `stream:viewers:${streamId}`,
  streamUniqueViewers: (streamId: string) => `stream:uniques:${streamId}`,
  /** A viewer's slow-mode turn in a live chat (one message per STREAM_CHAT_SLOW_MODE_SECONDS). */
  chatSlowMode: (conversationId: string, userId: string) => `chat:slow:${conversationId}:${userId}`,
  // The posts each user voted on (posts/viewer-state.ts), and the counter that guards their rebuild
  votedPosts: (userId: string) => `voted:${userId}`,
  votedPostsGeneration: (userId: string) => `voted:gen:${userId}`,
  /** The caller's own `GET /v1/me` answer, cached (users/service.ts `getMe`). */
  selfView: (userId: string) => `user:me:${userId}`,
  /** Whether `a` follows `b` and `b` follows `a`, as `a` sees it on `b`'s profile (dropped when either moves). */
  followPair: (a: string, b: string) => `follow:pair:${a}:${b}`,
  /** The default inbox's cached first page and unread count (notifications/service.ts). */
  inboxFirstPage: (userId: string) => `notif:first:${userId}`,
  inboxUnread: (userId: string) => `notif:unread:${userId}`,
  /** A post's cached first page of comments, and who has comments on it only they can see (comments/service.ts). */
  commentsFirstPage: (postId: string) => `comments:first:${postId}`,
  commentsOwnHidden: (postId: string) => `comments:own-hidden:${postId}`,
  /** What never changes about a comment (its post, thread and author), kept long: replies and reports need no read. */
  commentFacts: (commentId: string) => `comment:facts:${commentId}`,
  /** A completed generation's post-facing fields (generations/post-facts.ts): posting it needs no read of the job. */
  generationPostFacts: (jobId: string) => `generation:post:${jobId}`,
  /** The computed answer of `GET /v1/tags/trending`, and of `GET /v1/tags?prefix=` per prefix (features/tags). */
  tagsTrending: () => "tags:trending",
  tagsByPrefix: (prefix: string) => `tags:prefix:${prefix}`,
  // Profile cache (GET /v1/users/{username})
  userProfile: (usernameLower: string) => `user:profile:${usernameLower}`,
  // Journal (seed 002): change counters that every write moves (whole journal, and per month), and the caches
  // that are good only under the counter they were computed with.
  journalGeneration: (userId: string) => `journal:gen:${userId}`,
  journalMonthGeneration: (userId: string, month: string) => `journal:gen:${userId}:${month}`,
  journalCalendar: (userId: string, month: string) => `journal:calendar:${userId}:${month}`,
  journalStreak: (userId: string) => `journal:streak:${userId}`,
  journalTags: (userId: string) => `journal:tags:${userId}`,
  moodTrend: (userId: string, days: number) => `mood:user:${userId}:trend:${days}`,
  // Push delivery: pushes sent to one account in one UTC clock hour (`YYYY-MM-DDTHH`), the per-user cap
  pushesSent: (userId: string, hour: string) => `push:sent:${userId}:${hour}`,
  // Platform
  jobLease: (job: string) => `lock:job:${job}`,
  idempotency: (scope: string, key: string) => `idem:${scope}:${key}`,
} as const;

export type Keys = typeof keys;
