import { describe, expect, it } from "vitest";
import type { JobContext } from "../../src/core/jobs";
import type { PostDoc } from "../../src/db";
import { createDeps, type Deps } from "../../src/deps";
import { countTags, tagCountsJob } from "../../src/features/tags/counts";
import { ObjectId } from "../../src/platform/ids";
import { deleteKeys, runOp } from "../../src/platform/redis-ops";
import { runJob } from "../../src/scheduler/runner";
import { call, roundTrips } from "../support/api";
import { appWith, testConfig, testDeps } from "../support/deps";
import { barrier } from "../support/jobs";
import { fromNow, postIn, publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser, uniqueName } from "../support/users";

const deps = testDeps();
const DAY = 86_400_000;

function depsAt(ms: number): Deps {
  const at = new Date(Date.now() + ms);
  return createDeps(testConfig(), { clock: { now: () => at } });
}

/** The job's logic without the scheduler's lease, so runs can really overlap each other and the requests. */
function unleasedRun(on: Deps = deps, checkpoint: (name: string) => Promise<void> = async () => {}): Promise<unknown> {
  const ctx: JobContext = {
    deps: on,
    runId: crypto.randomUUID(),
    startedAt: on.clock.now(),
    timeLeft: () => 60_000,
    count: () => {},
    report: () => {},
    checkpoint,
  };
  return countTags(ctx);
}

/** Runs the job until a run has nothing left (another file never runs it, but a run may stop on its budget). */
async function countAll(on: Deps = deps): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const run = await runJob(on, tagCountsJob, { trigger: "test" });
    if (run.outcome === "succeeded") return;
  }
  throw new Error("tag-counts did not finish");
}

/** What the counts must say: visible posts (published, approved, public, not deleted, author not shadow-banned). */
async function truth(tags: string[]): Promise<Record<string, number>> {
  const posts: PostDoc[] = await deps.db.posts.find({ tags: { $in: tags } });
  const visible = posts.filter(
    (p) =>
      p.status === "published" &&
      p.moderationStatus === "approved" &&
      p.visibility === "public" &&
      !p.deletedAt &&
      !p.authorShadowBanned,
  );
  return Object.fromEntries(tags.map((t) => [t, visible.filter((p) => p.tags.includes(t)).length]));
}

async function counted(tags: string[]): Promise<Record<string, number>> {
  const docs = await deps.db.tags.find({ _id: { $in: tags } });
  return Object.fromEntries(tags.map((t) => [t, docs.find((d) => d._id === t)?.posts ?? 0]));
}

const edit = (who: TestUser, id: string, body: Record<string, unknown>) =>
  call("PATCH", `/v1/posts/${id}`, { token: who.accessToken, body });

describe("tag usage counts", () => {
  it("stay exact under concurrent posts, tag edits, deletions and state changes, with count runs overlapping them", async () => {
    const [a, b] = await crowd(2);
    const base = uniqueName("tg");
    const [t1, t2, t3, t4] = [`${base}a`, `${base}b`, `${base}c`, `${base}d`];
    const tags = [t1, t2, t3, t4];
    const posts = await Promise.all([
      publishedPost(a, { tags: [t1, t2] }),
      publishedPost(a, { tags: [t1] }),
      publishedPost(b, { tags: [t2, t3] }),
      publishedPost(b, { tags: [t3] }),
      publishedPost(a, { tags: [t4] }),
      publishedPost(b, { tags: [t1, t4] }),
    ]);
    const drafts = await Promise.all([
      postIn(a, { status: "draft", tags: [t1] }),
      postIn(b, { status: "draft", tags: [t2] }),
    ]);
    // Two runs that planned from the same reads before either applied: each post is still counted once.
    const together = barrier("planned", 2);
    await Promise.all([unleasedRun(deps, together), unleasedRun(deps, together)]);
    await countAll();
    expect(await counted(tags)).toEqual(await truth(tags));

    const [p0, p1, p2, p3, p4, p5] = posts;
    await Promise.all([
      // Racing edits of one post's tags: whichever lands last is what counts.
      edit(a, p0.id, { tags: [t3] }),
      edit(a, p0.id, { tags: [t1, t4] }),
      edit(a, p0.id, { tags: [t2, t3, t4] }),
      edit(a, p1.id, { tags: [t2] }),
      edit(a, p1.id, { tags: [] }),
      call("DELETE", `/v1/posts/${p2.id}`, { token: b.accessToken }),
      edit(b, p3.id, { status: "archived" }),
      edit(a, p4.id, { visibility: "private" }),
      edit(b, p5.id, { tags: [t1, t2, t3, t4] }),
      edit(a, drafts[0]!.id, { status: "published" }),
      edit(b, drafts[1]!.id, { status: "scheduled", publishAt: fromNow(2 * DAY) }),
      publishedPost(a, { tags: [t4, t4, t3] }),
      publishedPost(b, { tags: [t1] }),
      unleasedRun(),
      unleasedRun(),
    ]);
    await countAll();
    const expected = await truth(tags);
    expect(await counted(tags)).toEqual(expected);
    // Nothing but visible posts, and the API says the same.
    const listed = await call<{ items: { tag: string; posts: number }[] }>("GET", `/v1/tags?prefix=${base}&limit=50`);
    const shown = Object.fromEntries(listed.body.items.map((i) => [i.tag, i.posts]));
    expect(shown).toEqual(Object.fromEntries(Object.entries(expected).filter(([, n]) => n > 0)));
  });

  it("move once when a count run dies after planning or after counting: the next run finishes, never twice", async () => {
    const [author] = await crowd(1);
    const tag = uniqueName("tg");
    for (const step of ["planned", "counted"]) {
      await Promise.all(Array.from({ length: 3 }, () => publishedPost(author, { tags: [tag] })));
      const crashed = await runJob(deps, tagCountsJob, {
        trigger: "test",
        onCheckpoint: (name) => {
          if (name === step) throw new Error(`crash after ${step}`);
        },
      });
      expect(crashed.outcome).toBe("failed");
      // A run right away leaves the dead run's batch alone (it could still be alive)...
      await unleasedRun();
      // ...and one a lease later finishes it exactly once.
      await countAll(depsAt(deps.config.jobs.leaseSeconds * 1000 + 5_000));
      expect(await counted([tag])).toEqual(await truth([tag]));
    }
    expect(await counted([tag])).toEqual({ [tag]: 6 });
  });
});

describe("tag count runs", () => {
  it("count a post once when two runs found it changed and one claims it after the other has read its claim", async () => {
    const [author] = await crowd(1);
    const tag = uniqueName("tg");
    await Promise.all(Array.from({ length: 4 }, () => publishedPost(author, { tags: [tag] })));
    // First: both runs find the same changed posts; then the first claims, reads and plans its batch while the
    // second waits; only then does the second try to claim them.
    let bothFound: () => void = () => {};
    const found = new Promise<void>((resolve) => {
      bothFound = resolve;
    });
    let firstPlanned: () => void = () => {};
    const planned = new Promise<void>((resolve) => {
      firstPlanned = resolve;
    });
    let arrivals = 0;
    const arrive = async () => {
      arrivals += 1;
      if (arrivals === 2) bothFound();
      await Promise.race([found, new Promise((r) => setTimeout(r, 3_000))]);
    };
    let firstFound = true;
    let firstPlans = true;
    const first = unleasedRun(deps, async (name) => {
      if (name === "found" && firstFound) {
        firstFound = false;
        await arrive();
      }
      if (name === "planned" && firstPlans) {
        firstPlans = false;
        firstPlanned();
      }
    });
    let secondFound = true;
    const second = unleasedRun(deps, async (name) => {
      if (name === "found" && secondFound) {
        secondFound = false;
        await arrive();
        await Promise.race([planned, new Promise((r) => setTimeout(r, 5_000))]);
      }
    });
    await Promise.all([first, second]);
    await countAll();
    expect(await counted([tag])).toEqual({ [tag]: 4 });
  });
});

describe("GET /v1/tags", () => {
  it("lists tags starting with the prefix (any case, `#` optional) by usage, a warm one in one Redis round trip", async () => {
    const [author] = await crowd(1);
    const base = uniqueName("tp");
    await Promise.all([
      ...Array.from({ length: 3 }, () => publishedPost(author, { tags: [`${base}x`] })),
      publishedPost(author, { tags: [`${base}y`, `${base}x`] }),
      publishedPost(author, { tags: [`${base}z`] }),
      publishedPost(author, { tags: [`${base}z`] }),
      postIn(author, { status: "draft", tags: [`${base}w`] }),
    ]);
    await countAll();
    const first = await call<{ items: { tag: string; posts: number }[] }>(
      "GET",
      `/v1/tags?prefix=%23${base.toUpperCase()}`,
    );
    expect(first.status).toBe(200);
    expect(first.body.items).toEqual([
      { tag: `${base}x`, posts: 4 },
      { tag: `${base}z`, posts: 2 },
      { tag: `${base}y`, posts: 1 },
    ]);
    const warm = await call("GET", `/v1/tags?prefix=${base}`);
    expect(warm.body).toEqual(first.body);
    expect(roundTrips(warm.headers)).toMatchObject({ redis: 1 });
    expect(roundTrips(warm.headers).mongo ?? 0).toBe(0);
    const bad = await call("GET", "/v1/tags?prefix=a%20b");
    expectProblem(bad, 400, "validation_failed");
    expect(fieldPaths(bad)).toEqual(["prefix"]);
  });
});

describe("GET /v1/tags/trending", () => {
  it("ranks the largest rise of the last 24 h against the daily average of the 7 days before, cached", async () => {
    const wide = appWith({ TAG_TRENDING_ITEMS: "100" });
    const [author] = await crowd(1);
    const base = uniqueName("tr");
    const [rising, steady, fading, quiet] = [`${base}r`, `${base}s`, `${base}f`, `${base}q`];
    const make = (tag: string, n: number) =>
      Promise.all(Array.from({ length: n }, () => publishedPost(author, { tags: [tag] })));
    const [, steadyOld, , fadingOld] = await Promise.all([
      make(rising, 8),
      make(steady, 7),
      make(steady, 6),
      make(fading, 14),
      make(fading, 4),
      make(quiet, 2),
    ]);
    // The older posts were published days ago.
    const old = [...steadyOld, ...fadingOld].map((p) => new ObjectId(p.id));
    await deps.db.posts.updateMany({ _id: { $in: old } }, { $set: { publishedAt: new Date(Date.now() - 3 * DAY) } });
    await countAll();
    await runOp(deps.redis, deleteKeys([deps.keys.tagsTrending()]));

    const res = await call<{ items: { tag: string; posts: number; rise: number; recentPosts: number }[] }>(
      "GET",
      "/v1/tags/trending",
      {},
      wide,
    );
    expect(res.status).toBe(200);
    const mine = res.body.items.filter((i) => i.tag.startsWith(base));
    // rising: 8 − 0/7; steady: 6 − 7/7; fading: 4 − 14/7; quiet has fewer than TAG_TRENDING_MIN_POSTS.
    expect(mine).toEqual([
      { tag: rising, posts: 8, rise: 8, recentPosts: 8 },
      { tag: steady, posts: 13, rise: 5, recentPosts: 6 },
      { tag: fading, posts: 18, rise: 2, recentPosts: 4 },
    ]);
    const warm = await call("GET", "/v1/tags/trending", {}, wide);
    expect(warm.body).toEqual(res.body);
    expect(roundTrips(warm.headers)).toMatchObject({ redis: 1 });
    expect(roundTrips(warm.headers).mongo ?? 0).toBe(0);
  });
});
