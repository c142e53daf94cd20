import type { StreamDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import type { ObjectId } from "../../platform/ids";
import type { StreamAudience, StreamAudienceKeys } from "../../platform/redis-ops";
import { PUBLIC_USER_FIELDS } from "../messaging/views";
import { toPublicUser } from "../users/schema";
import { viewerRole } from "./rules";
import type { Stream } from "./schema";

/** What a stream view needs of a person: their public profile and whether others may still see them. */
export const PERSON_FIELDS = {
  ...PUBLIC_USER_FIELDS,
  deletedAt: 1,
  erasedAt: 1,
  bannedAt: 1,
  banExpiresAt: 1,
  shadowBanned: 1,
} as const;

export type People = Map<string, UserDoc>;

/** The streamers and co-hosts of these streams (and anyone else named), in one read. */
export async function peopleOf(deps: Deps, streams: StreamDoc[], others: ObjectId[] = []): Promise<People> {
  const ids = new Map<string, ObjectId>(others.map((id) => [id.toHexString(), id]));
  for (const s of streams) {
    ids.set(s.userId.toHexString(), s.userId);
    for (const p of s.participants) ids.set(p.userId.toHexString(), p.userId);
  }
  if (ids.size === 0) return new Map();
  const docs = await deps.db.users.find(
    { _id: { $in: [...ids.values()] } },
    { projection: PERSON_FIELDS, limit: ids.size },
  );
  return new Map(docs.map((u) => [u._id.toHexString(), u]));
}

export function audienceKeysOf(deps: Deps, streamId: string): StreamAudienceKeys {
  return {
    live: deps.keys.streamLive(streamId),
    viewers: deps.keys.streamViewers(streamId),
    uniques: deps.keys.streamUniqueViewers(streamId),
  };
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * A stream as `viewerId` sees it. While live its viewer numbers are Redis's (`audience`); once over, the numbers
 * frozen into the document. Invitations show only to the streamer and the invitee; the playback URL only until
 * the stream is over; `ingest` is the caller's to add, for the streamer only.
 */
export function toStream(
  doc: StreamDoc,
  people: People,
  audience: StreamAudience | null,
  viewerId: string | undefined,
): Stream {
  const streamerId = doc.userId.toHexString();
  const streamer = people.get(streamerId);
  const live = doc.status === "live";
  const counts = live && audience?.live ? audience : null;
  return {
    id: doc._id.toHexString(),
    userId: streamerId,
    user: streamer ? toPublicUser(streamer) : ghost(doc.userId, doc.createdAt),
    title: doc.title,
    description: doc.description,
    category: doc.category,
    tags: doc.tags,
    status: doc.status,
    playbackUrl: live || doc.status === "scheduled" ? doc.video.playbackUrl : null,
    thumbnailUrl: doc.thumbnailUrl,
    viewerCount: counts?.current ?? 0,
    peakViewers: Math.max(doc.peakViewers, counts?.peak ?? 0),
    uniqueViewers: Math.max(doc.uniqueViewers, counts?.unique ?? 0),
    giftTotal: doc.giftTotal,
    giftCount: doc.giftCount,
    startedAt: iso(doc.startedAt),
    endedAt: iso(doc.endedAt),
    scheduledFor: iso(doc.scheduledFor),
    cancelledAt: iso(doc.cancelledAt),
    endReason: doc.endReason,
    conversationId: doc.conversationId.toHexString(),
    participants: doc.participants.flatMap((p) => {
      const id = p.userId.toHexString();
      const person = people.get(id);
      const shown = p.state === "accepted" || viewerId === streamerId || viewerId === id;
      if (!shown || !person || person.deletedAt) return [];
      return [
        {
          user: toPublicUser(person),
          state: p.state,
          invitedAt: p.invitedAt.toISOString(),
          acceptedAt: iso(p.acceptedAt),
        },
      ];
    }),
    createdAt: doc.createdAt.toISOString(),
    ...(viewerId ? { viewer: { role: viewerRole(doc, viewerId) } } : {}),
  };
}

/** A streamer whose account is gone (erasure runs later than deletion): no name, no profile. */
function ghost(id: ObjectId, createdAt: Date): Stream["user"] {
  return {
    id: id.toHexString(),
    username: "",
    displayName: "",
    avatarUrl: null,
    bio: "",
    profileTheme: null,
    tier: "free",
    followersCount: 0,
    followingCount: 0,
    totalPosts: 0,
    createdAt: createdAt.toISOString(),
  };
}
