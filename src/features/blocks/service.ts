import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { PageQuery } from "../../core/schemas";
import type { Viewer } from "../../core/viewer";
import type { RelationKind } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { severFollows } from "../follows/service";
import { forgetInbox } from "../notifications/service";
import { forgetRelations, mirrorRelation, relationsFor } from "../relations/service";
import { type PublicUserPage, toPublicUser } from "../users/schema";

/**
 * Blocks and mutes (core/relations.ts says what each does). Both are idempotent PUT/DELETE: the unique
 * (user, target, kind) index decides a race. Both people's cached relations are dropped before the write (in
 * parallel with the reads it needs, so it costs no wait of its own when blocking): without Redis the change is
 * a 503 and nothing is written; once written it answers 204 even if the mirror after it fails.
 */
export async function setRelation(
  deps: Deps,
  viewer: Viewer,
  targetId: string,
  kind: RelationKind,
  on: boolean,
): Promise<void> {
  if (viewer.id === targetId) throw ApiError.invalidField("id", `you cannot ${kind} yourself`);
  const me = new ObjectId(viewer.id);
  const target = new ObjectId(targetId);
  if (on) {
    const [exists, relations] = await Promise.all([
      deps.db.users.findOne({ _id: target, deletedAt: null }, { projection: { _id: 1 } }),
      relationsFor(deps, viewer),
      forgetRelations(deps, { userId: viewer.id, targetId }),
    ]);
    if (!exists) throw ApiError.notFound("No such user.");
    const already = kind === "block" ? relations.isBlocking(targetId) : relations.isMuting(targetId);
    if (!already && relations.chosenCount() >= deps.config.relations.maxPerUser) {
      throw ApiError.conflict("relation_limit", "You block or mute as many people as an account can; undo some first.");
    }
    const created = await deps.db.blocks.insertUnique({
      _id: newObjectId(),
      userId: me,
      targetId: target,
      kind,
      createdAt: deps.clock.now(),
    });
    await bestEffort(deps, "relations mirror", () =>
      mirrorRelation(deps, { userId: viewer.id, targetId, kind, on: true }),
    );
    if (created && kind === "block") await separate(deps, me, target);
    if (created && kind === "mute") await quiet(deps, me, target);
    return;
  }
  await forgetRelations(deps, { userId: viewer.id, targetId });
  await deps.db.blocks.deleteOne({ userId: me, targetId: target, kind });
  await bestEffort(deps, "relations mirror", () =>
    mirrorRelation(deps, { userId: viewer.id, targetId, kind, on: false }),
  );
}

/**
 * What a new block undoes at once: the follows between the two (counters exact) and the notifications either
 * got from the other alone; the other's face leaves groups the two shared.
 */
async function separate(deps: Deps, a: ObjectId, b: ObjectId): Promise<void> {
  const onlyFrom = (recipient: ObjectId, actor: ObjectId) => ({
    userId: recipient,
    "actorIds.0": actor,
    "actorIds.1": { $exists: false },
  });
  await Promise.all([
    severFollows(deps, a, b),
    deps.db.notifications.deleteMany({ $or: [onlyFrom(a, b), onlyFrom(b, a)] }),
    deps.db.notifications.updateMany(
      {
        $or: [
          { userId: a, sampleActors: b },
          { userId: b, sampleActors: a },
        ],
      },
      { $pull: { sampleActors: { $in: [a, b] } } },
    ),
  ]);
  await forgetInbox(deps, [a, b]);
}

/**
 * What a new mute settles at once: the muter's unread notifications that only the muted person caused (news
 * from before the mute, e.g. a post announced to followers) are marked read, since the inbox no longer shows
 * them, so the unread count agrees with the list. They stay, and show again if the mute is undone.
 */
async function quiet(deps: Deps, muter: ObjectId, muted: ObjectId): Promise<void> {
  await deps.db.notifications.updateMany(
    { userId: muter, read: false, "actorIds.0": muted, "actorIds.1": { $exists: false } },
    { $set: { read: true, readAt: deps.clock.now() } },
  );
  await forgetInbox(deps, [muter]);
}

/** The people the viewer blocks or mutes, most recent first. */
export async function listRelations(
  deps: Deps,
  viewer: Viewer,
  kind: RelationKind,
  query: PageQuery,
): Promise<PublicUserPage> {
  const page = await paginate(deps.db.blocks, {
    filter: { userId: new ObjectId(viewer.id), kind },
    order: { direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  const people = page.items.length
    ? await deps.db.users.find(
        { _id: { $in: page.items.map((b) => b.targetId) }, deletedAt: null },
        { limit: page.items.length },
      )
    : [];
  const byId = new Map(people.map((p) => [p._id.toHexString(), p]));
  const items = page.items.flatMap((b) => {
    const person = byId.get(b.targetId.toHexString());
    return person ? [toPublicUser(person)] : [];
  });
  return { items, nextCursor: page.nextCursor };
}
