import type { StreamDoc, StreamStatus, UserDoc } from "../../db";
import { decodeCursorFields, encodeCursorFields, InvalidCursorError } from "../../platform/mongo/paginate";
import { isBanned } from "../users/schema";

/**
 * The pure rules of live streams: how a stream moves between states, who may see it, how the live directory
 * ranks and pages, and when a live stream counts as abandoned. No store calls here (unit-tested in test/unit).
 */

export type StreamAction = "start" | "end" | "cancel";

/** What an action does from a status: the next status (the same one: nothing to do), or why it cannot. */
export type Transition = { to: StreamStatus; changes: boolean } | { refused: "stream_over" | "not_live" | "is_live" };

/**
 * scheduled → live (start) → ended (end); scheduled → cancelled (cancel). Repeating the move that got a stream
 * where it is changes nothing (a retried tap); ended and cancelled are final.
 */
export function transition(status: StreamStatus, action: StreamAction): Transition {
  switch (action) {
    case "start":
      if (status === "scheduled") return { to: "live", changes: true };
      if (status === "live") return { to: "live", changes: false };
      return { refused: "stream_over" };
    case "end":
      if (status === "live") return { to: "ended", changes: true };
      if (status === "ended") return { to: "ended", changes: false };
      return status === "scheduled" ? { refused: "not_live" } : { refused: "stream_over" };
    case "cancel":
      if (status === "scheduled") return { to: "cancelled", changes: true };
      if (status === "cancelled") return { to: "cancelled", changes: false };
      return status === "live" ? { refused: "is_live" } : { refused: "stream_over" };
  }
}

export type Streamer = Pick<UserDoc, "_id" | "deletedAt" | "bannedAt" | "banExpiresAt" | "shadowBanned" | "erasedAt">;

/** Whether others may see a streamer's streams at all: not deleted, erased, banned or shadow-banned. */
export function streamerVisible(streamer: Streamer | undefined, now: Date): boolean {
  if (!streamer || streamer.deletedAt || streamer.erasedAt || streamer.shadowBanned) return false;
  return !isBanned(streamer, now);
}

/**
 * Who may see a stream: its streamer always; anyone else only while the streamer is visible, neither blocks the
 * other, and the stream was not cancelled (a cancelled stream is its streamer's business). A stream nobody may
 * see is the same 404 as a missing one.
 */
export function canSeeStream(s: {
  stream: Pick<StreamDoc, "userId" | "status">;
  streamer: Streamer | undefined;
  viewerId: string | undefined;
  blockedWith: (userId: string) => boolean;
  now: Date;
}): boolean {
  const streamerId = s.stream.userId.toHexString();
  if (s.viewerId === streamerId) return true;
  if (!streamerVisible(s.streamer, s.now)) return false;
  if (s.viewerId && s.blockedWith(streamerId)) return false;
  return s.stream.status !== "cancelled";
}

export type ViewerRole = "streamer" | "cohost" | "moderator" | "viewer";

/** The caller's place in a stream. */
export function viewerRole(
  stream: Pick<StreamDoc, "userId" | "participants" | "moderators">,
  viewerId: string,
): ViewerRole {
  if (stream.userId.toHexString() === viewerId) return "streamer";
  if (stream.participants.some((p) => p.state === "accepted" && p.userId.toHexString() === viewerId)) return "cohost";
  if (stream.moderators.some((m) => m.userId.toHexString() === viewerId)) return "moderator";
  return "viewer";
}

/** Where a live stream stands in the directory: more current viewers first, then the most recently started. */
export interface LivePosition {
  viewers: number;
  startedAt: number;
  id: string;
}

/** Negative when `a` comes first. */
export function compareLive(a: LivePosition, b: LivePosition): number {
  if (a.viewers !== b.viewers) return b.viewers - a.viewers;
  if (a.startedAt !== b.startedAt) return b.startedAt - a.startedAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** The directory after `cursor` (strictly), in order; the counts move between pages, so positions are kept as seen. */
export function pageLive<T extends { position: LivePosition }>(
  ranked: T[],
  limit: number,
  cursor: LivePosition | null,
): { items: T[]; next: LivePosition | null } {
  const sorted = [...ranked].sort((a, b) => compareLive(a.position, b.position));
  const rest = cursor ? sorted.filter((e) => compareLive(e.position, cursor) > 0) : sorted;
  const items = rest.slice(0, limit);
  const last = items.at(-1);
  return { items, next: rest.length > limit && last ? last.position : null };
}

export function encodeLiveCursor(p: LivePosition): string {
  return encodeCursorFields({ v: p.viewers, s: p.startedAt, id: p.id });
}

/** A cursor this API issued, or InvalidCursorError (a 400 naming `cursor`). */
export function decodeLiveCursor(cursor: string): LivePosition {
  const { v, s, id, ...rest } = decodeCursorFields(cursor);
  const count = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (Object.keys(rest).length > 0 || !count(v) || !count(s)) throw new InvalidCursorError();
  if (typeof id !== "string" || !/^[0-9a-f]{24}$/.test(id)) throw new InvalidCursorError();
  return { viewers: v as number, startedAt: s as number, id };
}

/**
 * A live stream is abandoned when its hosts have not heartbeat for `abandonAfterMs` (counting from the start
 * when they never did) and the provider does not see the encoder sending either (`encoderConnected`).
 */
export function isAbandoned(s: {
  startedAt: Date | null;
  hostSeenAt: number;
  now: Date;
  abandonAfterMs: number;
  encoderConnected?: boolean;
}): boolean {
  if (s.encoderConnected) return false;
  const lastSign = Math.max(s.hostSeenAt, s.startedAt?.getTime() ?? 0);
  return s.now.getTime() - lastSign > s.abandonAfterMs;
}

/** Tags as stored: trimmed, lower-case (the schema does both), without repeats, in the order given. */
export function normalizedTags(tags: readonly string[] | undefined): string[] {
  return [...new Set(tags ?? [])];
}
