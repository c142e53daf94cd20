import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import { ApiError } from "../../http/errors";
import { decodeCursor, encodeCursor } from "../../http/pagination";
import { ObjectId } from "../../platform/ids";
import { type Post, type PostDoc, toPost } from "../posts/schema";
import { PUBLIC_FEED_FILTER } from "../posts/visibility";
import { liveVoteCounts, votedByViewer } from "../votes/service";

export type RankedKind = "new" | "trending" | "hot" | "top";
type SortField = "createdAt" | "trendingScore" | "hotScore" | "engagementScore";

const SORT_FIELD: Record<RankedKind, SortField> = {
  new: "createdAt",
  trending: "trendingScore",
  hot: "hotScore",
  top: "engagementScore",
};
const CACHE_TTL_SECONDS: Partial<Record<RankedKind, number>> = { new: 30, trending: 60, hot: 60 };
const FIRST_PAGE = 20;
const FOLLOWING_CACHE_TTL_SECONDS = 60;

export interface FeedPage {
  items: Post[];
  nextCursor: string | null;
}

/** A feed position: the sort value and `_id` of the last post returned (opaque to clients). */
function decodeFeedCursor(cursor: string): { v: number; id: string } {
  const c = decodeCursor(cursor);
  if (typeof c.v !== "number") throw ApiError.validation([{ path: "cursor", message: "not a cursor this API issued" }]);
  return { v: c.v, id: c.id };
}

function sortValue(post: PostDoc, field: SortField): number {
  return field === "createdAt" ? post.createdAt.getTime() : (post[field] ?? 0);
}

/**
 * Keyset pagination on (sort field, _id), both descending: a page continues strictly after the last item of
 * the previous one, so posts inserted meanwhile (which sort before it) never shift, repeat or skip items.
 */
async function page(
  deps: Deps,
  filter: Record<string, unknown>,
  field: SortField,
  opts: { limit: number; cursor?: string },
): Promise<{ docs: PostDoc[]; nextCursor: string | null }> {
  const query: Record<string, unknown> = { ...filter };
  if (opts.cursor) {
    const c = decodeFeedCursor(opts.cursor);
    const v = field === "createdAt" ? new Date(c.v) : c.v;
    query.$or = [{ [field]: { $lt: v } }, { [field]: v, _id: { $lt: new ObjectId(c.id) } }];
  }
  const docs = await deps.db.posts.find(query, { sort: { [field]: -1, _id: -1 }, limit: opts.limit + 1 });
  const pageDocs = docs.slice(0, opts.limit);
  const last = pageDocs[pageDocs.length - 1];
  const nextCursor =
    docs.length > opts.limit && last ? encodeCursor({ v: sortValue(last, field), id: last._id.toHexString() }) : null;
  return { docs: pageDocs, nextCursor };
}

/** Renders posts for a viewer: live vote counts and `viewer.voted` in one batched lookup each. */
async function render(deps: Deps, viewer: Viewer | undefined, docs: PostDoc[]): Promise<Post[]> {
  const ids = docs.map((d) => d._id);
  const [voted, counts] = await Promise.all([
    viewer ? votedByViewer(deps, viewer.id, ids) : Promise.resolve(new Set<string>()),
    liveVoteCounts(deps, ids),
  ]);
  return docs.map((d) => toPost(d, voted.has(d._id.toHexString()), counts.get(d._id.toHexString())));
}

/**
 * new / trending / hot / top: public, approved posts of authors who are not shadow-banned. The first page
 * (default size, no cursor) is cached in Redis (`feed:new:0` 30 s, `feed:trending:0` 60 s, `feed:hot:0`),
 * so a cached read costs Redis only; `viewer.voted` is then filled by one batched lookup for signed-in callers.
 */
export async function rankedFeed(
  deps: Deps,
  viewer: Viewer | undefined,
  kind: RankedKind,
  opts: { limit: number; cursor?: string },
): Promise<FeedPage> {
  const ttl = CACHE_TTL_SECONDS[kind];
  const cacheable = ttl !== undefined && !opts.cursor && opts.limit === FIRST_PAGE;
  const key = cacheKey(deps, kind);
  if (cacheable) {
    const cached = await deps.redis.get<FeedPage>(key);
    if (cached) return withViewer(deps, viewer, cached);
  }
  const { docs, nextCursor } = await page(deps, PUBLIC_FEED_FILTER, SORT_FIELD[kind], opts);
  const items = await render(deps, undefined, docs);
  const result = { items, nextCursor };
  if (cacheable) await deps.redis.set(key, result, { ex: ttl });
  return withViewer(deps, viewer, result);
}

function cacheKey(deps: Deps, kind: RankedKind): string {
  if (kind === "trending") return deps.keys.feedTrending(0);
  if (kind === "new") return deps.keys.feedNew(0);
  return deps.keys.feedHot(0);
}

async function withViewer(deps: Deps, viewer: Viewer | undefined, page: FeedPage): Promise<FeedPage> {
  if (!viewer || page.items.length === 0) return page;
  const voted = await votedByViewer(
    deps,
    viewer.id,
    page.items.map((p) => new ObjectId(p.id)),
  );
  return { ...page, items: page.items.map((p) => ({ ...p, viewer: { voted: voted.has(p.id) } })) };
}

/** Drops the cached first pages (after a post is created, deleted or hidden). */
export async function invalidateFeedCaches(deps: Deps): Promise<void> {
  await deps.redis.del(deps.keys.feedNew(0), deps.keys.feedTrending(0), deps.keys.feedHot(0));
}

/**
 * Drops every cached first page that may show this author's posts (after moderation hides or restores them):
 * the ranked feeds and the following feeds of the author's followers. One MongoDB read, one Redis DEL.
 */
export async function invalidateAuthorFeeds(deps: Deps, authorId: ObjectId): Promise<void> {
  const followers = await deps.db.follows.find(
    { followingId: authorId },
    { projection: { followerId: 1 }, limit: 5_000 },
  );
  await deps.redis.del(
    deps.keys.feedNew(0),
    deps.keys.feedTrending(0),
    deps.keys.feedHot(0),
    ...followers.map((f) => deps.keys.feedFollowing(f.followerId.toHexString(), 0)),
  );
}

/** Posts by people the viewer follows (public and followers-only), newest first. */
/**
 * Posts by people the viewer follows (public and followers-only), newest first. The first page is cached per
 * viewer for 60 s (`feed:following:{userId}:0`, dropped when they follow or unfollow someone); `viewer.voted`
 * is filled per request, so a vote shows at once.
 */
export async function followingFeed(
  deps: Deps,
  viewer: Viewer,
  opts: { limit: number; cursor?: string },
): Promise<FeedPage> {
  const cacheable = !opts.cursor && opts.limit === FIRST_PAGE;
  const key = deps.keys.feedFollowing(viewer.id, 0);
  if (cacheable) {
    const cached = await deps.redis.get<FeedPage>(key);
    if (cached) return withViewer(deps, viewer, cached);
  }
  const edges = await deps.db.follows.find(
    { followerId: new ObjectId(viewer.id) },
    { projection: { followingId: 1 }, limit: 5_000 },
  );
  let result: FeedPage = { items: [], nextCursor: null };
  if (edges.length > 0) {
    const { docs, nextCursor } = await page(
      deps,
      {
        userId: { $in: edges.map((e) => e.followingId) },
        deletedAt: null,
        moderationStatus: "approved",
        authorShadowBanned: false,
        visibility: { $in: ["public", "followers"] },
      },
      "createdAt",
      opts,
    );
    result = { items: await render(deps, undefined, docs), nextCursor };
  }
  if (cacheable) await deps.redis.set(key, result, { ex: FOLLOWING_CACHE_TTL_SECONDS });
  return withViewer(deps, viewer, result);
}

export async function categoryFeed(
  deps: Deps,
  viewer: Viewer | undefined,
  category: string,
  opts: { limit: number; cursor?: string },
) {
  const { docs, nextCursor } = await page(
    deps,
    { ...PUBLIC_FEED_FILTER, category: category.toLowerCase() },
    "trendingScore",
    opts,
  );
  return { items: await render(deps, viewer, docs), nextCursor };
}

export async function tagFeed(
  deps: Deps,
  viewer: Viewer | undefined,
  tag: string,
  opts: { limit: number; cursor?: string },
) {
  const normalized = tag.replace(/^#/, "").toLowerCase();
  const { docs, nextCursor } = await page(deps, { ...PUBLIC_FEED_FILTER, tags: normalized }, "createdAt", opts);
  return { items: await render(deps, viewer, docs), nextCursor };
}

/**
 * A user's posts: everything of their own for the author (pinned or not, any visibility or moderation state);
 * for others, what they may see (followers-only when they follow; nothing of a shadow-banned author).
 */
export async function userPosts(
  deps: Deps,
  viewer: Viewer | undefined,
  userId: string,
  opts: { limit: number; cursor?: string },
) {
  const author = await deps.db.users.findOne(
    { _id: new ObjectId(userId), deletedAt: null },
    { projection: { _id: 1 } },
  );
  if (!author) throw ApiError.notFound("No such user.");
  let filter: Record<string, unknown>;
  if (viewer?.id === userId) {
    filter = { userId: author._id, deletedAt: null };
  } else {
    const follows = viewer
      ? await deps.db.follows.findOne(
          { followerId: new ObjectId(viewer.id), followingId: author._id },
          { projection: { _id: 1 } },
        )
      : null;
    filter = {
      userId: author._id,
      deletedAt: null,
      moderationStatus: "approved",
      authorShadowBanned: false,
      visibility: follows ? { $in: ["public", "followers"] } : "public",
    };
  }
  const { docs, nextCursor } = await page(deps, filter, "createdAt", opts);
  return { items: await render(deps, viewer, docs), nextCursor };
}

/** Text search over prompt and tags (the posts text index), public feed rules, newest first. */
export async function searchPosts(
  deps: Deps,
  viewer: Viewer | undefined,
  q: string,
  opts: { limit: number; cursor?: string },
) {
  const { docs, nextCursor } = await page(deps, { ...PUBLIC_FEED_FILTER, $text: { $search: q } }, "createdAt", opts);
  return { items: await render(deps, viewer, docs), nextCursor };
}
