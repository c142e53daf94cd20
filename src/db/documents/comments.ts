import type { ObjectId } from "../../platform/ids";
import type { ModerationHold } from "./posts";
import type { RequestKey } from "./requests";

/** `comments` (seed 001, in MongoDB): threaded by `parentId` (one level of replies, as the app shows them). */
export interface CommentDoc {
  _id: ObjectId;
  /** The Idempotency-Key it was created with (key: `{userId}:{Idempotency-Key}`), when the client sent one. */
  idempotency?: RequestKey;
  postId: ObjectId;
  userId: ObjectId;
  username: string;
  userAvatarUrl: string | null;
  parentId: ObjectId | null;
  content: string;
  repliesCount: number;
  isEdited: boolean;
  authorShadowBanned: boolean;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
  /** `account`: hidden with its author's account (DELETE /v1/me), which is what the deletion recounts. */
  deletedBy: "author" | "moderator" | "account" | null;
  /**
   * Trust and safety: "pending" (screened at creation), "flagged" (report threshold) and "removed" (moderator)
   * hide it from all but its author; absent means approved.
   */
  moderationStatus?: "approved" | "pending" | "flagged" | "removed";
  /** Set while the comment is held (pending or flagged) and waits in the moderator queue. */
  moderationHold?: ModerationHold | null;
  /** Deleted accounts whose replies `repliesCount` no longer counts (see `PostDoc.uncountedAccounts`). */
  uncountedAccounts?: ObjectId[];
}
