import type { ObjectId } from "../../platform/ids";

/**
 * `saves` (seed 001's SAVE engagement): one per (user, post), private to the user who saved. `postAuthorId`
 * lets an account's erasure find the saves of its posts.
 */
export interface SaveDoc {
  _id: ObjectId;
  userId: ObjectId;
  postId: ObjectId;
  postAuthorId: ObjectId;
  createdAt: Date;
}
