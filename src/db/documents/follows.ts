import type { ObjectId } from "../../platform/ids";

/** `follows` (seed 000). */
export interface FollowDoc {
  _id: ObjectId;
  followerId: ObjectId;
  followingId: ObjectId;
  createdAt: Date;
}
