import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countersJob } from "../../src/features/ranking/counters";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call, uniqueIp } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { type FaultRig, faultRig } from "../support/faults";
import { completedGeneration } from "../support/posts";
import { crowd, type TestUser } from "../support/users";

/**
 * Vote counts when redis-server loses its data (FLUSHALL on this file's own Redis, as a restart without
 * persistence does): the live counter `post:votes:{id}` is rebuilt from the votes themselves, never from the
 * lagging `posts.voteCount`, and the `counters` job finds the post through its durable mark in MongoDB even
 * though the Redis work list went with the flush.
 */

let rig: FaultRig;
let app: (request: Request) => Promise<Response>;
let deps: ReturnType<typeof testDeps>;

beforeAll(async () => {
  rig = await faultRig();
  app = rig.app();
  deps = testDeps({ UPSTASH_REDIS_REST_URL: rig.info.upstashUrl, UPSTASH_REDIS_REST_TOKEN: rig.info.upstashToken });
});

afterAll(async () => {
  await rig?.close();
});

const vote = (voter: TestUser, postId: string) =>
  call<{ voteCount: number }>("PUT", `/v1/posts/${postId}/vote`, { token: voter.accessToken, ip: uniqueIp() }, app);
const shownCount = async (postId: string, reader: TestUser) =>
  (await call<{ voteCount: number }>("GET", `/v1/posts/${postId}`, { token: reader.accessToken }, app)).body.voteCount;
const storedPost = (postId: string) => deps.db.posts.findOne({ _id: new ObjectId(postId) });

/** Runs the counters job against this rig's Redis until it has recounted `postId` (other suites mark posts too). */
async function recount(postId: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const run = await runJob(deps, countersJob, { trigger: "test" });
    expect(run.outcome).not.toBe("failed");
    if (((await storedPost(postId))?.countersStale ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the counters job never recounted ${postId}`);
}

async function publish(author: TestUser): Promise<string> {
  const generationId = await completedGeneration(author);
  const res = await call<{ id: string }>(
    "POST",
    "/v1/posts",
    { token: author.accessToken, body: { generationId } },
    app,
  );
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

describe("vote counts when Redis loses its data", () => {
  it("stay exact through a FLUSHALL mid-stream, and the counters job recounts the post after a second one", async () => {
    const [author, reader, ...voters] = await crowd(14);
    const postId = await publish(author);
    for (const [i, voter] of voters.slice(0, 6).entries()) {
      const res = await vote(voter, postId);
      expect(res.status, res.text).toBe(200);
      expect(res.body.voteCount).toBe(i + 1);
    }
    await rig.flushAll();
    // posts.voteCount still says 0 (no counters run yet): a counter rebuilt from it would restart at 1.
    expect((await storedPost(postId))?.voteCount).toBe(0);
    for (const [i, voter] of voters.slice(6).entries()) {
      const res = await vote(voter, postId);
      expect(res.status, res.text).toBe(200);
      expect(res.body.voteCount).toBe(7 + i);
    }
    expect(await shownCount(postId, reader)).toBe(12);

    // The Redis work list is gone too: only the mark in MongoDB says this post needs a recount.
    await rig.flushAll();
    expect((await storedPost(postId))?.countersStale).toBeGreaterThan(0);
    await recount(postId);
    expect(await storedPost(postId)).toMatchObject({ voteCount: 12, countersStale: 0 });
    expect(await shownCount(postId, reader)).toBe(12);
  });

  it("heals a live counter that drifted from the votes on the next counters run", async () => {
    const [author, reader, ...voters] = await crowd(10);
    const postId = await publish(author);
    await rig.flushAll();
    // Votes racing to rebuild a lost counter can leave it off by one; the job rewrites it from its recount.
    const responses = await Promise.all(voters.map((v) => vote(v, postId)));
    expectEvery(responses, (r) => r.status === 200);
    await deps.redis.set(deps.keys.postVotes(postId), 7, { ex: 3_600 });
    expect(await shownCount(postId, reader)).toBe(7);
    await recount(postId);
    expect(await shownCount(postId, reader)).toBe(8);
    expect((await storedPost(postId))?.voteCount).toBe(8);
  });
});
