import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { PostDoc, TagCountBatchDoc, TagDoc } from "../../db";
import { newObjectId, newObjectIdAt, ObjectId } from "../../platform/ids";
import type { BulkOperation } from "../../platform/mongo/client";

/**
 * Tag usage counts (`tags.posts`): how many visible posts carry each tag — published, approved, public, not
 * deleted, author not shadow-banned, i.e. what `GET /v1/tags/{tag}/posts` lists to everyone.
 *
 * Every change that can move a post's counts (creation, publication, archiving, edits of tags or visibility,
 * deletion, moderation, shadow bans) writes a fresh `tagsDirty` id on the post in the same update; an account's
 * deletion, which does not, is found by `counted_deleted`. The `tag-counts` job (every minute) is the only
 * writer of the counts, and moves them exactly once per change, however requests race and runs overlap:
 *
 * 1. claim a batch of dirty posts (`tagsBatch`: only unclaimed posts are taken, so two runs never share one);
 * 2. plan: each post's counts move from `countedTags` (what the counts hold for it) to the tags it should count
 *    for now; the moves and the new counted tags are written as one `tag_count_batches` document first;
 * 3. apply the moves, each tag remembering the batches applied to it (`batches`), so applying again is a no-op;
 * 4. record each post's new counted tags and release it; its dirty mark clears only if no change came since it
 *    was read (else the next batch counts it again, from the tags it now counts for);
 * 5. delete the batch document.
 *
 * A run that dies after 2 leaves its batch document, which the next run finishes (steps 3–5, idempotent); one
 * that dies after 1 leaves claimed posts without one, which the next run releases. Both wait a lease's length,
 * so a live run's batch is never taken for a dead one's.
 */

/** Batches each tag remembers as applied: far more than a lease's worth of batches touching one tag. */
const BATCHES_KEPT = 200;

/** Batches a crashed run left behind, finished per run before new work. */
const LEFTOVER_BATCHES = 20;

/** What a post's counts must hold for it now: its tags while everyone can see it, else none. */
export function tagsToCount(
  post: Pick<PostDoc, "tags" | "status" | "moderationStatus" | "deletedAt" | "visibility" | "authorShadowBanned">,
): string[] {
  const visible =
    !post.deletedAt &&
    (post.status ?? "published") === "published" &&
    post.moderationStatus === "approved" &&
    post.visibility === "public" &&
    !post.authorShadowBanned;
  return visible ? [...new Set(post.tags)] : [];
}

export async function countTags(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  await finishLeftovers(ctx);
  // Counted posts deleted by a path that does not mark them (an account's deletion) are marked here.
  await deps.db.posts.updateMany(
    { tagsCounted: true, deletedAt: { $type: "date" }, tagsDirty: null },
    { $set: { tagsDirty: newObjectId() } },
  );
  while (ctx.timeLeft() > 2_000) {
    if (!(await countBatch(ctx))) return { more: false };
  }
  return { more: true };
}

const COUNT_PROJECTION = {
  tags: 1,
  status: 1,
  moderationStatus: 1,
  deletedAt: 1,
  visibility: 1,
  authorShadowBanned: 1,
  countedTags: 1,
  tagsDirty: 1,
} as const;

/** Claims, plans and applies one batch of dirty posts; false when there were none. */
async function countBatch(ctx: JobContext): Promise<boolean> {
  const { deps } = ctx;
  const limit = deps.config.tags.countBatchPosts;
  const dirty = await deps.db.posts.find(
    { tagsDirty: { $type: "objectId" }, tagsBatch: null },
    { sort: { tagsDirty: 1 }, limit, projection: { _id: 1 } },
  );
  if (dirty.length === 0) return false;
  await ctx.checkpoint("found");
  // Stamped with the job's clock, which is what a later run ages a dead run's claims by.
  const batchId = newObjectIdAt(deps.clock.now());
  await deps.db.posts.updateMany(
    { _id: { $in: dirty.map((p) => p._id) }, tagsBatch: null },
    { $set: { tagsBatch: batchId } },
  );
  await ctx.checkpoint("claimed");
  const ours = await deps.db.posts.find({ tagsBatch: batchId }, { limit, projection: COUNT_PROJECTION });
  if (ours.length === 0) return true;
  const batch = planBatch(batchId, ours, deps.clock.now());
  await deps.db.tagCountBatches.insertOne(batch);
  await ctx.checkpoint("planned");
  await applyBatch(ctx, batch);
  ctx.count("posts", ours.length);
  ctx.count("tagMoves", batch.moves.length);
  return true;
}

/** What planning reads of a post. */
export type CountedPost = Pick<
  PostDoc,
  "_id" | "tags" | "status" | "moderationStatus" | "deletedAt" | "visibility" | "authorShadowBanned"
> &
  Pick<PostDoc, "countedTags" | "tagsDirty">;

/** Each post's move from what its counts hold to what they must hold, summed per tag. */
export function planBatch(id: ObjectId, posts: CountedPost[], now: Date): TagCountBatchDoc {
  const moves = new Map<string, number>();
  const move = (tag: string, by: number) => moves.set(tag, (moves.get(tag) ?? 0) + by);
  const planned = posts.map((post) => {
    const counted = [...new Set(post.countedTags ?? [])];
    const wanted = tagsToCount(post);
    for (const tag of counted) move(tag, -1);
    for (const tag of wanted) move(tag, 1);
    return { _id: post._id, countedTags: wanted, token: post.tagsDirty ?? null };
  });
  return {
    _id: id,
    moves: [...moves].filter(([, by]) => by !== 0).map(([tag, by]) => ({ tag, by })),
    posts: planned,
    createdAt: now,
  };
}

/** Steps 3–5 of a planned batch; each is idempotent, so finishing a dead run's batch is the same call. */
async function applyBatch(ctx: JobContext, batch: TagCountBatchDoc): Promise<void> {
  const { deps } = ctx;
  const now = deps.clock.now();
  // A tag that already holds this batch matches nothing, and its upsert then collides on `_id`: both mean done.
  await deps.db.tags.bulkWriteUnique(
    batch.moves.map(
      (m): BulkOperation<TagDoc> => ({
        updateOne: {
          filter: { _id: m.tag, batches: { $ne: batch._id } },
          update: {
            $inc: { posts: m.by },
            $push: { batches: { $each: [batch._id], $slice: -BATCHES_KEPT } },
            $set: { updatedAt: now },
            $setOnInsert: { createdAt: now },
          },
          upsert: true,
        },
      }),
    ),
  );
  await ctx.checkpoint("counted");
  if (batch.posts.length) {
    await deps.db.posts.bulkWrite(
      batch.posts.flatMap((p): BulkOperation<PostDoc>[] => {
        const counted = { countedTags: p.countedTags, tagsCounted: p.countedTags.length > 0, tagsBatch: null };
        return [
          // Unchanged since the plan read it: clean now.
          {
            updateOne: {
              filter: { _id: p._id, tagsBatch: batch._id, tagsDirty: p.token },
              update: { $set: { ...counted, tagsDirty: null } },
            },
          },
          // Changed since: released, still dirty, counted again from these tags by a later batch.
          { updateOne: { filter: { _id: p._id, tagsBatch: batch._id }, update: { $set: counted } } },
        ];
      }),
      { ordered: true },
    );
  }
  await deps.db.tagCountBatches.deleteOne({ _id: batch._id });
}

/** Finishes the batches of runs that died after planning, and releases posts claimed by runs that died before. */
async function finishLeftovers(ctx: JobContext): Promise<void> {
  const { deps } = ctx;
  const cutoff = ObjectId.createFromTime(Math.floor(deps.clock.now().getTime() / 1000) - deps.config.jobs.leaseSeconds);
  const batches = await deps.db.tagCountBatches.find(
    { _id: { $type: "objectId", $lt: cutoff } },
    { sort: { _id: 1 }, limit: LEFTOVER_BATCHES },
  );
  for (const batch of batches) await applyBatch(ctx, batch);
  ctx.count("leftoverBatches", batches.length);
  const claimed = await deps.db.posts.find(
    { tagsBatch: { $type: "objectId", $lt: cutoff } },
    { projection: { tagsBatch: 1 }, limit: deps.config.tags.countBatchPosts },
  );
  const claims = [...new Map(claimed.map((p) => [String(p.tagsBatch), p.tagsBatch as ObjectId])).values()];
  if (claims.length === 0) return;
  const planned = await deps.db.tagCountBatches.find(
    { _id: { $in: claims } },
    { projection: { _id: 1 }, limit: claims.length },
  );
  const live = new Set(planned.map((b) => b._id.toHexString()));
  const orphans = claims.filter((id) => !live.has(id.toHexString()));
  if (orphans.length) {
    await deps.db.posts.updateMany({ tagsBatch: { $in: orphans } }, { $set: { tagsBatch: null } });
  }
}

export const tagCountsJob: Job = {
  name: "tag-counts",
  description: "Moves tag usage counts for posts whose tags, visibility or state changed (exactly once per change).",
  run: countTags,
};
