import type { ObjectId } from "../../platform/ids";
import type { RequestKey } from "./requests";

export const VISIBILITIES = ["public", "followers", "private"] as const;
export const MODERATION_STATUSES = ["pending", "approved", "rejected", "flagged"] as const;
/**
 * Where a post is in its life, as the author moves it (seed 004): a `draft` and a `scheduled` post are the
 * author's alone, `published` is the only state anyone else sees (and only once moderation approves it: a held
 * published post shows as `pending_review`, see features/posts/lifecycle.ts), `archived` is out of feeds and
 * profile, kept for the author and restorable.
 */
export const POST_STATUSES = ["draft", "scheduled", "published", "archived"] as const;
export type Visibility = (typeof VISIBILITIES)[number];
export type ModerationStatus = (typeof MODERATION_STATUSES)[number];
export type PostStatus = (typeof POST_STATUSES)[number];

/** Why content is held from view pending review, and since when (the moderator queue's order). */
export interface ModerationHold {
  source: "banned_words" | "nsfw_score" | "report_threshold";
  at: Date;
}

/**
 * The engagement a post is ranked by, as last recounted by the `counters` job: votes not flagged as fraud,
 * shares, and distinct commenters other than the author, none from shadow-banned accounts.
 */
export interface RankedEngagement {
  votes: number;
  comments: number;
  shares: number;
}

export const POST_MEDIA_TYPES = ["image", "video"] as const;
export type PostMediaType = (typeof POST_MEDIA_TYPES)[number];

/** A reel's video (seed 003), as its upload proved it (features/media/formats.ts). */
export interface PostVideo {
  url: string;
  contentType: string;
  durationSeconds: number;
  width: number;
  height: number;
}

/** `posts` (seed 000) plus `authorShadowBanned`, denormalized so every feed can filter without a join. */
export interface PostDoc {
  _id: ObjectId;
  /** The Idempotency-Key it was published with (key: `{userId}:{Idempotency-Key}`), when the client sent one. */
  idempotency?: RequestKey;
  userId: ObjectId;
  username: string;
  userAvatarUrl: string | null;
  userTier: string;
  authorShadowBanned: boolean;
  /** The generation it shows; null for a post of uploads. */
  generationId: ObjectId | null;
  prompt: string;
  refinedPrompt: string | null;
  imageUrl: string;
  thumbnailUrl: string;
  imageWidth: number;
  imageHeight: number;
  blurhash: string | null;
  model: string;
  modelVersion: string | null;
  generationTimeMs: number | null;
  generationParams: {
    steps: number | null;
    cfgScale: number | null;
    seed: number | null;
    negativePrompt: string | null;
  };
  hasWatermark: boolean;
  /** What the post shows; absent on posts made before uploads existed, which are images. */
  mediaType?: PostMediaType;
  /** The uploads it shows (media feature), for posts of uploads: the image, or the video and its poster. */
  mediaIds?: ObjectId[];
  /** Reels: the video. The image fields then describe its poster (what feeds show before playback). */
  video?: PostVideo | null;
  voteCount: number;
  commentCount: number;
  shareCount: number;
  viewCount: number;
  /** Missing until the counters job first recounts the post (its raw counters stand in until then). */
  rankedEngagement?: RankedEngagement;
  /**
   * Engagement moves (votes, shares, counted comments) since the `counters` job last recounted the post; 0 or
   * missing when its counts are up to date. Durable, so a recount is never lost with Redis.
   */
  countersStale?: number;
  engagementScore: number;
  trendingScore: number;
  hotScore: number;
  gemMultiplier: number;
  tags: string[];
  category: string | null;
  nsfw: boolean;
  nsfwScore: number | null;
  moderationStatus: ModerationStatus;
  moderationReviewedAt: Date | null;
  moderationReviewedBy: string | null;
  moderationNotes: string | null;
  /** Set while the post is held (pending or flagged) and waits in the moderator queue. */
  moderationHold?: ModerationHold | null;
  shareableUrl: string;
  shareCaption: string | null;
  visibility: Visibility;
  isPinned: boolean;
  /** When the author pinned it (pinned posts lead the author's list, newest pin first). */
  pinnedAt?: Date | null;
  /**
   * Deleted accounts whose comments `commentCount` no longer counts (newest last, capped): the guard that makes
   * taking them out happen once however often a deletion's recount runs.
   */
  uncountedAccounts?: ObjectId[];
  /** The lifecycle state; posts written before lifecycles existed are backfilled as `published` (db/migrate.ts). */
  status: PostStatus;
  /** When a `scheduled` post is due (null otherwise). */
  publishAt: Date | null;
  /** When the post first entered `published` (it is also its `createdAt` from then on: its place in feeds). */
  publishedAt: Date | null;
  /**
   * A scheduled post's places in its author's limits: one of POST_SCHEDULED_MAX_PER_USER slots, and one of
   * POST_SCHEDULED_MAX_PER_DAY slots of its UTC day. Unique indexes hold them, so concurrent schedules can
   * never pass a limit; they are removed when the post leaves `scheduled`.
   */
  scheduleSlot?: number | null;
  scheduleDay?: string | null;
  scheduleDaySlot?: number | null;
  /** Saves by signed-in users (features/saves); missing on posts from before saves. */
  saveCount?: number;
  /**
   * Tag usage bookkeeping (features/tags/counts.ts): `tagsDirty` is a fresh id written by every change that can
   * move the post's tag counts; `countedTags` are the tags its counts hold now (`tagsCounted` while any), and
   * `tagsBatch` the count batch working on it.
   */
  tagsDirty?: ObjectId | null;
  tagsBatch?: ObjectId | null;
  countedTags?: string[];
  tagsCounted?: boolean;
  /**
   * The `publish-scheduled` batch that published the post, until that batch has counted it for its author; a
   * mark older than a job lease is a batch that died in between, and the next run finishes it.
   */
  publishedBy?: ObjectId | null;
  /** The followers still owed a "new post" notification: since when, and the last follow (its `_id`) told. */
  fanout?: { since: Date; after: ObjectId | null } | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}
