import { describe, expect, it } from "vitest";
import { countersJob } from "../../src/features/ranking/counters";
import { voteSignalRetentionJob } from "../../src/features/votes/retention";
import { ObjectId } from "../../src/platform/ids";
import { DAY_MS } from "../../src/platform/time";
import { call, uniqueIp } from "../support/api";
import { testDeps } from "../support/deps";
import { runUntilDone } from "../support/jobs";
import { publishedPost } from "../support/posts";
import { crowd } from "../support/users";

const deps = testDeps();

describe("votes are permanent; their fraud signals expire", () => {
  it("has no TTL index on votes after migrations (the seed's 90-day TTL deleted votes)", async () => {
    const names = (await deps.db.votes.listIndexes()).map((i) => i.name);
    expect(names).toContain("post_user_unique");
    expect(names).not.toContain("ttl_90d");
    expect((await deps.db.votes.listIndexes()).filter((i) => i.expireAfterSeconds !== undefined)).toEqual([]);
  });

  it("drops the IP hash, device and session of a 91-day-old vote and keeps the vote, its count and its uniqueness", async () => {
    const [author, oldVoter, recentVoter] = await crowd(3);
    const post = await publishedPost(author);
    for (const voter of [oldVoter, recentVoter]) {
      const res = await call("PUT", `/v1/posts/${post.id}/vote`, {
        token: voter.accessToken,
        ip: uniqueIp(),
        headers: { "x-device-id": `device-${voter.id}` },
      });
      expect(res.status, res.text).toBe(200);
    }
    const postId = new ObjectId(post.id);
    await deps.db.votes.updateOne(
      { postId, userId: new ObjectId(oldVoter.id) },
      { $set: { createdAt: new Date(Date.now() - 91 * DAY_MS) } },
    );

    const run = await runUntilDone(voteSignalRetentionJob);
    expect(run.counts.votes ?? 0).toBeGreaterThanOrEqual(1);

    const [old, recent] = await Promise.all([
      deps.db.votes.findOne({ postId, userId: new ObjectId(oldVoter.id) }),
      deps.db.votes.findOne({ postId, userId: new ObjectId(recentVoter.id) }),
    ]);
    expect(old).toMatchObject({ ipHash: null, deviceId: null, sessionId: null, postAuthorId: new ObjectId(author.id) });
    expect(recent?.ipHash).toHaveLength(32);
    expect(recent?.deviceId).toBe(`device-${recentVoter.id}`);

    // Voting again on the same post is still "already voted": one vote per (post, user), forever.
    const again = await call<{ voteCount: number }>("PUT", `/v1/posts/${post.id}/vote`, {
      token: oldVoter.accessToken,
    });
    expect(again.status, again.text).toBe(200);
    expect(await deps.db.votes.find({ postId, userId: new ObjectId(oldVoter.id) })).toHaveLength(1);

    // The counters job recounts from the votes themselves: the old vote still counts.
    await runUntilDone(countersJob);
    expect((await deps.db.posts.findOne({ _id: postId }))?.voteCount).toBe(2);
    const shown = await call<{ voteCount: number }>("GET", `/v1/posts/${post.id}`, { token: author.accessToken });
    expect(shown.body.voteCount).toBe(2);
  });
});
