import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";

/**
 * Export and erasure of a person's stories (wired into features/privacy by its owner).
 *
 * Export: their live stories (with view counts; who viewed them is the viewers' to keep) and the stories they
 * viewed (ids and times). An expired story is never returned, so it is not exported either.
 *
 * Erasure (idempotent and restartable): their stories and the views of them go; their views of others'
 * stories go too, each story's count moving down in the same transaction as the view's deletion, so a re-run
 * never counts one twice.
 */

const PAGE = 500;

export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const me = new ObjectId(userId);
  for (let cursor: string | undefined, first = true; first || cursor; first = false) {
    const page = await paginate(deps.db.stories, {
      filter: { userId: me, expiresAt: { $gt: deps.clock.now() } },
      order: { direction: "asc" },
      limit: PAGE,
      cursor,
    });
    cursor = page.nextCursor ?? undefined;
    if (page.items.length === 0) break;
    yield {
      section: "stories",
      items: page.items.map((s) => ({
        id: s._id.toHexString(),
        mediaUrl: s.media.url,
        caption: s.caption,
        viewCount: s.viewCount,
        createdAt: s.createdAt.toISOString(),
        expiresAt: s.expiresAt.toISOString(),
      })),
    };
  }
  for (let cursor: string | undefined, first = true; first || cursor; first = false) {
    const page = await paginate(deps.db.storyViews, {
      filter: { viewerId: me },
      order: { direction: "asc" },
      limit: PAGE,
      cursor,
    });
    cursor = page.nextCursor ?? undefined;
    if (page.items.length === 0) break;
    yield {
      section: "storyViews",
      items: page.items.map((v) => ({ storyId: v.storyId.toHexString(), viewedAt: v.viewedAt.toISOString() })),
    };
  }
}

export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  const me = new ObjectId(userId);
  for (let round = 0; round < 10_000; round++) {
    const own = await deps.db.stories.find({ userId: me }, { projection: { _id: 1 }, limit: PAGE });
    if (own.length === 0) break;
    const ids = own.map((s) => s._id);
    // Views first: a crash in between leaves stories that the next run finds again.
    await deps.db.batch([
      deps.db.storyViews.inBatch.deleteMany({ storyId: { $in: ids } }),
      deps.db.stories.inBatch.deleteMany({ _id: { $in: ids } }),
    ]);
  }
  for (let round = 0; round < 10_000; round++) {
    const views = await deps.db.storyViews.find({ viewerId: me }, { projection: { _id: 1, storyId: 1 }, limit: PAGE });
    if (views.length === 0) break;
    await deps.db.batch(
      [
        deps.db.stories.inBatch.updateMany({ _id: { $in: views.map((v) => v.storyId) } }, { $inc: { viewCount: -1 } }),
        deps.db.storyViews.inBatch.deleteMany({ _id: { $in: views.map((v) => v._id) } }),
      ],
      { transaction: true },
    );
  }
}
