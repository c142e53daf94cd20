import { bestEffort } from "../../core/best-effort";
import { Relations, relationMember } from "../../core/relations";
import type { Viewer } from "../../core/viewer";
import type { BlockDoc, RelationKind } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import {
  batchOn,
  type CacheRead,
  changeGuardedSet,
  fillGuardedSet,
  forgetGuardedSet,
  type GuardedSet,
  type RedisOp,
  readGuardedSet,
  readOrMiss,
  runOp,
  runOps,
} from "../../platform/redis-ops";

/**
 * Each user's blocks and mutes (core/relations.ts), cached in Redis as one set, `relations:{userId}`, and read
 * alongside the rate limit on authenticated requests (or in a cached read's first batch), so checking them costs
 * no round trip of its own. `blocks` in MongoDB is the truth: a missing set is rebuilt from it, and a change
 * moves the set's generation counter first, so a rebuild that raced a change is discarded, never cached stale.
 * When Redis cannot be reached the relations come from MongoDB (a read that misses).
 */

/** The Redis read of a user's relations, to run in a batch with other reads. */
export function relationsRead(deps: Deps, userId: string): CacheRead<GuardedSet> {
  return readGuardedSet(deps.keys.relations(userId), deps.keys.relationsGeneration(userId));
}

/** Relations from a batch's read, rebuilt from MongoDB (one read) when they were not cached. */
export async function relationsFrom(deps: Deps, userId: string, read: GuardedSet): Promise<Relations> {
  if (read.members) return Relations.fromMembers(read.members);
  const me = new ObjectId(userId);
  const docs = await deps.db.blocks.find(
    { $or: [{ userId: me }, { targetId: me, kind: "block" }] },
    { projection: { userId: 1, targetId: 1, kind: 1 }, limit: deps.config.relations.maxPerUser * 4 },
  );
  const members = docs.map((d) => memberFor(d, me));
  await bestEffort(deps, "relations cache fill", () =>
    runOp(
      deps.redis,
      fillGuardedSet(
        deps.keys.relations(userId),
        deps.keys.relationsGeneration(userId),
        read.generation,
        members,
        deps.config.relations.cacheTtlSeconds,
      ),
    ),
  );
  return Relations.fromMembers(members);
}

function memberFor(doc: Pick<BlockDoc, "userId" | "targetId" | "kind">, me: ObjectId): string {
  if (!doc.userId.equals(me)) return relationMember.blockedBy(doc.userId.toHexString());
  const other = doc.targetId.toHexString();
  return doc.kind === "block" ? relationMember.blocking(other) : relationMember.muting(other);
}

/** The viewer's relations: as read with the rate limit when they were, else read now (and kept on the viewer). */
export async function relationsFor(deps: Deps, viewer: Viewer | undefined): Promise<Relations> {
  if (!viewer) return Relations.none;
  if (!viewer.relations) {
    const read =
      viewer.relationsMissAt !== undefined
        ? { members: null, generation: viewer.relationsMissAt }
        : (await readOrMiss(batchOn(deps.redis), { read: relationsRead(deps, viewer.id) }, deps.log)).read;
    viewer.relations = await relationsFrom(deps, viewer.id, read);
  }
  return viewer.relations;
}

/** Several users' relations in one pipeline (plus one MongoDB read per user whose set was not cached). */
export async function relationsOfMany(deps: Deps, userIds: string[]): Promise<Map<string, Relations>> {
  const unique = [...new Set(userIds)];
  if (unique.length === 0) return new Map();
  const reads = await readOrMiss(
    batchOn(deps.redis),
    Object.fromEntries(unique.map((id) => [id, relationsRead(deps, id)])),
    deps.log,
  );
  const entries = await Promise.all(
    unique.map(async (id) => [id, await relationsFrom(deps, id, reads[id] as GuardedSet)] as const),
  );
  return new Map(entries);
}

/**
 * Caches a user's relations ahead of need (sign-in), so their first requests find them. Best effort: a failure
 * leaves the set to be rebuilt when first needed.
 */
export async function warmRelations(deps: Deps, userId: string): Promise<void> {
  await bestEffort(deps, "relations warm-up", async () => {
    const read = await runOp(deps.redis, relationsRead(deps, userId));
    if (!read.members) await relationsFrom(deps, userId, read);
  });
}

/**
 * Caches the relations of an account just made, with no read: it has none yet. Its change counter was never
 * moved (a fresh id), so the fill is guarded on "0": a block or mute since the account existed moved the
 * counter first (forgetRelations) and then this fill is refused, as any rebuild that raced a change. Best effort.
 */
export async function warmNewAccountRelations(deps: Deps, userId: string): Promise<void> {
  await bestEffort(deps, "relations warm-up", () =>
    runOp(
      deps.redis,
      fillGuardedSet(
        deps.keys.relations(userId),
        deps.keys.relationsGeneration(userId),
        "0",
        [],
        deps.config.relations.cacheTtlSeconds,
      ),
    ),
  );
}

/**
 * Drops both people's cached sets before a relation changes in MongoDB, so the change can never sit behind a
 * stale cache (they live a day): when Redis cannot do it, the change is refused (503) before anything is
 * written. The mirror after the write then only keeps out a rebuild that raced it, and is best effort.
 */
export async function forgetRelations(deps: Deps, change: { userId: string; targetId: string }): Promise<void> {
  const ttl = deps.config.relations.cacheTtlSeconds + 86_400;
  const { keys } = deps;
  await runOps(deps.redis, {
    mine: forgetGuardedSet(keys.relations(change.userId), keys.relationsGeneration(change.userId), ttl),
    theirs: forgetGuardedSet(keys.relations(change.targetId), keys.relationsGeneration(change.targetId), ttl),
  });
}

/** Mirrors a relation just written to (or removed from) MongoDB into both people's cached sets. */
export async function mirrorRelation(
  deps: Deps,
  change: { userId: string; targetId: string; kind: RelationKind; on: boolean },
): Promise<void> {
  const ttl = deps.config.relations.cacheTtlSeconds + 86_400;
  const edit = (members: string[]) => (change.on ? { add: members, remove: [] } : { add: [], remove: members });
  const { keys } = deps;
  const ops: Record<string, RedisOp<void>> = {
    mine: changeGuardedSet(
      keys.relations(change.userId),
      keys.relationsGeneration(change.userId),
      edit([
        change.kind === "block" ? relationMember.blocking(change.targetId) : relationMember.muting(change.targetId),
      ]),
      ttl,
    ),
  };
  if (change.kind === "block") {
    ops.theirs = changeGuardedSet(
      keys.relations(change.targetId),
      keys.relationsGeneration(change.targetId),
      edit([relationMember.blockedBy(change.userId)]),
      ttl,
    );
  }
  await runOps(deps.redis, ops);
}

/**
 * For cache-first reads (no prefetch with the rate limit): the relations read to add to the request's first
 * batch, when the viewer's are not known yet; `relationsAfter` then turns the batch's result into them.
 */
export function pendingRelationsRead(deps: Deps, viewer: Viewer | undefined): { relations?: CacheRead<GuardedSet> } {
  return viewer && !viewer.relations && viewer.relationsMissAt === undefined
    ? { relations: relationsRead(deps, viewer.id) }
    : {};
}

export async function relationsAfter(
  deps: Deps,
  viewer: Viewer | undefined,
  batch: { relations?: GuardedSet },
): Promise<Relations> {
  if (viewer && !viewer.relations && batch.relations) {
    viewer.relations = await relationsFrom(deps, viewer.id, batch.relations);
  }
  return relationsFor(deps, viewer);
}
