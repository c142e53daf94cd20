import { describe, expect, it } from "vitest";
import { countersJob } from "../../src/features/ranking/counters";
import { eraseUser, exportSections } from "../../src/features/saves/privacy";
import { ObjectId } from "../../src/platform/ids";
import { call, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { runUntilDone } from "../support/jobs";
import { postIn, publishedPost } from "../support/posts";
import { expectProblem } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

interface Page {
  items: { id: string; saveCount: number }[];
  nextCursor: string | null;
}

const save = (who: TestUser, postId: string) => call("PUT", `/v1/posts/${postId}/save`, { token: who.accessToken });
const unsave = (who: TestUser, postId: string) =>
  call("DELETE", `/v1/posts/${postId}/save`, { token: who.accessToken });
const saved = (who: TestUser, query = "") => call<Page>("GET", `/v1/me/saved${query}`, { token: who.accessToken });
const saveCount = async (postId: string) =>
  (await deps.db.posts.findOne({ _id: new ObjectId(postId) }, { projection: { saveCount: 1 } }))?.saveCount;

describe("PUT/DELETE /v1/posts/{id}/save", () => {
  it("keeps one save per person and post when the same person saves 20 times at once", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    const answers = await Promise.all(Array.from({ length: 20 }, () => save(fan, post.id)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(204));
    expect(await deps.db.saves.find({ postId: new ObjectId(post.id) })).toHaveLength(1);
    expect(await saveCount(post.id)).toBe(1);
    const shown = await call<{ saveCount: number }>("GET", `/v1/posts/${post.id}`, { token: author.accessToken });
    expect(shown.body.saveCount).toBe(1);
  });

  it("waits on two MongoDB writes in a row (the save beside its recount mark, then the count) for a warm post", async () => {
    const [author, fan] = await crowd(2);
    const post = await publishedPost(author);
    await call("GET", `/v1/posts/${post.id}`, { token: fan.accessToken });
    const first = await save(fan, post.id);
    expect(first.status).toBe(204);
    expect(waits(first.headers).mongo).toBe(2);
    const taken = await unsave(fan, post.id);
    expect(taken.status).toBe(204);
    expect(waits(taken.headers).mongo).toBe(2);
    expect(await saveCount(post.id)).toBe(0);
  });

  it("ends with the count the saves say when saves and unsaves of many people race, and the recount agrees", async () => {
    const [author, ...people] = await crowd(9);
    const post = await publishedPost(author);
    await Promise.all(people.map((p) => save(p, post.id)));
    // Every person saves and unsaves at once, some twice over; the first half ends unsaved.
    await Promise.all(
      people.flatMap((p, i) =>
        i < 4
          ? [unsave(p, post.id), unsave(p, post.id), save(p, post.id).then(() => unsave(p, post.id))]
          : [save(p, post.id)],
      ),
    );
    const remaining = await deps.db.saves.find({ postId: new ObjectId(post.id) });
    expect(remaining).toHaveLength(4);
    expect(await saveCount(post.id)).toBe(4);
    await runUntilDone(countersJob);
    expect(await saveCount(post.id)).toBe(4);
  });

  it("refuses posts the caller may not see (404): a draft, a private post, a blocked author's", async () => {
    const [author, fan, blocker] = await crowd(3);
    const draft = await postIn(author, { status: "draft" });
    const secret = await publishedPost(author, { visibility: "private" });
    const open = await publishedPost(blocker);
    await call("PUT", `/v1/users/${fan.id}/block`, { token: blocker.accessToken });
    for (const id of [draft.id, secret.id, open.id, new ObjectId().toHexString()]) {
      expectProblem(await save(fan, id), 404, "not_found");
    }
    expect(await deps.db.saves.find({ userId: new ObjectId(fan.id) })).toEqual([]);
    // Taking back a save that never was is still a 204 (and says nothing about the post).
    expect((await unsave(fan, draft.id)).status).toBe(204);
  });
});

describe("GET /v1/me/saved", () => {
  it("lists the caller's own saves, newest first, in keyset pages that never repeat or skip", async () => {
    const [author, fan, other] = await crowd(3);
    const posts = [];
    for (let i = 0; i < 5; i++) posts.push(await publishedPost(author));
    for (const p of posts) expect((await save(fan, p.id)).status).toBe(204);
    await save(other, posts[0]!.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof saved>> = await saved(fan, `?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((i) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(posts.map((p) => p.id).reverse());
    // Someone else's list holds only their own save.
    expect((await saved(other)).body.items.map((i) => i.id)).toEqual([posts[0]!.id]);
    expect((await call("GET", "/v1/me/saved")).status).toBe(401);
  });

  it("leaves out posts the caller can no longer see: archived, deleted, made private, or by someone now blocked", async () => {
    const [author, other, fan] = await crowd(3);
    const [kept, archived, deleted, hidden, theirs] = await Promise.all([
      publishedPost(author),
      publishedPost(author),
      publishedPost(author),
      publishedPost(author),
      publishedPost(other),
    ]);
    for (const p of [kept, archived, deleted, hidden, theirs]) await save(fan, p.id);
    const token = author.accessToken;
    await call("PATCH", `/v1/posts/${archived.id}`, { token, body: { status: "archived" } });
    await call("DELETE", `/v1/posts/${deleted.id}`, { token });
    await call("PATCH", `/v1/posts/${hidden.id}`, { token, body: { visibility: "private" } });
    await call("PUT", `/v1/users/${fan.id}/block`, { token: other.accessToken });
    const page = await saved(fan);
    expect(page.body.items.map((i) => i.id)).toEqual([kept.id]);
    // With the caller's voted set cached (the first page cached it), a page costs its saves, then their posts;
    // the caller's relations came with the rate limit.
    const again = await saved(fan);
    expect(again.body).toEqual(page.body);
    expect(waits(again.headers).mongo).toBe(2);
  });
});

describe("saves in export and erasure", () => {
  it("exports the owner's saves and erases them with the account, the counts recounted", async () => {
    const [author, fan, stays] = await crowd(3);
    const [a, b] = await Promise.all([publishedPost(author), publishedPost(author)]);
    const mine = await publishedPost(fan);
    await Promise.all([save(fan, a.id), save(fan, b.id), save(stays, a.id), save(stays, mine.id)]);
    const sections = [];
    for await (const page of exportSections(deps, fan.id)) sections.push(page);
    expect(sections.map((s) => s.section)).toEqual(["saves"]);
    expect(sections[0]!.items).toHaveLength(2);
    expect(JSON.stringify(sections)).not.toContain(stays.id);

    await eraseUser(deps, fan.id);
    // Restartable: a second pass finds nothing left and changes nothing.
    await eraseUser(deps, fan.id);
    expect(
      await deps.db.saves.find({ $or: [{ userId: new ObjectId(fan.id) }, { postId: new ObjectId(mine.id) }] }),
    ).toEqual([]);
    await runUntilDone(countersJob);
    expect([await saveCount(a.id), await saveCount(b.id)]).toEqual([1, 0]);
  });
});
