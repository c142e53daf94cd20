import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { addDays } from "../../platform/time";
import { markEngaged } from "../ranking/engagement";
import { type AccountTraces, type ReviewReason, reviewVotes, type VoterHistory, type VoteUnderReview } from "./rules";

/**
 * Settlement's fraud review of the votes it is about to claim, before any is paid (rules in fraud.ts
 * `reviewVotes`): four reads in one wait, whatever the batch size, then one write for the votes it withholds.
 * Withheld votes are marked `flagged` with their reasons, so the claim that follows leaves them out: they are
 * never paid and never count in the ranking (their posts are queued for a recount). Reviewing again after a
 * crash is harmless.
 */
export async function withholdSuspiciousVotes(
  deps: Deps,
  votes: (VoteUnderReview & { postId: string })[],
): Promise<Map<string, ReviewReason[]>> {
  if (votes.length === 0) return new Map();
  const now = deps.clock.now();
  const since = addDays(now, -deps.config.votes.review.windowDays);
  const voterIds = [...new Set(votes.map((v) => v.voterId))].map((id) => new ObjectId(id));
  const authorIds = [...new Set(votes.map((v) => v.authorId))].map((id) => new ObjectId(id));
  const ipHashes = [...new Set(votes.flatMap((v) => (v.ipHash ? [v.ipHash] : [])))];
  const everyone = [...voterIds, ...authorIds];
  const [people, sessions, perAuthor, byAddress] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: everyone } },
      { projection: { createdAt: 1, totalPosts: 1, "devices.deviceId": 1 }, limit: everyone.length },
    ),
    deps.db.sessions.find(
      { userId: { $in: everyone }, lastUsedAt: { $gte: since } },
      { projection: { userId: 1, ipHash: 1 }, limit: everyone.length * 50 },
    ),
    deps.db.votes.aggregate<{ _id: { voter: ObjectId; author: ObjectId }; n: number }>([
      { $match: { userId: { $in: voterIds }, createdAt: { $gte: since } } },
      { $group: { _id: { voter: "$userId", author: "$postAuthorId" }, n: { $sum: 1 } } },
    ]),
    ipHashes.length
      ? deps.db.votes.aggregate<{ _id: { ip: string; author: ObjectId }; voters: ObjectId[] }>([
          { $match: { ipHash: { $in: ipHashes }, postAuthorId: { $in: authorIds }, createdAt: { $gte: since } } },
          { $group: { _id: { ip: "$ipHash", author: "$postAuthorId" }, voters: { $addToSet: "$userId" } } },
        ])
      : Promise.resolve([]),
  ]);
  const addressesOf = new Map<string, Set<string>>();
  for (const s of sessions) {
    const set = addressesOf.get(s.userId.toHexString()) ?? new Set<string>();
    if (s.ipHash) set.add(s.ipHash);
    addressesOf.set(s.userId.toHexString(), set);
  }
  const tracesOf = (id: string, devices: { deviceId: string }[] | undefined): AccountTraces => ({
    deviceIds: (devices ?? []).map((d) => d.deviceId),
    ipHashes: [...(addressesOf.get(id) ?? [])],
  });
  const voterSet = new Set(voterIds.map((v) => v.toHexString()));
  const authorSet = new Set(authorIds.map((a) => a.toHexString()));
  const voters = new Map<string, VoterHistory>();
  const authors = new Map<string, AccountTraces>();
  for (const p of people) {
    const id = p._id.toHexString();
    if (voterSet.has(id)) {
      voters.set(id, {
        ...tracesOf(id, p.devices),
        createdAt: p.createdAt,
        totalPosts: p.totalPosts ?? 0,
        votesByAuthor: new Map(),
      });
    }
    if (authorSet.has(id)) authors.set(id, tracesOf(id, p.devices));
  }
  for (const row of perAuthor)
    voters.get(row._id.voter.toHexString())?.votesByAuthor.set(row._id.author.toHexString(), row.n);
  const votersByIpAndAuthor = new Map(
    byAddress.map((r) => [`${r._id.ip}|${r._id.author.toHexString()}`, new Set(r.voters.map((v) => v.toHexString()))]),
  );
  const rules = { ...deps.config.votes.review, accountsPerIp: deps.config.votes.accountsPerIp };
  const withheld = reviewVotes({ votes, voters, authors, votersByIpAndAuthor, now }, rules);
  if (withheld.size === 0) return withheld;
  await deps.db.votes.bulkWrite(
    [...withheld].map(([id, reasons]) => ({
      updateOne: {
        filter: { _id: new ObjectId(id), gemBatchId: null, gemAwarded: false },
        update: { $set: { flagged: true, fraudReasons: reasons } },
      },
    })),
    { ordered: false },
  );
  const posts = [...new Set(votes.filter((v) => withheld.has(v.id)).map((v) => v.postId))];
  try {
    await markEngaged(deps, posts);
  } catch (error) {
    deps.log.warn("posts of withheld votes not queued for a recount", { error: String(error) });
  }
  return withheld;
}
