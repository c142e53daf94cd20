import { z } from "zod";
import { ObjectIdString, pageOf } from "../../core/schemas";
import type { CommentDoc } from "../../db";

export const CreateCommentBody = z
  .object({
    content: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters"),
    parentId: ObjectIdString.optional(),
  })
  .strict()
  .meta({ id: "CreateComment" });

export const EditCommentBody = z
  .object({ content: z.string().trim().min(1, "must not be empty").max(1000, "at most 1000 characters") })
  .strict()
  .meta({ id: "EditComment" });

const CommentBase = z.object({
  id: z.string(),
  postId: z.string(),
  userId: z.string().nullable(),
  username: z.string().nullable(),
  userAvatarUrl: z.string().nullable(),
  parentId: z.string().nullable(),
  content: z.string().nullable().meta({ description: "null when the comment was deleted (its replies stay)" }),
  repliesCount: z.number().int(),
  isEdited: z.boolean(),
  deleted: z.boolean(),
  createdAt: z.string(),
});

export const Comment = CommentBase.meta({ id: "Comment" });
export const CommentThread = CommentBase.extend({ replies: z.array(Comment) }).meta({ id: "CommentThread" });
export const CommentPage = pageOf(CommentThread, "CommentPage");
export type CommentPage = z.infer<typeof CommentPage>;

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
