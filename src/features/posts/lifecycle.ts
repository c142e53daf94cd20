import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { PostDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, type ObjectId } from "../../platform/ids";
import type { BulkOperation } from "../../platform/mongo/client";
import { deleteKeys, runOps, seedCounter } from "../../platform/redis-ops";
import { utcDay } from "../../platform/time";
import { rankedEngagementOf, scoresOf } from "../ranking/scores";
import { validateReferral } from "../referrals/service";
import { screen } from "../screening/rules";
import {
  countsInProfile,
  freeSlots,
  isFirstPublication,
  type LifecycleState,
  lifecycleStateOf,
  pickSlot,
  publishAtProblem,
} from "./transitions";

/**
 * The store side of the lifecycle (transitions.ts has the rules): the fields each move writes, the limits on
 * scheduled posts, and what a move owes afterwards. Every move is one conditional update on the post's
 * current state, so of two racing moves one wins and the other sees the new state; only the winner applies
 * what the move owes (a request writes the author's count in the same batch as the move).
 *
 * Publishing is the moment a post enters feeds and counts: its first publication makes it new (its
 * `createdAt`, feed position and scores start then, as Mastodon's scheduled statuses do), screens it with the
 * current rules (a hold makes it `pending_review`), counts it in the author's `totalPosts`, validates the
 * author's referral, drops the cached feed pages and marks it for the tag counts and for its followers'
 * notifications (announce.ts: right after the answer, and by the `publish-scheduled` job, once the post is
 * visible).
 */

/** A scheduled post's slots in its author's limits (see PostDoc.scheduleSlot). */
export interface ScheduleSlots {
  scheduleSlot: number;
  scheduleDay: string;
  scheduleDaySlot: number;
}

/** What a post that is not scheduled holds in place of a schedule. */
export const UNSCHEDULED = { publishAt: null, scheduleSlot: null, scheduleDay: null, scheduleDaySlot: null } as const;

/** How often a schedule is retried when a concurrent request took the slot it picked. */
const SLOT_ATTEMPTS = 6;

/** A 400 naming `publishAt` unless it lies in the allowed window from now. */
export function checkPublishAt(deps: Deps, publishAt: Date): void {
  const problem = publishAtProblem(publishAt, deps.clock.now(), deps.config.scheduling);
  if (problem) throw ApiError.invalidField("publishAt", problem);
}

/**
 * Free slots for one more scheduled post of `userId` on `publishAt`'s UTC day (one read of the author's other
 * scheduled posts), or a 409 when either limit is full.
 */
async function freeScheduleSlots(
  deps: Deps,
  userId: ObjectId,
  publishAt: Date,
  postId: ObjectId,
): Promise<ScheduleSlots> {
  const { maxPerUser, maxPerDay } = deps.config.scheduling;
  const held = await deps.db.posts.find(
    { userId, scheduleSlot: { $type: "number" }, _id: { $ne: postId } },
    { projection: { scheduleSlot: 1, scheduleDay: 1, scheduleDaySlot: 1 }, limit: 10_000 },
  );
  const total =
    held.length < maxPerUser
      ? pickSlot(
          freeSlots(
            held.map((p) => p.scheduleSlot ?? -1),
            maxPerUser,
          ),
        )
      : null;
  if (total === null) {
    throw ApiError.conflict("schedule_limit", `At most ${maxPerUser} posts can be scheduled at once.`);
  }
  const day = utcDay(publishAt);
  const sameDay = held.filter((p) => p.scheduleDay === day);
  const daily =
    sameDay.length < maxPerDay
      ? pickSlot(
          freeSlots(
            sameDay.map((p) => p.scheduleDaySlot ?? -1),
            maxPerDay,
          ),
        )
      : null;
  if (daily === null) {
    throw ApiError.conflict("schedule_daily_limit", `At most ${maxPerDay} posts can be scheduled for ${day} (UTC).`);
  }
  return { scheduleSlot: total, scheduleDay: day, scheduleDaySlot: daily };
}

/** What `write` answers when a unique index refused the slots it was given. */
export const SLOT_TAKEN = Symbol("slot taken");

/**
 * Schedules with free slots: `write` stores the post with them and answers SLOT_TAKEN when the index refused
 * one (a concurrent schedule took it), and then it runs again with slots read afresh.
 */
export async function withScheduleSlots<T>(
  deps: Deps,
  post: { userId: ObjectId; _id: ObjectId },
  publishAt: Date,
  write: (fields: ScheduleSlots & { status: "scheduled"; publishAt: Date }) => Promise<T | typeof SLOT_TAKEN>,
): Promise<T> {
  for (let attempt = 0; attempt < SLOT_ATTEMPTS; attempt++) {
    const slots = await freeScheduleSlots(deps, post.userId, publishAt, post._id);
    const written = await write({ status: "scheduled", publishAt, ...slots });
    if (written !== SLOT_TAKEN) return written;
  }
  throw ApiError.conflict("schedule_contended", "Many posts are being scheduled at once; try again.");
}

/**
 * The fields a post takes on its first publication: it becomes new (feed time and scores from now), is
 * screened with the rules of now, and owes its tag counts and its followers' notifications.
 */
export function firstPublicationFields(deps: Deps, post: PostDoc, now: Date): Partial<PostDoc> {
  const screening = screen({ text: post.prompt, nsfwScore: post.nsfwScore }, deps.config.posts, now);
  // A moderator's own decision on the post is kept; the automatic screening is redone with today's rules.
  const moderation =
    post.moderationReviewedBy && post.moderationReviewedBy !== "auto"
      ? {}
      : { moderationStatus: screening.status, moderationHold: screening.hold };
  return {
    status: "published",
    ...UNSCHEDULED,
    publishedAt: now,
    createdAt: now,
    updatedAt: now,
    ...scoresOf(rankedEngagementOf(post), now, now, deps.config.ranking),
    ...moderation,
    tagsDirty: newObjectId(),
    fanout: { since: now, after: null },
  };
}

/** The fields of a move that is not a first publication. */
export function moveFields(to: LifecycleState, now: Date): Partial<PostDoc> {
  switch (to) {
    case "draft":
      return { status: "draft", ...UNSCHEDULED, updatedAt: now };
    case "archived":
      // Out of the profile too: an archived post gives up its pin.
      return { status: "archived", isPinned: false, pinnedAt: null, updatedAt: now, tagsDirty: newObjectId() };
    case "published":
      // A restore: the post comes back where it was, counted again.
      return { status: "published", updatedAt: now, tagsDirty: newObjectId() };
    default:
      throw new Error(`no plain fields for a move to ${to}`);
  }
}

/** A move a request or the job made, with the post as it is after it. */
export interface Moved {
  from: LifecycleState;
  post: PostDoc;
  /** The author's account was referred (their first publication may validate the referral). */
  referred?: boolean;
  /** The author's `totalPosts` (and pins) already moved in the move's own write. */
  counted?: boolean;
}

/** How a move changes its author's profile: `totalPosts` (published and held posts count), and a pin given up. */
export function profileChange(from: LifecycleState, to: LifecycleState): { delta: number; unpin: boolean } {
  return { delta: Number(countsInProfile(to)) - Number(countsInProfile(from)), unpin: to === "archived" };
}

/** The author's update for one move (null when it changes nothing there), to write with the move itself. */
export function authorUpdate(
  from: LifecycleState,
  to: LifecycleState,
  postId: ObjectId,
): Record<string, unknown> | null {
  const { delta, unpin } = profileChange(from, to);
  const update: Record<string, unknown> = {};
  if (delta !== 0) update.$inc = { totalPosts: delta };
  if (unpin) update.$pull = { pinnedPostIds: postId };
  return Object.keys(update).length ? update : null;
}

/** A move that published a draft or a scheduled post: its first publication. */
function publishedFirst(move: Moved): boolean {
  return isFirstPublication(move.from) && countsInProfile(lifecycleStateOf(move.post));
}

/**
 * What moves owe once made, as a request applies it: a store outage is logged, never thrown, because the move
 * itself stands (and says so).
 */
export async function afterMoves(deps: Deps, moves: Moved[]): Promise<void> {
  await bestEffort(deps, "what a post move owes", () => applyMoves(deps, moves));
}

/**
 * What moves owe once made, for any number of posts (the job's batch): the authors' `totalPosts` (and pins
 * given up) in one MongoDB write, the cached feed pages, post copies and authors' `GET /v1/me` in one Redis
 * round trip (which also starts new posts' live vote counters), in parallel; then referrals of first
 * publications. Throws when the count could not be written (the job then leaves its mark for the next run); a
 * cache or referral outage is only logged.
 */
export async function applyMoves(deps: Deps, moves: Moved[]): Promise<void> {
  if (moves.length === 0) return;
  const byAuthor = new Map<string, { id: ObjectId; delta: number; unpinned: ObjectId[] }>();
  const authors = new Set<string>();
  let feeds = false;
  for (const { from, post, counted } of moves) {
    const change = profileChange(from, lifecycleStateOf(post));
    feeds ||= change.delta !== 0;
    if (change.delta === 0 && !change.unpin) continue;
    const key = post.userId.toHexString();
    authors.add(key);
    if (counted) continue;
    const entry = byAuthor.get(key) ?? { id: post.userId, delta: 0, unpinned: [] };
    entry.delta += change.delta;
    if (change.unpin) entry.unpinned.push(post._id);
    byAuthor.set(key, entry);
  }
  const ops = [...byAuthor.values()].flatMap(({ id, delta, unpinned }): BulkOperation<UserDoc>[] => {
    const update: Record<string, unknown> = {};
    if (delta !== 0) update.$inc = { totalPosts: delta };
    if (unpinned.length) update.$pull = { pinnedPostIds: { $in: unpinned } };
    return Object.keys(update).length ? [{ updateOne: { filter: { _id: id }, update } }] : [];
  });
  const keys = [
    ...(feeds ? deps.keys.publicFeedFirstPages() : []),
    ...moves.map((m) => deps.keys.postDoc(m.post._id.toHexString())),
    ...[...authors].map((id) => deps.keys.selfView(id)),
  ];
  // A new post's live vote counter starts at 0, so its first votes, however many at once, only increment it.
  const fresh = moves.filter(publishedFirst);
  const only = ops.length === 1 ? ops[0] : undefined;
  await Promise.all([
    only && "updateOne" in only
      ? deps.db.users.updateOne(only.updateOne.filter, only.updateOne.update)
      : ops.length
        ? deps.db.users.bulkWrite(ops, { ordered: false })
        : null,
    // Stale copies expire on their own (POST_CACHE_TTL_SECONDS, the feeds' TTLs).
    bestEffort(deps, "post move cache drop", () =>
      runOps(deps.redis, {
        stale: deleteKeys(keys),
        ...Object.fromEntries(
          fresh.map((m) => {
            const key = deps.keys.postVotes(m.post._id.toHexString());
            return [`votes:${key}`, seedCounter(key, 0, deps.config.votes.counterTtlSeconds)];
          }),
        ),
      }),
    ),
  ]);
  // Without Redis a referral stays pending; the referred user's next trigger (a later check-in) validates it.
  const referred = fresh.filter((m) => m.referred);
  await Promise.all(
    referred.map((m) =>
      bestEffort(deps, "referral validation", () => validateReferral(deps, m.post.userId, "first_post")),
    ),
  );
}
