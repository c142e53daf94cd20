import type { ObjectId } from "../../platform/ids";

/**
 * `tags` (seed 004's tags with usage counts): `_id` is the normalized tag, `posts` how many visible posts carry
 * it (published, approved, public, not deleted, author not shadow-banned). Only the `tag-counts` job moves
 * `posts`; `batches` are the last count batches applied here, so re-applying one after a crash changes nothing.
 */
export interface TagDoc {
  _id: string;
  posts: number;
  batches: ObjectId[];
  createdAt: Date;
  updatedAt: Date;
}

/**
 * `tag_count_batches`: what one batch of the `tag-counts` job owes, written before any count moves, so a run
 * that dies half-way is finished exactly by the next one: the moves per tag, and each post's new counted tags.
 */
export interface TagCountBatchDoc {
  _id: ObjectId;
  moves: { tag: string; by: number }[];
  posts: { _id: ObjectId; countedTags: string[]; token: ObjectId | null }[];
  createdAt: Date;
}
