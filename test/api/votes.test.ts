import { describe, expect, it } from "vitest";
import { countersJob } from "../../src/features/ranking/counters";
import { ObjectId } from "../../src/platform/ids";
import { call, roundTrips, uniqueIp, waits } from "../support/api";
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

  it("costs seven Redis and six MongoDB round trips, in four waits each, for a vote that notifies its author", async () => {
    const [author, voter] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`); // the post is in the cache, as any post being voted on is
    const res = await call("PUT", `/v1/posts/${post.id}/vote`, { token: voter.accessToken, ip: uniqueIp() });
    expect(res.status, res.text).toBe(200);
    // Redis: rate limit (with the voter's standing and relations); the cached post ∥ fraud signals + quota;
    // counter ∥ voted set ∥ the author's relations (alongside the notification's recipients read), then the
    // author's cached inbox dropped. MongoDB: voter; insert; totals ∥ the post's recount mark ∥ notification (2).
    expect(roundTrips(res.headers)).toMatchObject({ redis: 7, mongo: 6 });
    expect(waits(res.headers)).toMatchObject({ redis: 4, mongo: 4 });
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
