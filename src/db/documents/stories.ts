import type { ObjectId } from "../../platform/ids";

/** A story's image: for now the author's own generation, later an upload (`POST /v1/media`, purpose `story`). */
export interface StoryMediaDoc {
  source: "generation" | "upload";
  /** The generation or upload it came from. */
  sourceId: ObjectId;
  url: string;
  thumbnailUrl: string | null;
  width: number | null;
  height: number | null;
  blurhash: string | null;
}

/**
 * `stories` (seed 003): an image visible until `expiresAt` (STORY_TTL_HOURS after posting), then never
 * returned and deleted by the `story-purge` job with its views. The image is copied from its source, so a
 * generation's own 7-day expiry cannot break a live story. `viewCount` moves only with a view recorded for
 * the first time (the unique (storyId, viewerId) index decides).
 */
export interface StoryDoc {
  _id: ObjectId;
  userId: ObjectId;
  media: StoryMediaDoc;
  caption: string | null;
  viewCount: number;
  createdAt: Date;
  expiresAt: Date;
}

/** `story_views`: who saw a story, once per viewer (seed 003's `views` array, as documents with a unique key). */
export interface StoryViewDoc {
  _id: ObjectId;
  storyId: ObjectId;
  viewerId: ObjectId;
  viewedAt: Date;
}
