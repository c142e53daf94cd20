import { z } from "@hono/zod-openapi";
import { ObjectIdString } from "../../http/pagination";
import type { ObjectId } from "../../platform/ids";

/** `comments` (seed 001, in MongoDB): threaded by `parentId` (one level of replies, as the app shows them). */
export interface CommentDoc {
  _id: ObjectId;
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
  deletedBy: "author" | "moderator" | null;
  /** Trust and safety: "flagged" (report threshold) and "removed" (moderator) hide it from all but its author. */
  moderationStatus?: "approved" | "flagged" | "removed";
}

export const CreateCommentBody = z
  .object({
    content: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters"),
    parentId: ObjectIdString.optional(),
  })
  .strict()
  .openapi("CreateComment");

export const EditCommentBody = z
  .object({ content: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters") })
  .strict()
  .openapi("EditComment");

const CommentBase = z.object({
  id: z.string(),
  postId: z.string(),
  userId: z.string().nullable(),
  username: z.string().nullable(),
  userAvatarUrl: z.string().nullable(),
  parentId: z.string().nullable(),
  content: z.string().nullable().openapi({ description: "null when the comment was deleted (its replies stay)" }),
  repliesCount: z.number().int(),
  isEdited: z.boolean(),
  deleted: z.boolean(),
  createdAt: z.string(),
});

export const Comment = CommentBase.openapi("Comment");
export const CommentThread = CommentBase.extend({ replies: z.array(Comment) }).openapi("CommentThread");
export const CommentPage = z
  .object({ items: z.array(CommentThread), nextCursor: z.string().nullable() })
  .openapi("CommentPage");

export type Comment = z.infer<typeof Comment>;
export type CommentThread = z.infer<typeof CommentThread>;

export function toComment(c: CommentDoc): Comment {
  const deleted = Boolean(c.deletedAt);
  return {
    id: c._id.toHexString(),
    postId: c.postId.toHexString(),
    userId: deleted ? null : c.userId.toHexString(),
    username: deleted ? null : c.username,
    userAvatarUrl: deleted ? null : c.userAvatarUrl,
    parentId: c.parentId ? c.parentId.toHexString() : null,
    content: deleted ? null : c.content,
    repliesCount: c.repliesCount,
    isEdited: c.isEdited,
    deleted,
    createdAt: c.createdAt.toISOString(),
  };
}
