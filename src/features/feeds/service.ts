import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { Relations } from "../../core/relations";
import type { PageQuery } from "../../core/schemas";
import type { Viewer } from "../../core/viewer";
import type { PostDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { type KeysetOrder, paginate } from "../../platform/mongo/paginate";
import { deleteKeys, getValue, type RedisBatch, readOrMiss, runOp, setValue } from "../../platform/redis-ops";
import { type PostPage, toPost } from "../posts/schema";
import type { LifecycleState } from "../posts/transitions";
import { liveVoteCounts, votedByViewer } from "../posts/viewer-state";
import { PUBLIC_FEED_FILTER, SHOWN_TO_OTHERS } from "../posts/visibility";
import { pendingRelationsRead, relationsAfter, relationsFor } from "../relations/service";
import type { UserPostsQuery } from "./schema";

export type RankedKind = "new" | "trending" | "hot" | "top";

/** Each ranked feed's order: its score field (or creation time) descending, `_id` breaking ties. */
const ORDER: Record<RankedKind, KeysetOrder> = {
  new: { field: "createdAt", kind: "date", direction: "desc" },
  trending: { field: "trendingScore", kind: "number", direction: "desc" },
  hot: { field: "hotScore", kind: "number", direction: "desc" },
  top: { field: "engagementScore", kind: "number", direction: "desc" },
};
const NEWEST_FIRST: KeysetOrder = ORDER.new;

/** Only the default first page (no cursor, the default size) is cached. */
const FIRST_PAGE_SIZE = 20;

/** A page of posts in keyset order (see platform/mongo/paginate.ts). */
async function page(deps: Deps, filter: Filter, order: KeysetOrder, query: PageQuery) {
  return paginate(deps.db.posts, { filter, order, limit: query.limit, cursor: query.cursor });
}

/** Renders posts for a viewer: live vote counts and `viewer.voted` in one batched lookup each. */
async function render(deps: Deps, viewer: Viewer | undefined, docs: PostDoc[]) {
  const ids = docs.map((d) => d._id);
  const [voted, counts] = await Promise.all([
    viewer ? votedByViewer(deps, viewer.id, ids) : Promise.resolve(new Set<string>()),
    liveVoteCounts(deps, ids),
  ]);
  return docs.map((d) => toPost(d, voted.has(d._id.toHexString()), counts.get(d._id.toHexString())));
}

function cacheOf(deps: Deps, kind: RankedKind): { key: string; ttlSeconds: number } | null {
  const f = deps.config.feeds;
  if (kind === "new") return { key: deps.keys.feedNew(0), ttlSeconds: f.newCacheTtlSeconds };
  if (kind === "trending") return { key: deps.keys.feedTrending(0), ttlSeconds: f.trendingCacheTtlSeconds };
  if (kind === "hot") return { key: deps.keys.feedHot(0), ttlSeconds: f.hotCacheTtlSeconds };
  return null;
}

/**
 * new / trending / hot / top: public, approved posts of authors who are not shadow-banned. The first page
 * (default size, no cursor) of new/trending/hot is cached in Redis, read in the request's first Redis batch
 * (`read`, which carries the rate limit and the viewer's blocks and mutes), so a cached read costs one round
 * trip; `viewer.voted` is then filled by one batched lookup for signed-in callers. The cached page is the same
 * for everyone: each viewer's blocked and muted authors are filtered out of it after the read. Without Redis
 * the page comes from MongoDB with the stored vote counts (fail-open read).
 */
export async function rankedFeed(
  deps: Deps,
  read: RedisBatch,
  viewer: Viewer | undefined,
  kind: RankedKind,
  query: PageQuery,
): Promise<PostPage> {
  const cache = !query.cursor && query.limit === FIRST_PAGE_SIZE ? cacheOf(deps, kind) : null;
  const first = await readOrMiss(
    read,
    { ...(cache ? { cached: getValue<PostPage>(cache.key) } : {}), ...pendingRelationsRead(deps, viewer) },
    deps.log,
  );
  const relations = await relationsAfter(deps, viewer, first);
  if (first.cached) return withViewer(deps, viewer, hideFrom(first.cached, relations));
  // A page that will be cached is everyone's page; later pages leave the viewer's hidden authors out in the query.
  const filter = cache ? PUBLIC_FEED_FILTER : withoutHidden(PUBLIC_FEED_FILTER, relations);
  const { items: docs, nextCursor } = await page(deps, filter, ORDER[kind], query);
  const result = { items: await render(deps, undefined, docs), nextCursor };
  if (cache) await fillCache(deps, cache.key, result, cache.ttlSeconds);
  return withViewer(deps, viewer, hideFrom(result, relations));
}

/** Caches a first page; best effort (the next request reads MongoDB again). */
async function fillCache(deps: Deps, key: string, page: PostPage, ttlSeconds: number): Promise<void> {
  await bestEffort(deps, "feed cache fill", () => runOp(deps.redis, setValue(key, page, ttlSeconds)));
}

/** A page without the posts of authors the viewer is blocked with or mutes. */
function hideFrom(page: PostPage, relations: Relations): PostPage {
  const items = page.items.filter((p) => !relations.hides(p.userId));
  return items.length === page.items.length ? page : { ...page, items };
}

/** A feed filter that also leaves out the authors the viewer is blocked with or mutes. */
function withoutHidden(filter: Filter, relations: Relations): Filter {
  const hidden = relations.hiddenIds();
  return hidden.length ? { ...filter, userId: { $nin: hidden.map((id) => new ObjectId(id)) } } : filter;
}

async function withViewer(deps: Deps, viewer: Viewer | undefined, page: PostPage): Promise<PostPage> {
  if (!viewer || page.items.length === 0) return page;
  const voted = await votedByViewer(
    deps,
    viewer.id,
    page.items.map((p) => new ObjectId(p.id)),
  );
  return { ...page, items: page.items.map((p) => ({ ...p, viewer: { voted: voted.has(p.id) } })) };
}

/**
 * Drops every cached first page that may show this author's posts (after moderation hides or restores them):
 * the ranked feeds and the following feeds of the author's followers. One MongoDB read, one Redis DEL, best
 * effort: the change stands, and a page left behind expires within its FEED_*_CACHE_TTL_SECONDS.
 */
export async function invalidateAuthorFeeds(deps: Deps, authorId: ObjectId): Promise<void> {
  const followers = await deps.db.follows.find(
    { followingId: authorId },
    { projection: { followerId: 1 }, limit: 5_000 },
  );
  await bestEffort(deps, "feed cache drop", () =>
    runOp(
      deps.redis,
      deleteKeys([
        ...deps.keys.publicFeedFirstPages(),
        ...followers.map((f) => deps.keys.feedFollowing(f.followerId.toHexString(), 0)),
      ]),
    ),
  );
}

/**
 * Posts by people the viewer follows (public and followers-only), newest first. The first page is cached per
 * viewer (`feed:following:{userId}:0`, dropped when they follow or unfollow someone); `viewer.voted` is filled
 * per request, so a vote shows at once.
 */
export async function followingFeed(deps: Deps, read: RedisBatch, viewer: Viewer, query: PageQuery): Promise<PostPage> {
  const cacheable = !query.cursor && query.limit === FIRST_PAGE_SIZE;
  const key = deps.keys.feedFollowing(viewer.id, 0);
  const first = await readOrMiss(
    read,
    { ...(cacheable ? { cached: getValue<PostPage>(key) } : {}), ...pendingRelationsRead(deps, viewer) },
    deps.log,
  );
  // Muting someone you follow is what mutes are for: their posts leave this feed, the follow stays.
  const relations = await relationsAfter(deps, viewer, first);
  if (first.cached) return withViewer(deps, viewer, hideFrom(first.cached, relations));
  const edges = await deps.db.follows.find(
    { followerId: new ObjectId(viewer.id) },
    { projection: { followingId: 1 }, limit: 5_000 },
  );
  let result: PostPage = { items: [], nextCursor: null };
  if (edges.length > 0) {
    const { items: docs, nextCursor } = await page(
      deps,
      {
        userId: { $in: edges.map((e) => e.followingId) },
        deletedAt: null,
        ...SHOWN_TO_OTHERS,
        authorShadowBanned: false,
        visibility: { $in: ["public", "followers"] },
      },
      NEWEST_FIRST,
      query,
    );
    result = { items: await render(deps, undefined, docs), nextCursor };
  }
  if (cacheable) await fillCache(deps, key, result, deps.config.feeds.followingCacheTtlSeconds);
  return withViewer(deps, viewer, hideFrom(result, relations));
}

export async function categoryFeed(
  deps: Deps,
  viewer: Viewer | undefined,
  category: string,
  query: PageQuery,
): Promise<PostPage> {
  const relations = await relationsFor(deps, viewer);
  const filter = withoutHidden({ ...PUBLIC_FEED_FILTER, category: category.toLowerCase() }, relations);
  const { items, nextCursor } = await page(deps, filter, ORDER.trending, query);
  return { items: await render(deps, viewer, items), nextCursor };
}

export async function tagFeed(
  deps: Deps,
  viewer: Viewer | undefined,
  tag: string,
  query: PageQuery,
): Promise<PostPage> {
  const normalized = tag.replace(/^#/, "").toLowerCase();
  const filter = withoutHidden({ ...PUBLIC_FEED_FILTER, tags: normalized }, await relationsFor(deps, viewer));
  const { items, nextCursor } = await page(deps, filter, NEWEST_FIRST, query);
  return { items: await render(deps, viewer, items), nextCursor };
}

/** The filter for posts in one lifecycle state (`pending_review` is a published post moderation holds). */
function inState(state: LifecycleState): Filter {
  if (state === "pending_review") return { status: "published", moderationStatus: { $in: HELD } };
  if (state === "published") return { status: "published", moderationStatus: { $nin: HELD } };
  return { status: state };
}
const HELD = ["pending", "flagged"];

/**
 * A user's posts: everything of their own for the author (any lifecycle, visibility or moderation state, or
 * only those in `status`); for others, what they may see (published and approved; followers-only when they
 * follow; nothing of a shadow-banned author). The first page starts with the pinned posts (at most
 * POST_MAX_PINNED), then `limit` posts newest first.
 */
export async function userPosts(
  deps: Deps,
  viewer: Viewer | undefined,
  userId: string,
  query: UserPostsQuery,
): Promise<PostPage> {
  const [author, relations] = await Promise.all([
    deps.db.users.findOne({ _id: new ObjectId(userId), deletedAt: null }, { projection: { _id: 1 } }),
    relationsFor(deps, viewer),
  ]);
  if (!author || relations.blockedWith(userId)) throw ApiError.notFound("No such user.");
  let filter: Filter;
  if (viewer?.id === userId) {
    filter = { userId: author._id, deletedAt: null, ...(query.status ? inState(query.status) : {}) };
  } else if (query.status && query.status !== "published") {
    return { items: [], nextCursor: null };
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
      ...SHOWN_TO_OTHERS,
      authorShadowBanned: false,
      visibility: follows ? { $in: ["public", "followers"] } : "public",
    };
  }
  // Pinned posts (that this viewer may see) lead the first page, newest pin first; the pages themselves list
  // the rest newest first, so pinned posts never appear twice.
  const [pinned, rest] = await Promise.all([
    query.cursor
      ? Promise.resolve([])
      : deps.db.posts.find(
          { ...filter, isPinned: true },
          { sort: { pinnedAt: -1, _id: -1 }, limit: deps.config.posts.maxPinned },
        ),
    page(deps, { ...filter, isPinned: { $ne: true } }, NEWEST_FIRST, query),
  ]);
  return { items: await render(deps, viewer, [...pinned, ...rest.items]), nextCursor: rest.nextCursor };
}

/** Text search over prompt and tags (the posts text index), public feed rules, newest first. */
export async function searchPosts(
  deps: Deps,
  viewer: Viewer | undefined,
  q: string,
  query: PageQuery,
): Promise<PostPage> {
  const filter = withoutHidden({ ...PUBLIC_FEED_FILTER, $text: { $search: q } }, await relationsFor(deps, viewer));
  const { items, nextCursor } = await page(deps, filter, NEWEST_FIRST, query);
  return { items: await render(deps, viewer, items), nextCursor };
}
