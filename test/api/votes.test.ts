import { describe, expect, it } from "vitest";
import { countersJob } from "../../src/features/ranking/counters";
import { ObjectId } from "../../src/platform/ids";
import { call, owedRecords, roundTrips, uniqueIp, waits } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { runUntilDone } from "../support/jobs";
import { publishedPost } from "../support/posts";
import { crowd } from "../support/users";

const deps = testDeps();

describe("PUT /v1/posts/{id}/vote", () => {
  it("counts one vote when the same user votes 100 times at once", async () => {
    const [author, voter] = await crowd(2, "premium");
    const post = await publishedPost(author);
    const responses = await Promise.all(
      Array.from({ length: 100 }, () =>
        call<{ voteCount: number }>("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken }),
      ),
    );
    expectEvery(responses, (r) => r.status === 200);
    expect(new Set(responses.map((r) => r.body.voteCount))).toEqual(new Set([1]));
    const votes = await deps.db.votes.find({ postId: new ObjectId(post.id) });
    expect(votes).toHaveLength(1);
    const view = await call<{ voteCount: number; viewer: { voted: boolean } }>("GET", `/v1/posts/${post.id}`, {
      token: voter.accessToken,
    });
    expect(view.body).toMatchObject({ voteCount: 1, viewer: { voted: true } });
  });

  it("waits on one MongoDB call (the vote and what it owes, in one transaction) and does the rest after the answer", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`); // the post is in the cache, as any post being voted on is
    const res = await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken, ip: uniqueIp() });
    expect(res.status, res.text).toBe(200);
    // Redis: rate limit (with the voter's standing and relations); the cached post ∥ fraud signals, quota and
    // the live counter; the counter's move ∥ the voted set. MongoDB: one transaction, the vote and its owed record.
    expect(roundTrips(res.headers)).toMatchObject({ redis: 4, mongo: 1 });
    expect(waits(res.headers)).toMatchObject({ redis: 3, mongo: 1 });
    expect(owedRecords(res.headers)).toBe(1);
    // What it owed is done once the after-response run finished (the helper waited for it).
    const [authorDoc, voterDoc] = await Promise.all(
      [author, voter].map((u) => deps.db.users.findOne({ _id: new ObjectId(u.id) })),
    );
    expect(authorDoc?.totalVotesReceived).toBe(1);
    expect(voterDoc?.totalVotesGiven).toBe(1);
    const inbox = await call<{ items: { type: string }[] }>("GET", "/v1/notifications", { token: author.accessToken });
    expect(inbox.body.items.map((n) => n.type)).toEqual(["vote"]);
  });

  it("refuses (404) a vote and a share on a post deleted while Redis kept its cached copy, and records neither", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`); // cached
    // Deleted as if the cache drop had failed (an outage): the stale copy still says it is live.
    await deps.db.posts.updateOne({ _id: new ObjectId(post.id) }, { $set: { deletedAt: new Date() } });
    const vote = await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    expect(vote.status, vote.text).toBe(404);
    const share = await call("POST", `/v1/posts/${post.id}/share`, { token: voter.accessToken });
    expect(share.status, share.text).toBe(404);
    expect(await deps.db.votes.find({ postId: new ObjectId(post.id) })).toHaveLength(0);
    expect(await deps.db.shares.find({ postId: new ObjectId(post.id) })).toHaveLength(0);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.totalVotesReceived).toBe(0);
  });

  it("waits on one MongoDB call also when the post's cached copy is gone but its lasting facts are not", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`); // caches the copy and the facts
    await deps.redis.del(deps.keys.postDoc(post.id)); // as a new comment or share drops the copy
    const vote = await call<{ voteCount: number }>("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    expect(vote.status, vote.text).toBe(200);
    expect(vote.body.voteCount).toBe(1);
    expect(waits(vote.headers)).toMatchObject({ mongo: 1 });
    await deps.redis.del(deps.keys.postDoc(post.id));
    const share = await call<{ shareCount: number }>("POST", `/v1/posts/${post.id}/share`, {
      token: voter.accessToken,
    });
    expect(share.status, share.text).toBe(200);
    expect(share.body.shareCount).toBe(1);
    expect(waits(share.headers)).toMatchObject({ mongo: 1 });
    const notices = await call<{ items: { type: string }[] }>("GET", "/v1/notifications", {
      token: author.accessToken,
    });
    expect(notices.body.items.map((n) => n.type)).toEqual(["vote"]);
  });

  it("lets a follower vote on a followers-only post known only by its facts, and no one else", async () => {
    const [author, follower, stranger] = await crowd(3);
    expect((await call("PUT", `/v1/users/${author.id}/follow`, { token: follower.accessToken })).status).toBe(204);
    const post = await publishedPost(author, { visibility: "followers" });
    await call("GET", `/v1/posts/${post.id}`, { token: author.accessToken });
    await deps.redis.del(deps.keys.postDoc(post.id));
    // The facts cannot vouch that it is public: the post is read, its audience checked, then the vote written.
    const voted = await call("PUT", `/v1/posts/${post.id}/vote`, { token: follower.accessToken });
    expect(voted.status, voted.text).toBe(200);
    await deps.redis.del(deps.keys.postDoc(post.id));
    const refused = await call("PUT", `/v1/posts/${post.id}/vote`, { token: stranger.accessToken });
    expect(refused.status).toBe(404);
    const votes = await deps.db.votes.find({ postId: new ObjectId(post.id) });
    expect(votes.map((v) => v.userId.toHexString())).toEqual([follower.id]);
  });

  it("takes a vote back with one MongoDB wait", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`);
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    const res = await call("DELETE", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    expect(res.status, res.text).toBe(204);
    expect(waits(res.headers)).toMatchObject({ mongo: 1 });
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.totalVotesReceived).toBe(0);
    const view = await call<{ voteCount: number; viewer: { voted: boolean } }>("GET", `/v1/posts/${post.id}`, {
      token: voter.accessToken,
    });
    expect(view.body).toMatchObject({ voteCount: 0, viewer: { voted: false } });
  });

  it("counts exactly 100 votes from 100 users, in the last response and in MongoDB after the counters job", async () => {
    const [author] = await crowd(1);
    const voters = await crowd(100);
    const post = await publishedPost(author);
    const responses = await Promise.all(
      voters.map((v) =>
        call<{ voteCount: number }>("PUT", `/v1/posts/${post.id}/vote`, { token: v.accessToken, ip: uniqueIp() }),
      ),
    );
    expectEvery(responses, (r) => r.status === 200);
    expect(Math.max(...responses.map((r) => r.body.voteCount))).toBe(100);
    expect(new Set(responses.map((r) => r.body.voteCount)).size).toBe(100);
    await runUntilDone(countersJob);
    expect((await deps.db.posts.findOne({ _id: new ObjectId(post.id) }))?.voteCount).toBe(100);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.totalVotesReceived).toBe(100);
  });

  it("refuses votes on your own post with 403 and on an invisible post with 404", async () => {
    const [author, other] = await crowd(2);
    const post = await publishedPost(author);
    const hidden = await publishedPost(author, { visibility: "private" });
    expect((await call("PUT", `/v1/posts/${post.id}/vote`, { token: author.accessToken })).status).toBe(403);
    expect((await call("PUT", `/v1/posts/${hidden.id}/vote`, { token: other.accessToken })).status).toBe(404);
    expect(
      (await call("PUT", `/v1/posts/${new ObjectId().toHexString()}/vote`, { token: other.accessToken })).status,
    ).toBe(404);
    expect((await call("PUT", "/v1/posts/not-an-id/vote", { token: other.accessToken })).status).toBe(400);
    expect((await call("PUT", `/v1/posts/${post.id}/vote`)).status).toBe(401);
  });

  it("enforces the daily quota exactly under concurrency and answers 429 quota_exceeded", async () => {
    const limited = appWith({ VOTE_DAILY_QUOTA_FREE: "3" });
    const [voter, ...authors] = await crowd(9);
    const posts = await Promise.all(authors.map((a) => publishedPost(a)));
    const responses = await Promise.all(
      posts.map((p) => call<{ code: string }>("PUT", `/v1/posts/${p.id}/vote`, { token: voter.accessToken }, limited)),
    );
    expect(responses.filter((r) => r.status === 200)).toHaveLength(3);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused).toHaveLength(5);
    expectEvery(refused, (r) => r.body.code === "quota_exceeded" && Number(r.headers.get("retry-after")) > 0);
    expect(await deps.db.votes.find({ userId: new ObjectId(voter.id) })).toHaveLength(3);
  });

  it("flags votes from an IP shared by many accounts", async () => {
    const [author] = await crowd(1);
    const voters = await crowd(8);
    const post = await publishedPost(author);
    const ip = uniqueIp();
    for (const v of voters)
      await call("PUT", `/v1/posts/${post.id}/vote`, {
        token: v.accessToken,
        ip,
        headers: { "x-device-id": "shared-phone" },
      });
    const votes = await deps.db.votes.find({ postId: new ObjectId(post.id) }, { sort: { createdAt: 1 } });
    expect(votes).toHaveLength(8);
    expect(votes[0]?.flagged).toBe(false);
    expect(votes[7]?.flagged).toBe(true);
    expect(votes[7]!.fraudScore).toBeGreaterThan(votes[0]!.fraudScore);
    expectEvery(votes, (v) => v.ipHash?.length === 32 && v.deviceId === "shared-phone");
  });
});

describe("DELETE /v1/posts/{id}/vote", () => {
  it("removes an unsettled vote (204) and refuses a settled one (409)", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    expect((await call("DELETE", `/v1/posts/${post.id}/vote`, { token: voter.accessToken })).status).toBe(204);
    const after = await call<{ voteCount: number }>("GET", `/v1/posts/${post.id}`, { token: voter.accessToken });
    expect(after.body.voteCount).toBe(0);
    expect((await call("DELETE", `/v1/posts/${post.id}/vote`, { token: voter.accessToken })).status).toBe(204);

    await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    await deps.db.votes.updateOne(
      { postId: new ObjectId(post.id) },
      { $set: { gemBatchId: "batch-1", gemAwarded: true } },
    );
    const settled = await call<{ code: string }>("DELETE", `/v1/posts/${post.id}/vote`, { token: voter.accessToken });
    expect(settled.status).toBe(409);
    expect(settled.body.code).toBe("conflict");
  });
});
