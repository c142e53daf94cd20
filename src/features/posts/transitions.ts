import type { ModerationStatus, PostStatus } from "../../db";

/**
 * A post's lifecycle as its author and the API see it (seed 004): the four stored states plus `pending_review`,
 * which is a published post moderation holds (screened at publication, or flagged by reports) until a
 * moderator decides. Pure rules, no stores: lifecycle.ts applies them.
 */
export const LIFECYCLE_STATES = ["draft", "scheduled", "published", "archived", "pending_review"] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/**
 * The moves an author may ask for (`PATCH /v1/posts/{id}` `status`), from each state. Moderation makes the
 * others: a hold turns `published` into `pending_review` and approval turns it back; nobody asks for them.
 * Scheduled → scheduled is a reschedule (a new `publishAt`).
 */
export const AUTHOR_MOVES: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  draft: ["published", "scheduled"],
  scheduled: ["draft", "published", "scheduled"],
  published: ["archived"],
  archived: ["published"],
  pending_review: ["archived"],
};

/** What asking to go from `from` to `to` means: nothing to do, a move, or a move the table refuses. */
export type MoveVerdict = "stay" | "move" | "refused";

export function moveVerdict(from: LifecycleState, to: LifecycleState): MoveVerdict {
  if (AUTHOR_MOVES[from].includes(to)) return "move";
  // Asking for the state a post is already in changes nothing (a retried request succeeds).
  return from === to ? "stay" : "refused";
}

/** The state a post is in: a published post that moderation holds is `pending_review`. */
export function lifecycleStateOf(post: {
  status?: PostStatus | null;
  moderationStatus: ModerationStatus;
}): LifecycleState {
  const status = post.status ?? "published";
  if (status !== "published") return status;
  return post.moderationStatus === "pending" || post.moderationStatus === "flagged" ? "pending_review" : "published";
}

/** Whether entering `published` from here is the post's first publication (it enters feeds as new). */
export function isFirstPublication(from: LifecycleState): boolean {
  return from === "draft" || from === "scheduled";
}

/** Whether the state counts in the author's `totalPosts` (a held post does, as it always has). */
export function countsInProfile(state: LifecycleState): boolean {
  return state === "published" || state === "pending_review";
}

export interface PublishWindow {
  minLeadSeconds: number;
  maxLeadDays: number;
}

/** Why `publishAt` cannot be used now (or null): it must be at least the minimum lead and at most the maximum ahead. */
export function publishAtProblem(publishAt: Date, now: Date, window: PublishWindow): string | null {
  const lead = publishAt.getTime() - now.getTime();
  if (lead < window.minLeadSeconds * 1_000) {
    return `must be at least ${Math.ceil(window.minLeadSeconds / 60)} minutes ahead`;
  }
  if (lead > window.maxLeadDays * 86_400_000) return `must be at most ${window.maxLeadDays} days ahead`;
  return null;
}

/** The slots below `max` nobody holds, in order. */
export function freeSlots(held: Iterable<number>, max: number): number[] {
  const taken = new Set(held);
  const free: number[] = [];
  for (let slot = 0; slot < max; slot++) if (!taken.has(slot)) free.push(slot);
  return free;
}

/**
 * One free slot, picked at random so that concurrent requests mostly pick different ones (a collision is
 * refused by the unique index and retried); null when none is free.
 */
export function pickSlot(free: readonly number[], random: () => number = Math.random): number | null {
  if (free.length === 0) return null;
  return free[Math.min(free.length - 1, Math.floor(random() * free.length))] ?? null;
}
