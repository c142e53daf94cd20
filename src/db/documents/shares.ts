import type { ObjectId } from "../../platform/ids";

/**
 * `shares`: one per (post, user), so a share counts once per person. The author's own shares are never
 * recorded (they get the link, the post gains nothing); `shadow` marks a shadow-banned sharer's share,
 * kept but counted nowhere.
 */
export interface ShareDoc {
  _id: ObjectId;
  postId: ObjectId;
  userId: ObjectId;
  postAuthorId: ObjectId;
  shadow: boolean;
  createdAt: Date;
}
