import { beforeAll, describe, expect, it } from "vitest";
import type { PublicUser } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call, owedRecords, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { signupUser, type TestUser, users } from "../support/users";

const deps = testDeps();

interface Page {
  items: PublicUser[];
  nextCursor: string | null;
}

const follow = (who: TestUser, target: string) => call("PUT", `/v1/users/${target}/follow`, { token: who.accessToken });
const unfollow = (who: TestUser, target: string) =>
  call("DELETE", `/v1/users/${target}/follow`, { token: who.accessToken });
const profile = (u: TestUser) => call<PublicUser>("GET", `/v1/users/${u.username}`);
const counts = async (u: TestUser) => {
  const doc = await deps.db.users.findOne({ _id: new ObjectId(u.id) });
  return { followersCount: doc?.followersCount, followingCount: doc?.followingCount };
};
const edges = (filter: Record<string, string>) =>
  deps.db.follows.find(Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, new ObjectId(v)])), {
    limit: 1000,
  });

/** Walks a list to its end with the given page size; returns every page. */
async function allPages(path: string, limit: number): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await call<Page>("GET", `${path}${query}`);
    expect(res.status, res.text).toBe(200);
    pages.push(res.body);
    cursor = res.body.nextCursor;
  } while (cursor && pages.length < 20);
  return pages;
}

describe("PUT and DELETE /v1/users/{id}/follow", () => {
  let userA: TestUser;
  let userB: TestUser;
  beforeAll(async () => {
    [userA, userB] = await Promise.all([signupUser(), signupUser()]);
  });

  it("follows idempotently: twice is one follow, counted once on both sides", async () => {
    // Cache both public profiles first: the follow must invalidate them.
    expect((await profile(userB)).body.followersCount).toBe(0);
    expect((await profile(userA)).body.followingCount).toBe(0);
    expect((await follow(userA, userB.id)).status).toBe(204);
    expect((await follow(userA, userB.id)).status).toBe(204);
    expect(await edges({ followerId: userA.id, followingId: userB.id })).toHaveLength(1);
    expect(await counts(userB)).toMatchObject({ followersCount: 1, followingCount: 0 });
    expect(await counts(userA)).toMatchObject({ followersCount: 0, followingCount: 1 });
    expect((await profile(userB)).body.followersCount).toBe(1);
    expect((await profile(userA)).body.followingCount).toBe(1);
  });

  it("unfollows idempotently: twice is one unfollow", async () => {
    expect((await unfollow(userA, userB.id)).status).toBe(204);
    expect((await unfollow(userA, userB.id)).status).toBe(204);
    expect(await edges({ followerId: userA.id, followingId: userB.id })).toHaveLength(0);
    expect(await counts(userB)).toMatchObject({ followersCount: 0 });
    expect(await counts(userA)).toMatchObject({ followingCount: 0 });
    expect((await profile(userB)).body.followersCount).toBe(0);
  });

  it("waits on one MongoDB call to follow and one to unfollow; counts, profiles and the notice follow the answer", async () => {
    const [fan, star] = await Promise.all([signupUser(), signupUser()]);
    expect((await profile(star)).body.followersCount).toBe(0); // cached
    const followed = await follow(fan, star.id);
    expect(followed.status, followed.text).toBe(204);
    expect(waits(followed.headers)).toMatchObject({ mongo: 1 });
    expect(owedRecords(followed.headers)).toBe(1);
    expect((await profile(star)).body.followersCount).toBe(1);
    const inbox = await call<{ items: { type: string }[] }>("GET", "/v1/notifications", { token: star.accessToken });
    expect(inbox.body.items.map((n) => n.type)).toEqual(["follow"]);
    // Following again changes nothing and owes nothing.
    const again = await follow(fan, star.id);
    expect(waits(again.headers)).toMatchObject({ mongo: 1 });
    expect(owedRecords(again.headers)).toBe(0);

    const unfollowed = await unfollow(fan, star.id);
    expect(unfollowed.status).toBe(204);
    expect(waits(unfollowed.headers)).toMatchObject({ mongo: 1 });
    expect((await profile(star)).body.followersCount).toBe(0);
    expect(await counts(fan)).toMatchObject({ followingCount: 0 });
  });

  it("refuses following yourself (400), an unknown user (404), a malformed id (400), no token (401)", async () => {
    const self = await follow(userA, userA.id);
    expectProblem(self, 400, "validation_failed");
    expect(fieldPaths(self)).toContain("id");
    // Ids are normalised at the edge: the upper-case form of one's own id is still oneself.
    const shouting = await follow(userA, userA.id.toUpperCase());
    expectProblem(shouting, 400, "validation_failed");
    expect(fieldPaths(shouting)).toContain("id");
    expectProblem(await unfollow(userA, userA.id), 400, "validation_failed");
    expectProblem(await follow(userA, new ObjectId().toHexString()), 404, "not_found");
    expectProblem(await follow(userA, "nope"), 400, "validation_failed");
    expectProblem(await call("PUT", `/v1/users/${userB.id}/follow`), 401, "unauthorized");
    expect(await counts(userA)).toMatchObject({ followersCount: 0, followingCount: 0 });
  });

  it("keeps counts equal to the follow documents through 50 users following and unfollowing at once", async () => {
    const target = await signupUser();
    const fans = await users(50);
    const followingCounts = async () => {
      const docs = await deps.db.users.find({ _id: { $in: fans.map((f) => new ObjectId(f.id)) } }, { limit: 50 });
      return fans.map((f) => docs.find((d) => d._id.toHexString() === f.id)?.followingCount);
    };
    // Every fan fires a follow and an unfollow at the same moment: which lands last is unknown.
    await Promise.all(fans.flatMap((fan) => [follow(fan, target.id), unfollow(fan, target.id)]));
    const afterStorm = await edges({ followingId: target.id });
    expect((await counts(target)).followersCount).toBe(afterStorm.length);
    const followed = new Set(afterStorm.map((e) => e.followerId.toHexString()));
    expect(await followingCounts()).toEqual(fans.map((f) => (followed.has(f.id) ? 1 : 0)));

    // Then a final state we know: even fans follow, odd fans unfollow (again all at once, PUT and DELETE mixed).
    await Promise.all(fans.map((fan, i) => (i % 2 === 0 ? follow(fan, target.id) : unfollow(fan, target.id))));
    const final = await edges({ followingId: target.id });
    expect(new Set(final.map((e) => e.followerId.toHexString()))).toEqual(
      new Set(fans.filter((_, i) => i % 2 === 0).map((f) => f.id)),
    );
    expect(final).toHaveLength(25);
    expect((await counts(target)).followersCount).toBe(25);
    expect((await profile(target)).body.followersCount).toBe(25);
    expect(await followingCounts()).toEqual(fans.map((_, i) => (i % 2 === 0 ? 1 : 0)));
  });
});

describe("GET /v1/users/{id}/followers and /following", () => {
  let star: TestUser;
  let fans: TestUser[];
  beforeAll(async () => {
    [star, fans] = await Promise.all([signupUser(), users(5)]);
    // One after the other, so "newest first" has a known order.
    for (const fan of fans) expect((await follow(fan, star.id)).status).toBe(204);
    for (const other of fans.slice(0, 3)) expect((await follow(star, other.id)).status).toBe(204);
  });

  it("pages through 5 followers 2 at a time: newest first, no duplicates, none missing, null cursor at the end", async () => {
    const pages = await allPages(`/v1/users/${star.id}/followers`, 2);
    expect(pages.map((p) => p.items.length)).toEqual([2, 2, 1]);
    expect(pages.at(-1)?.nextCursor).toBeNull();
    const ids = pages.flatMap((p) => p.items.map((u) => u.id));
    expect(ids).toEqual(fans.map((f) => f.id).reverse());
    for (const item of pages.flatMap((p) => p.items)) {
      expect(item).not.toHaveProperty("email");
      expect(item.username).toBe(fans.find((f) => f.id === item.id)?.username);
    }
  });

  it("returns everything on one page when it fits, with a null cursor", async () => {
    const res = await call<Page>("GET", `/v1/users/${star.id}/followers?limit=5`);
    expect(res.body.items).toHaveLength(5);
    expect(res.body.nextCursor).toBeNull();
    const defaults = await call<Page>("GET", `/v1/users/${star.id}/followers`);
    expect(defaults.body.items).toHaveLength(5);
  });

  it("lists whom a user follows, paginated the same way", async () => {
    const pages = await allPages(`/v1/users/${star.id}/following`, 2);
    expect(pages.map((p) => p.items.length)).toEqual([2, 1]);
    expect(pages.flatMap((p) => p.items.map((u) => u.id))).toEqual(
      fans
        .slice(0, 3)
        .map((f) => f.id)
        .reverse(),
    );
  });

  it.each([
    ["a cursor this API never issued", "?cursor=garbage", "cursor"],
    ["limit=0", "?limit=0", "limit"],
    ["limit=101", "?limit=101", "limit"],
    ["a non-numeric limit", "?limit=ten", "limit"],
  ])("answers 400 for %s", async (_name, query, path) => {
    const res = await call("GET", `/v1/users/${star.id}/followers${query}`);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain(path);
  });

  it("answers 404 for an unknown user and 400 for a malformed id", async () => {
    expectProblem(await call("GET", `/v1/users/${new ObjectId().toHexString()}/followers`), 404, "not_found");
    expectProblem(await call("GET", "/v1/users/xyz/following"), 400, "validation_failed");
  });
});
