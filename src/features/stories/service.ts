import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { StoryDoc, StoryMediaDoc, StoryViewDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { DuplicateKeyError, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { HOUR_MS } from "../../platform/time";
import { ownGeneratedImages } from "../generations/images";
import { requireReadyMedia } from "../media/service";
import { directConversationWith } from "../messaging/conversations";
import type { Later } from "../messaging/events";
import { checkedContent, sendMessage } from "../messaging/messages";
import type { Message } from "../messaging/schema";
import { PUBLIC_USER_FIELDS } from "../messaging/views";
import { relationsFor } from "../relations/service";
import { type PublicUser, toPublicUser } from "../users/schema";
import type { CreateStoryBody, Story, StoryList, StoryReplyBody, StoryTray, StoryViewers } from "./schema";

/**
 * Stories (seed 003): an image shown for STORY_TTL_HOURS, then never returned (every read filters on
 * `expiresAt`) and deleted with its views by the `story-purge` job. A view is recorded once per viewer (the
 * unique (story, viewer) index decides a race) and only the owner sees who viewed and how many. Blocks hide
 * each from the other's stories (404); mutes keep the muted person out of the tray. A reply is a direct
 * message to the author, with the story's id on it.
 */

const noSuchStory = () => ApiError.notFound("No such story.");

export function toStory(doc: StoryDoc, viewerId: string | undefined, seen?: boolean): Story {
  const own = viewerId === doc.userId.toHexString();
  return {
    id: doc._id.toHexString(),
    userId: doc.userId.toHexString(),
    mediaUrl: doc.media.url,
    media: {
      url: doc.media.url,
      thumbnailUrl: doc.media.thumbnailUrl,
      width: doc.media.width,
      height: doc.media.height,
      blurhash: doc.media.blurhash,
    },
    caption: doc.caption,
    createdAt: doc.createdAt.toISOString(),
    expiresAt: doc.expiresAt.toISOString(),
    ...(own ? { viewCount: doc.viewCount } : {}),
    ...(seen !== undefined ? { seen } : {}),
  };
}

/**
 * Posts a story from one of the caller's completed generations or ready `story` image uploads. Waits: 1 MongoDB
 * read (the source and the live count, in parallel) + 1 write.
 */
export async function createStory(deps: Deps, viewer: Viewer, body: CreateStoryBody): Promise<Story> {
  if (body.mediaId && body.generationId)
    throw ApiError.invalidField("mediaId", "send mediaId or generationId, not both");
  if (!body.generationId && !body.mediaId)
    throw ApiError.invalidField("generationId", "a story needs generationId or mediaId");
  const caption = body.caption?.trim() ? body.caption.trim() : null;
  const max = deps.config.stories.maxCaptionLength;
  if (caption && caption.length > max) throw ApiError.invalidField("caption", `at most ${max} characters`);
  const me = new ObjectId(viewer.id);
  const now = deps.clock.now();
  const [media, live] = await Promise.all([
    body.mediaId ? uploadedMedia(deps, viewer, body.mediaId) : generationMedia(deps, me, body.generationId as string),
    deps.db.stories.aggregate<{ n: number }>([{ $match: { userId: me, expiresAt: { $gt: now } } }, { $count: "n" }]),
  ]);
  if ((live[0]?.n ?? 0) >= deps.config.stories.maxActivePerUser) {
    throw ApiError.conflict("story_limit", `At most ${deps.config.stories.maxActivePerUser} live stories at a time.`);
  }
  const doc: StoryDoc = {
    _id: newObjectId(),
    userId: me,
    media,
    caption,
    viewCount: 0,
    createdAt: now,
    expiresAt: new Date(now.getTime() + deps.config.stories.ttlHours * HOUR_MS),
  };
  await deps.db.stories.insertOne(doc);
  return toStory(doc, viewer.id);
}

/** The caller's own completed generation, copied into the story (generations expire; the story keeps it). */
async function generationMedia(deps: Deps, me: ObjectId, generationId: string): Promise<StoryMediaDoc> {
  const image = (await ownGeneratedImages(deps, me.toHexString(), [generationId])).get(generationId);
  if (!image) throw ApiError.notFound("No such generation.");
  const { generationId: sourceId, ...shown } = image;
  return { source: "generation", sourceId, ...shown };
}

/** One of the caller's ready `story` uploads (an image; the bytes proved it), or a 400 naming mediaId. */
async function uploadedMedia(deps: Deps, viewer: Viewer, mediaId: string): Promise<StoryMediaDoc> {
  const media = await requireReadyMedia(deps, viewer.id, mediaId, ["story"], "mediaId");
  return {
    source: "upload",
    sourceId: media._id,
    url: media.url ?? "",
    thumbnailUrl: null,
    width: media.width,
    height: media.height,
    blurhash: null,
  };
}

type Author = Pick<UserDoc, "_id" | "shadowBanned">;

/** Someone whose stories the viewer may see: exists, not blocked either way, not shadow-banned (but to themselves). */
function visibleAuthor(author: Author | null, viewerId: string | undefined, blocked: (id: string) => boolean): boolean {
  if (!author) return false;
  const id = author._id.toHexString();
  if (id === viewerId) return true;
  return !blocked(id) && author.shadowBanned !== true;
}

/** A user's live stories, oldest first (optional sign-in: `seen` per story for a signed-in caller). */
export async function userStories(deps: Deps, viewer: Viewer | undefined, userId: string): Promise<StoryList> {
  const author = new ObjectId(userId);
  const now = deps.clock.now();
  const [user, relations, stories] = await Promise.all([
    deps.db.users.findOne({ _id: author, deletedAt: null }, { projection: { shadowBanned: 1 } }),
    relationsFor(deps, viewer),
    deps.db.stories.find({ userId: author, expiresAt: { $gt: now } }, { sort: { createdAt: 1, _id: 1 } }),
  ]);
  if (!visibleAuthor(user as Author | null, viewer?.id, (id) => relations.blockedWith(id))) {
    throw ApiError.notFound("No such user.");
  }
  const seen = viewer ? await seenBy(deps, viewer.id, stories) : null;
  return { items: stories.map((s) => toStory(s, viewer?.id, seen ? seen.has(s._id.toHexString()) : undefined)) };
}

/** Which of these stories the viewer has viewed (their own always count as seen). */
async function seenBy(deps: Deps, viewerId: string, stories: StoryDoc[]): Promise<Set<string>> {
  const others = stories.filter((s) => s.userId.toHexString() !== viewerId);
  const views = others.length
    ? await deps.db.storyViews.find(
        { viewerId: new ObjectId(viewerId), storyId: { $in: others.map((s) => s._id) } },
        { projection: { storyId: 1 }, limit: others.length },
      )
    : [];
  const seen = new Set(views.map((v) => v.storyId.toHexString()));
  for (const s of stories) if (s.userId.toHexString() === viewerId) seen.add(s._id.toHexString());
  return seen;
}

/**
 * The tray: the caller's own live stories first, then followed people with live stories, those with stories
 * the caller has not seen first, then by their newest story. Blocked and muted people are left out.
 * Waits: follows → (stories, the caller's recent views) in parallel → the authors' profiles.
 */
export async function storyTray(deps: Deps, viewer: Viewer): Promise<StoryTray> {
  const me = new ObjectId(viewer.id);
  const now = deps.clock.now();
  const [relations, follows] = await Promise.all([
    relationsFor(deps, viewer),
    deps.db.follows.find(
      { followerId: me },
      { projection: { followingId: 1 }, sort: { createdAt: -1 }, limit: deps.config.stories.trayMaxFollowing },
    ),
  ]);
  const followed = follows.map((f) => f.followingId).filter((id) => !relations.hides(id.toHexString()));
  const windowStart = new Date(now.getTime() - deps.config.stories.ttlHours * HOUR_MS);
  const [stories, views] = await Promise.all([
    deps.db.stories.find(
      { userId: { $in: [me, ...followed] }, expiresAt: { $gt: now } },
      { sort: { createdAt: 1, _id: 1 } },
    ),
    // Views of the last STORY_TTL_HOURS are the only ones a live story can have.
    deps.db.storyViews.find({ viewerId: me, viewedAt: { $gte: windowStart } }, { projection: { storyId: 1 } }),
  ]);
  const authorIds = [...new Map(stories.map((s) => [s.userId.toHexString(), s.userId])).values()];
  const people = authorIds.length
    ? await deps.db.users.find(
        { _id: { $in: authorIds }, deletedAt: null },
        { projection: { ...PUBLIC_USER_FIELDS, shadowBanned: 1 }, limit: authorIds.length },
      )
    : [];
  const profiles = new Map<string, PublicUser>(
    people
      .filter((p) => visibleAuthor(p as Author, viewer.id, (id) => relations.blockedWith(id)))
      .map((p) => [p._id.toHexString(), toPublicUser(p as UserDoc)]),
  );
  const seen = new Set(views.map((v) => v.storyId.toHexString()));
  const byAuthor = new Map<string, StoryDoc[]>();
  for (const s of stories) {
    const id = s.userId.toHexString();
    if (!profiles.has(id)) continue;
    byAuthor.set(id, [...(byAuthor.get(id) ?? []), s]);
  }
  const items = [...byAuthor.entries()].map(([id, list]) => {
    const own = id === viewer.id;
    const unseen = !own && list.some((s) => !seen.has(s._id.toHexString()));
    return {
      own,
      newest: list.at(-1)?.createdAt.getTime() ?? 0,
      item: {
        user: profiles.get(id) as PublicUser,
        stories: list.map((s) => toStory(s, viewer.id, own || seen.has(s._id.toHexString()))),
        unseen,
      },
    };
  });
  items.sort(
    (a, b) => Number(b.own) - Number(a.own) || Number(b.item.unseen) - Number(a.item.unseen) || b.newest - a.newest,
  );
  return { items: items.map((i) => i.item) };
}

/**
 * Records a view once per viewer: one transaction — the story is live and not blocked for the viewer (a
 * guard), the view (the unique index refuses a second), the count. The owner's own views are not recorded.
 */
export async function viewStory(deps: Deps, viewer: Viewer, storyId: string): Promise<void> {
  const me = new ObjectId(viewer.id);
  const id = new ObjectId(storyId);
  const now = deps.clock.now();
  const relations = await relationsFor(deps, viewer);
  const blocked = relations.blockedIds().map((b) => new ObjectId(b));
  const view: StoryViewDoc = { _id: newObjectId(), storyId: id, viewerId: me, viewedAt: now };
  try {
    await deps.db.batch(
      [
        expectMatch(
          deps.db.stories.inBatch.findOne(
            { _id: id, expiresAt: { $gt: now }, userId: { $nin: [me, ...blocked] } },
            { projection: { _id: 1 } },
          ),
        ),
        deps.db.storyViews.inBatch.insertOne(view),
        deps.db.stories.inBatch.updateOne({ _id: id }, { $inc: { viewCount: 1 } }),
      ],
      { transaction: true },
    );
  } catch (error) {
    if (error instanceof DuplicateKeyError) return; // viewed before: nothing more to count
    if (!(error instanceof PreconditionFailedError)) throw error;
    // Not viewable: the owner's own story (204, not counted) or none the viewer may see (404).
    const own = await deps.db.stories.findOne(
      { _id: id, userId: me, expiresAt: { $gt: now } },
      { projection: { _id: 1 } },
    );
    if (!own) throw noSuchStory();
  }
}

/** The owner's own live story (anyone else's, or an expired one, is a 404). */
async function ownStory(deps: Deps, viewer: Viewer, storyId: string): Promise<StoryDoc> {
  const story = await deps.db.stories.findOne({
    _id: new ObjectId(storyId),
    userId: new ObjectId(viewer.id),
    expiresAt: { $gt: deps.clock.now() },
  });
  if (!story) throw noSuchStory();
  return story;
}

/** Who viewed the owner's story, most recent first, and how many. */
export async function storyViewers(
  deps: Deps,
  viewer: Viewer,
  storyId: string,
  query: { limit: number; cursor?: string | undefined },
): Promise<StoryViewers> {
  const [story, relations] = await Promise.all([ownStory(deps, viewer, storyId), relationsFor(deps, viewer)]);
  const page = await paginate(deps.db.storyViews, {
    filter: { storyId: story._id },
    order: { field: "viewedAt", kind: "date", direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  const ids = page.items.map((v) => v.viewerId).filter((id) => !relations.blockedWith(id.toHexString()));
  const people = ids.length
    ? await deps.db.users.find(
        { _id: { $in: ids }, deletedAt: null },
        { projection: PUBLIC_USER_FIELDS, limit: ids.length },
      )
    : [];
  const profiles = new Map(people.map((p) => [p._id.toHexString(), toPublicUser(p as UserDoc)]));
  return {
    items: page.items.flatMap((v) => {
      const user = profiles.get(v.viewerId.toHexString());
      return user ? [{ user, viewedAt: v.viewedAt.toISOString() }] : [];
    }),
    nextCursor: page.nextCursor,
    viewCount: story.viewCount,
  };
}

/** Deletes the owner's story and its views (a missing or someone else's story is a 404). */
export async function deleteStory(deps: Deps, viewer: Viewer, storyId: string): Promise<void> {
  const id = new ObjectId(storyId);
  try {
    await deps.db.batch([
      expectMatch(deps.db.stories.inBatch.deleteOne({ _id: id, userId: new ObjectId(viewer.id) })),
      deps.db.storyViews.inBatch.deleteMany({ storyId: id }),
    ]);
  } catch (error) {
    if (error instanceof PreconditionFailedError) throw noSuchStory();
    throw error;
  }
}

/**
 * A reply to a story becomes a direct message to its author (in the conversation the two have, started if
 * needed; a request when the author does not follow the replier), carrying the story's id.
 */
export async function replyToStory(
  deps: Deps,
  viewer: Viewer,
  storyId: string,
  body: StoryReplyBody,
  later: Later,
): Promise<{ message: Message; created: boolean }> {
  const reply = {
    clientMessageId: body.clientMessageId ?? `story-reply:${newObjectId().toHexString()}`,
    kind: "text" as const,
    text: body.text,
  };
  // What is wrong with the reply itself is said first, whoever's story it is.
  checkedContent(deps, reply);
  const now = deps.clock.now();
  const [story, relations] = await Promise.all([
    deps.db.stories.findOne({ _id: new ObjectId(storyId), expiresAt: { $gt: now } }, { projection: { userId: 1 } }),
    relationsFor(deps, viewer),
  ]);
  const authorId = story?.userId.toHexString();
  if (!story || !authorId || relations.blockedWith(authorId)) throw noSuchStory();
  if (authorId === viewer.id) throw ApiError.invalidField("id", "you cannot reply to your own story");
  const conversationId = await directConversationWith(deps, viewer, authorId);
  return sendMessage(deps, viewer, conversationId, reply, later, { storyId: story._id });
}
