import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { onCopiesRead, onMemberGone } from "./documents";
import { nextOwner } from "./rules";
import { forgetConversation, stateOf } from "./state";

/**
 * Export and erasure of a person's messaging data (wired into features/privacy by its owner).
 *
 * Export: the conversations they are in (their own role, markers and settings; other members by id only),
 * the messages they sent (never an expired copy: what no endpoint returns is not exported either) and their
 * messaging settings. Messages others sent them are those people's words and are not exported.
 *
 * Erasure (idempotent and restartable: every step is a conditional update that a re-run finds done): their
 * messages keep no text, media, retry key or story link and show as deleted; their unread copies of others'
 * disappearing messages expire (so those can be purged); they leave every conversation (a group's ownership
 * passes on as when an owner leaves); their setting goes.
 */

const PAGE = 500;

export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const me = new ObjectId(userId);
  const user = await deps.db.users.findOne({ _id: me }, { projection: { messaging: 1 } });
  yield { section: "messagingSettings", items: [{ readReceipts: user?.messaging?.readReceipts !== false }] };

  for (let cursor: string | undefined, first = true; first || cursor; first = false) {
    const page = await paginate(deps.db.conversations, {
      filter: { "members.userId": me },
      order: { direction: "asc" },
      limit: PAGE,
      cursor,
    });
    cursor = page.nextCursor ?? undefined;
    if (page.items.length === 0) break;
    yield {
      section: "conversations",
      items: page.items.map((c) => {
        const mine = c.members.find((m) => m.userId.equals(me));
        return {
          id: c._id.toHexString(),
          kind: c.kind,
          title: c.title,
          createdAt: c.createdAt.toISOString(),
          disappearingSeconds: c.disappearingSeconds,
          otherMemberIds: c.members.filter((m) => !m.userId.equals(me)).map((m) => m.userId.toHexString()),
          role: mine?.role ?? null,
          joinedAt: mine?.joinedAt.toISOString() ?? null,
          accepted: mine?.accepted ?? null,
          readUpTo: mine?.readId?.toHexString() ?? null,
          shownReadUpTo: mine?.shownReadId?.toHexString() ?? null,
        };
      }),
    };
  }

  for (let cursor: string | undefined, first = true; first || cursor; first = false) {
    const now = deps.clock.now();
    const page = await paginate(deps.db.messages, {
      filter: {
        senderId: me,
        kind: { $ne: "system" },
        erasedAt: { $exists: false },
        $or: [{ timerSeconds: 0 }, { senderExpiresAt: { $gt: now } }],
      },
      order: { direction: "asc" },
      limit: PAGE,
      cursor,
    });
    cursor = page.nextCursor ?? undefined;
    if (page.items.length === 0) break;
    yield {
      section: "messages",
      items: page.items.map((m) => ({
        id: m._id.toHexString(),
        conversationId: m.conversationId.toHexString(),
        kind: m.kind,
        text: m.deletedAt ? null : m.text,
        mediaUrl: m.deletedAt ? null : (m.media?.url ?? null),
        storyId: m.storyId?.toHexString() ?? null,
        createdAt: m.createdAt.toISOString(),
        editedAt: m.editedAt?.toISOString() ?? null,
        deletedAt: m.deletedAt?.toISOString() ?? null,
        timerSeconds: m.timerSeconds,
        expiresAt: m.senderExpiresAt?.toISOString() ?? null,
      })),
    };
  }
}

export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  const me = new ObjectId(userId);
  const now = deps.clock.now();

  // Their messages: nothing of what they said stays.
  await inBatches(deps, "messages", { senderId: me, erasedAt: { $exists: false } }, (ids) =>
    deps.db.messages.updateMany({ _id: { $in: ids }, erasedAt: { $exists: false } }, [
      {
        $set: {
          text: null,
          media: null,
          clientMessageId: null,
          storyId: null,
          erasedAt: { $literal: now },
          deletedAt: { $ifNull: ["$deletedAt", { $literal: now }] },
        },
      },
    ]),
  );

  // Their unread copies of others' disappearing messages expire, so the messages can be purged.
  await inBatches(deps, "messages", { recipientIds: me, "reads.userId": { $ne: me } }, (ids) =>
    deps.db.messages.updateMany({ _id: { $in: ids }, "reads.userId": { $ne: me } }, onCopiesRead(me, now, true)),
  );

  // They leave every conversation; a guarded update per conversation (a changed one is picked up again).
  for (let round = 0; round < 1_000; round++) {
    const docs = await deps.db.conversations.find({ "members.userId": me }, { limit: 100 });
    if (docs.length === 0) break;
    for (const doc of docs) {
      const state = stateOf(doc);
      const heir =
        doc.members.find((m) => m.userId.equals(me))?.role === "owner" ? nextOwner(state.members, userId) : undefined;
      await deps.db.conversations.updateOne(
        { _id: doc._id, version: doc.version },
        onMemberGone(me, heir ? new ObjectId(heir.userId) : null, now),
      );
      await forgetConversation(deps, state.id);
    }
  }

  await deps.db.users.updateOne({ _id: me }, { $unset: { messaging: "" } });
}

/** Applies `work` to the ids matching `filter`, a page at a time, until none match (so a re-run resumes). */
async function inBatches(
  deps: Deps,
  collection: "messages",
  filter: Filter,
  work: (ids: ObjectId[]) => Promise<unknown>,
): Promise<void> {
  for (let round = 0; round < 10_000; round++) {
    const page = await deps.db[collection].find(filter, { projection: { _id: 1 }, sort: { _id: 1 }, limit: PAGE });
    if (page.length === 0) return;
    await work(page.map((d) => d._id));
    if (page.length < PAGE) return;
  }
}
