import { describe, expect, it } from "vitest";
import { avatarSyncJob } from "../../src/features/users/avatar-sync";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { uploaded } from "../support/media";
import { publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

// Every run of this job lives in this file. Small batches, so a handful of posts takes several of them.
const batched = testDeps({ AVATAR_SYNC_BATCH_DOCS: "2", AVATAR_SYNC_SETTLE_SECONDS: "0" });

class SimulatedCrash extends Error {}

interface Shown {
  userAvatarUrl: string | null;
}

const comment = async (who: TestUser, postId: string) => {
  const res = await call<{ id: string }>("POST", `/v1/posts/${postId}/comments`, {
    token: who.accessToken,
    body: { content: "nice light" },
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
};

async function runToTheEnd(onCheckpoint?: (name: string) => void) {
  for (let i = 0; i < 20; i++) {
    const run = await runJob(batched, avatarSyncJob, { trigger: "test", ...(onCheckpoint ? { onCheckpoint } : {}) });
    if (run.outcome === "succeeded") return run;
    if (run.outcome === "failed" && onCheckpoint) return run;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("avatar-sync did not finish");
}

/** What readers see of the author's avatar: their posts (served warm from Redis) and their comments. */
async function shownAvatars(
  author: TestUser,
  postIds: string[],
  commented: string[],
  viewer: TestUser,
): Promise<(string | null)[]> {
  const posts = await Promise.all(
    postIds.map((id) => call<Shown>("GET", `/v1/posts/${id}`, { token: viewer.accessToken })),
  );
  const pages = await Promise.all(
    commented.map((id) =>
      call<{ items: (Shown & { userId: string })[] }>("GET", `/v1/posts/${id}/comments`, { token: viewer.accessToken }),
    ),
  );
  const commentAvatars = pages
    .flatMap((p) => p.body.items.filter((c) => c.userId === author.id))
    .map((c) => c.userAvatarUrl);
  return [...posts.map((p) => p.body.userAvatarUrl), ...commentAvatars];
}

describe("PATCH /v1/me avatarMediaId → avatar-sync job", () => {
  it("puts a new avatar upload on the user's posts and comments, cached copies included", async () => {
    const [author, reader] = await crowd(2);
    const posts = await Promise.all([1, 2, 3].map(() => publishedPost(author)));
    const ids = posts.map((p) => p.id);
    const readersPost = await publishedPost(reader);
    await comment(author, ids[0] as string);
    await comment(author, ids[1] as string);
    await comment(author, readersPost.id);
    // Warm every cache that shows the old (no) avatar.
    const commented = [ids[0] as string, ids[1] as string, readersPost.id];
    expect(await shownAvatars(author, ids, commented, reader)).toEqual(Array(6).fill(null));

    const avatar = await uploaded(author, "avatar", "webpLossy");
    const patched = await call<{ avatarUrl: string }>("PATCH", "/v1/me", {
      token: author.accessToken,
      body: { avatarMediaId: avatar.id },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.avatarUrl).toBe(avatar.url);
    expect(waits(patched.headers).mongo).toBe(2);

    const run = await runToTheEnd();
    expect(run.counts.posts).toBeGreaterThanOrEqual(3);
    expect(await shownAvatars(author, ids, commented, reader)).toEqual(Array(6).fill(avatar.url));
    const user = await batched.db.users.findOne({ _id: new ObjectId(author.id) });
    expect(user?.avatarSync).toBeUndefined();
    expect((await call<Shown>("GET", `/v1/users/${author.username}`)).body).toMatchObject({ avatarUrl: avatar.url });
  });

  it("finishes after a run dies between batches, and the latest of two changes wins", async () => {
    const [author] = await crowd(1);
    const ids = (await Promise.all([1, 2, 3, 4, 5].map(() => publishedPost(author)))).map((p) => p.id);
    const first = await uploaded(author, "avatar", "png");
    const second = await uploaded(author, "avatar", "jpeg");
    await call("PATCH", "/v1/me", { token: author.accessToken, body: { avatarMediaId: first.id } });
    let batches = 0;
    const crashed = await runToTheEnd((name) => {
      if (name === "avatar-batch-written" && ++batches === 2) throw new SimulatedCrash("killed between batches");
    });
    expect(crashed.outcome).toBe("failed");
    const stored = async () =>
      (await batched.db.posts.find({ _id: { $in: ids.map((id) => new ObjectId(id)) } })).map((p) => p.userAvatarUrl);
    expect((await stored()).filter((url) => url === first.url).length).toBeGreaterThan(0);
    await call("PATCH", "/v1/me", { token: author.accessToken, body: { avatarMediaId: second.id } });
    await runToTheEnd();
    expect(await stored()).toEqual(Array(5).fill(second.url));
  });

  it("takes only the caller's own ready avatar uploads (400 naming avatarMediaId)", async () => {
    const [me, other] = await crowd(2);
    const theirs = await uploaded(other, "avatar", "png");
    const postImage = await uploaded(me, "post", "png");
    for (const id of [theirs.id, postImage.id, new ObjectId().toHexString()]) {
      const res = await call("PATCH", "/v1/me", { token: me.accessToken, body: { avatarMediaId: id } });
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res)).toEqual(["avatarMediaId"]);
    }
    const both = await call("PATCH", "/v1/me", {
      token: me.accessToken,
      body: { avatarMediaId: postImage.id, avatarUrl: "https://cdn.example/a.png" },
    });
    expect(fieldPaths(both)).toEqual(["avatarMediaId"]);
    expect((await call<{ avatarUrl: string | null }>("GET", "/v1/me", { token: me.accessToken })).body.avatarUrl).toBe(
      null,
    );
  });
});
