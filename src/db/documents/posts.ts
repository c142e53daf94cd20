import type { ObjectId } from "../../platform/ids";
import type { RequestKey } from "./requests";

export const VISIBILITIES = ["public", "followers", "private"] as const;
export const MODERATION_STATUSES = ["pending", "approved", "rejected", "flagged"] as const;
export type Visibility = (typeof VISIBILITIES)[number];
export type ModerationStatus = (typeof MODERATION_STATUSES)[number];

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
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}
