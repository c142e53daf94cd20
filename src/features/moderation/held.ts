import type { PageQuery } from "../../core/schemas";
import type { CommentDoc, PostDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { decodeCursor, encodeCursor } from "../../platform/mongo/paginate";
import type { HeldItem, HeldPage } from "./schema";

/** Content held from view (screened at creation, or flagged by reports) that a moderator has not decided. */
const HELD: Filter = { "moderationHold.at": { $type: "date" }, deletedAt: null };

/**
 * The moderator queue of held posts and comments, oldest hold first, whether or not anyone reported them, each
 * with why it is held (`banned_words`, `nsfw_score`, `report_threshold`). Posts and comments are read in the
 * same keyset order (hold time, id) and merged, one find per collection per page.
 */
export async function heldContent(deps: Deps, query: PageQuery): Promise<HeldPage> {
  const after = query.cursor ? decodeCursor(query.cursor, "date") : null;
  const filter: Filter = after
    ? {
        ...HELD,
        $or: [
          { "moderationHold.at": { $gt: after.value } },
          { "moderationHold.at": after.value, _id: { $gt: after.id } },
        ],
      }
    : HELD;
  const options = { sort: { "moderationHold.at": 1, _id: 1 } as const, limit: query.limit + 1 };
  const [posts, comments] = await Promise.all([
    deps.db.posts.find(filter, options),
    deps.db.comments.find(filter, options),
  ]);
  const merged = [
    ...posts.map((p) => ({ at: heldAt(p), id: p._id, item: fromPost(p) })),
    ...comments.map((c) => ({ at: heldAt(c), id: c._id, item: fromComment(c) })),
  ].sort((a, b) => a.at.getTime() - b.at.getTime() || a.id.toHexString().localeCompare(b.id.toHexString()));
  const page = merged.slice(0, query.limit);
  const last = page.at(-1);
  return {
    items: page.map((p) => p.item),
    nextCursor: merged.length > query.limit && last ? encodeCursor({ id: last.id as ObjectId, value: last.at }) : null,
  };
}

function heldAt(doc: PostDoc | CommentDoc): Date {
  return doc.moderationHold?.at ?? doc.createdAt;
}

function fromPost(p: PostDoc): HeldItem {
  return {
    targetType: "post",
    targetId: p._id.toHexString(),
    authorId: p.userId.toHexString(),
    username: p.username,
    status: p.moderationStatus === "pending" ? "pending" : "flagged",
    source: p.moderationHold?.source ?? "report_threshold",
    heldAt: heldAt(p).toISOString(),
    text: p.prompt,
    imageUrl: p.imageUrl,
    postId: p._id.toHexString(),
    nsfwScore: p.nsfwScore,
  };
}

function fromComment(c: CommentDoc): HeldItem {
  return {
    targetType: "comment",
    targetId: c._id.toHexString(),
    authorId: c.userId.toHexString(),
    username: c.username,
    status: c.moderationStatus === "pending" ? "pending" : "flagged",
    source: c.moderationHold?.source ?? "report_threshold",
    heldAt: heldAt(c).toISOString(),
    text: c.content,
    imageUrl: null,
    postId: c.postId.toHexString(),
    nsfwScore: null,
  };
}
