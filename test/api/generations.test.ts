import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type {
  GenerationAccepted,
  GenerationJob,
  GenerationJobPage,
  WorkerGenerationJob,
} from "../../src/features/generations/schema";
import { createGeneration } from "../../src/features/generations/service";
import { newObjectId, ObjectId } from "../../src/platform/ids";
import { secondsUntilNextUtcDay, utcDay } from "../../src/platform/time";
import { type ApiResponse, call } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { jobDoc } from "../support/generations";
import { expectProblem, fieldPaths } from "../support/problems";
import { signupUser, type TestUser } from "../support/users";

const deps = testDeps();
const WORKER_TOKEN = (env as unknown as Record<string, string>).GPU_WORKER_TOKEN!;
const MAX_ATTEMPTS = deps.config.generation.maxAttempts;
type Fetcher = (request: Request) => Promise<Response>;

/**
 * Every test queues jobs for a model of its own (an app whose GENERATION_MODELS includes it) and claims with
 * `models: [marker]`, so jobs of other tests and suites sharing the queue never interfere.
 */
function markerModel(): { model: string; app: Fetcher } {
  const model = `test-model-${crypto.randomUUID().slice(0, 12)}`;
  return { model, app: appWith({ GENERATION_MODELS: `sdxl-turbo,flux,${model}` }) };
}

async function userWithTier(tier: "free" | "pro" | "premium"): Promise<TestUser> {
  const user = await signupUser();
  if (tier === "free") return user;
  await deps.db.users.updateOne({ _id: new ObjectId(user.id) }, { $set: { tier } });
  const res = await call<{ accessToken: string }>("POST", "/v1/auth/login", {
    body: { login: user.username, password: user.password },
  });
  expect(res.status, res.text).toBe(200);
  return { ...user, accessToken: res.body.accessToken };
}

const create = (user: TestUser, body: Record<string, unknown>, fetcher?: Fetcher) =>
  call<GenerationAccepted>("POST", "/v1/generations", { token: user.accessToken, body }, fetcher);
const getJob = (user: TestUser, id: string) =>
  call<GenerationJob>("GET", `/v1/generations/${id}`, { token: user.accessToken });
const claim = (workerId: string, models: string[], token = WORKER_TOKEN) =>
  call<WorkerGenerationJob>("POST", "/v1/internal/generations/claim", { token, body: { workerId, models } });
const finish = (kind: "complete" | "fail", id: string, body: Record<string, unknown>, token = WORKER_TOKEN) =>
  call<WorkerGenerationJob>("POST", `/v1/internal/generations/${id}/${kind}`, { token, body });
const image = (id: string) => ({
  imageUrl: `https://cdn.example/gen/${id}.png`,
  thumbnailUrl: `https://cdn.example/gen/${id}_thumb.webp`,
  imageWidth: 1024,
  imageHeight: 768,
  blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
  generationTimeMs: 2_345,
  computeCostUsd: 0.0042,
});

async function queued(user: TestUser, app: Fetcher, model: string, extra: Record<string, unknown> = {}) {
  const res = await create(user, { prompt: "a fox in a neon forest", model, ...extra }, app);
  expect(res.status, res.text).toBe(202);
  return res.body;
}

describe("generation lifecycle", () => {
  it("queues, is claimed by a worker, completes, and the owner sees the image with a watermark (free tier)", async () => {
    const { model, app } = markerModel();
    const user = await signupUser();
    const res = await create(
      user,
      { prompt: "  a fox in a neon forest  ", model, steps: 30, cfgScale: 7.5, seed: 42 },
      app,
    );
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ status: "queued", priority: deps.config.generation.priority.free });
    expect(res.body.id).toMatch(/^[0-9a-f]{24}$/);
    expect(res.headers.get("location")).toBe(`/v1/generations/${res.body.id}`);
    const id = res.body.id;

    const before = await getJob(user, id);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({
      id,
      userId: user.id,
      status: "queued",
      prompt: "a fox in a neon forest",
      model,
      steps: 30,
      cfgScale: 7.5,
      seed: 42,
      imageUrl: null,
      hasWatermark: true,
      postId: null,
      startedAt: null,
      completedAt: null,
    });

    const claimed = await claim("gpu-happy-1", [model]);
    expect(claimed.status, claimed.text).toBe(200);
    expect(claimed.body).toMatchObject({
      id,
      status: "processing",
      workerId: "gpu-happy-1",
      attempts: 1,
      model,
      prompt: "a fox in a neon forest",
      hasWatermark: true,
    });
    expect(claimed.body.startedAt).toEqual(expect.any(String));
    expect((await getJob(user, id)).body.status).toBe("processing");

    const done = await finish("complete", id, { workerId: "gpu-happy-1", ...image(id) });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ status: "completed", computeCostUsd: 0.0042, workerId: "gpu-happy-1" });

    const after = await getJob(user, id);
    expect(after.body).toMatchObject({
      status: "completed",
      imageUrl: image(id).imageUrl,
      thumbnailUrl: image(id).thumbnailUrl,
      imageWidth: 1024,
      imageHeight: 768,
      blurhash: image(id).blurhash,
      generationTimeMs: 2_345,
      hasWatermark: true,
    });
    expect(after.body.completedAt).toEqual(expect.any(String));
    // Worker identity, internal cost and raw worker errors stay internal.
    expect(after.text).not.toMatch(/workerId|computeCostUsd|lastError|gpu-happy-1/);

    expect((await claim("gpu-happy-1", [model])).status).toBe(204);
  });

  it("puts no watermark on a pro user's image and queues it with the pro priority", async () => {
    const { model, app } = markerModel();
    const pro = await userWithTier("pro");
    const { id, priority } = await queued(pro, app, model);
    expect(priority).toBe(deps.config.generation.priority.pro);
    expect((await claim("gpu-pro", [model])).body).toMatchObject({ id, hasWatermark: false, userTier: "pro" });
    expect((await finish("complete", id, { workerId: "gpu-pro", ...image(id) })).status).toBe(200);
    expect((await getJob(pro, id)).body).toMatchObject({ status: "completed", hasWatermark: false });
  });

  it("hands a premium job to a worker before an older free job, then the free one, then nothing", async () => {
    const { model, app } = markerModel();
    const [free, premium] = await Promise.all([signupUser(), userWithTier("premium")]);
    const older = await queued(free, app, model);
    const newer = await queued(premium, app, model);
    expect(newer.priority).toBeGreaterThan(older.priority);

    expect((await claim("gpu-prio", [model])).body.id).toBe(newer.id);
    expect((await claim("gpu-prio", [model])).body.id).toBe(older.id);
    expect((await claim("gpu-prio", [model])).status).toBe(204);
  });

  it("hands out jobs of equal priority oldest first", async () => {
    const { model } = markerModel();
    const t = Date.now();
    const docs = [2, 0, 1].map((age) => jobDoc(model, { createdAt: new Date(t - (3 - age) * 1_000) }));
    await deps.db.generationJobs.insertMany(docs);
    const order = [];
    for (let i = 0; i < 3; i++) order.push((await claim("gpu-fifo", [model])).body.id);
    const oldestFirst = [...docs].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    expect(order).toEqual(oldestFirst.map((d) => d._id.toHexString()));
  });

  it("lists the caller's jobs newest first, page by page, and only theirs", async () => {
    const { model, app } = markerModel();
    const [owner, other] = await Promise.all([userWithTier("pro"), signupUser()]);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await queued(owner, app, model, { prompt: `prompt ${i}` })).id);
    await queued(other, app, model);

    const list = (cursor?: string) =>
      call<GenerationJobPage>("GET", `/v1/generations?limit=2${cursor ? `&cursor=${cursor}` : ""}`, {
        token: owner.accessToken,
      });
    const first = await list();
    expect(first.status, first.text).toBe(200);
    expect(first.body.items.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await list(first.body.nextCursor ?? undefined);
    expect(second.body.items.map((j) => j.id)).toEqual([ids[0]]);
    expect(second.body.nextCursor).toBeNull();

    const completedOnly = await call<GenerationJobPage>("GET", "/v1/generations?status=completed", {
      token: owner.accessToken,
    });
    expect(completedOnly.body.items).toEqual([]);
    expectProblem(
      await call("GET", "/v1/generations?cursor=garbage", { token: owner.accessToken }),
      400,
      "validation_failed",
    );
  });
});

describe("POST /v1/generations quota", () => {
  it("lets exactly N of N+5 concurrent requests through; the rest get 429 quota_exceeded with Retry-After", async () => {
    const quota = 3;
    const tight = appWith({ GENERATION_DAILY_QUOTA_FREE: String(quota) });
    const user = await signupUser();
    const results = await Promise.all(
      Array.from({ length: quota + 5 }, (_, i) => create(user, { prompt: `quota ${i}` }, tight)),
    );
    const accepted = results.filter((r) => r.status === 202);
    const refused = results.filter((r) => r.status !== 202);
    expect(accepted).toHaveLength(quota);
    expect(refused).toHaveLength(5);
    const expectedRetry = secondsUntilNextUtcDay(new Date());
    for (const res of refused) {
      expectProblem(res, 429, "quota_exceeded");
      const retryAfter = Number(res.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(Math.abs(retryAfter - expectedRetry)).toBeLessThanOrEqual(5);
    }
    expect(accepted.map((r) => r.body.quota.remaining).sort()).toEqual([0, 1, 2]);
    expect(await deps.db.generationJobs.find({ userId: new ObjectId(user.id) })).toHaveLength(quota);

    // Refusals consumed nothing: the counter is exactly the quota, and one more unit of quota is one more job.
    const key = deps.keys.rateGen(user.id, utcDay(new Date()));
    expect(Number(await deps.redis.get(key))).toBe(quota);
    expect(await deps.redis.ttl(key)).toBeGreaterThan(0);
    const roomier = appWith({ GENERATION_DAILY_QUOTA_FREE: String(quota + 1) });
    expect((await create(user, { prompt: "one more" }, roomier)).status).toBe(202);
    expectProblem(await create(user, { prompt: "one too many" }, roomier), 429, "quota_exceeded");
  });

  it("counts quota per tier: a pro user is not held to the free quota", async () => {
    const tight = appWith({ GENERATION_DAILY_QUOTA_FREE: "0", GENERATION_DAILY_QUOTA_PRO: "1" });
    const [free, pro] = await Promise.all([signupUser(), userWithTier("pro")]);
    expectProblem(await create(free, { prompt: "x" }, tight), 429, "quota_exceeded");
    expect((await create(pro, { prompt: "x" }, tight)).status).toBe(202);
    expectProblem(await create(pro, { prompt: "y" }, tight), 429, "quota_exceeded");
  });

  it("gives the unit back when the job cannot be stored", async () => {
    const user = await signupUser();
    const mongoDown = testDeps({
      DATA_API_URL: "http://127.0.0.1:9/app/data-api/endpoint/data/v1",
      STORE_TIMEOUT_MS: "500",
    });
    const viewer = { id: user.id, sessionId: "s", role: "user" as const, tier: "free" as const };
    await expect(createGeneration(mongoDown, viewer, { prompt: "lost" })).rejects.toThrow();
    const key = deps.keys.rateGen(user.id, utcDay(new Date()));
    expect(Number((await deps.redis.get(key)) ?? 0)).toBe(0);
  });
});

describe("GET /v1/generations/{id}", () => {
  let owner: TestUser;
  let other: TestUser;
  let id: string;
  beforeAll(async () => {
    [owner, other] = await Promise.all([signupUser(), signupUser()]);
    id = (await create(owner, { prompt: "mine" })).body.id;
  });

  it("answers 404 for someone else's job, exactly as for a missing one", async () => {
    const foreign = await getJob(other, id);
    const missing = await getJob(other, newObjectId().toHexString());
    expect(expectProblem(foreign, 404, "not_found").detail).toBe(expectProblem(missing, 404, "not_found").detail);
    expect(foreign.text).not.toContain("mine");
  });

  it("answers 400 for an id that is not an ObjectId and 401 without a token", async () => {
    expectProblem(await getJob(owner, "not-an-id"), 400, "validation_failed");
    expectProblem(await call("GET", `/v1/generations/${id}`), 401, "unauthorized");
    expectProblem(await call("GET", "/v1/generations"), 401, "unauthorized");
  });
});

describe("POST /v1/generations validation", () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await signupUser();
  });

  it.each([
    ["an empty prompt", { prompt: "" }, "prompt"],
    ["a blank prompt", { prompt: "    " }, "prompt"],
    ["a 1,001-character prompt", { prompt: "p".repeat(1001) }, "prompt"],
    ["no prompt", { model: "flux" }, "prompt"],
    ["an unknown model", { prompt: "x", model: "dall-e-9" }, "model"],
    ["steps 0", { prompt: "x", steps: 0 }, "steps"],
    ["steps 151", { prompt: "x", steps: 151 }, "steps"],
    ["fractional steps", { prompt: "x", steps: 2.5 }, "steps"],
    ["cfgScale 31", { prompt: "x", cfgScale: 31 }, "cfgScale"],
    ["a negative seed", { prompt: "x", seed: -1 }, "seed"],
    ["a 1,001-character negativePrompt", { prompt: "x", negativePrompt: "n".repeat(1001) }, "negativePrompt"],
  ])("refuses %s with 400 naming the field and uses no quota", async (_name, body, path) => {
    const res = await create(user, body);
    expectProblem(res, 400, "validation_failed");
    expect(fieldPaths(res)).toContain(path);
    expect(await deps.redis.get(deps.keys.rateGen(user.id, utcDay(new Date())))).toBeNull();
  });

  it("refuses an unknown field, naming it", async () => {
    const res = await create(user, { prompt: "x", priority: 1000 });
    expect(expectProblem(res, 400, "validation_failed").errors).toContainEqual({
      path: "priority",
      message: "unknown field",
    });
  });

  it("answers 401 without a token and with the GPU worker token", async () => {
    expectProblem(await call("POST", "/v1/generations", { body: { prompt: "x" } }), 401, "unauthorized");
    expectProblem(
      await call("POST", "/v1/generations", { token: WORKER_TOKEN, body: { prompt: "x" } }),
      401,
      "unauthorized",
    );
  });

  it("uses the default model when none is given", async () => {
    const res = await create(user, { prompt: "defaults" });
    expect(res.status, res.text).toBe(202);
    expect((await getJob(user, res.body.id)).body).toMatchObject({ model: deps.config.generation.defaultModel });
  });
});

describe("GPU worker API", () => {
  it.each([
    ["no Authorization header", undefined],
    ["a wrong token", "not-the-worker-token-0123456789"],
    ["the token with one character changed", `${WORKER_TOKEN.slice(0, -1)}X`],
    ["a prefix of the token", WORKER_TOKEN.slice(0, 10)],
  ])("answers 401 to %s on every worker endpoint", async (_name, token) => {
    const id = newObjectId().toHexString();
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    for (const [path, body] of [
      ["/v1/internal/generations/claim", { workerId: "w" }],
      [`/v1/internal/generations/${id}/complete`, image(id)],
      [`/v1/internal/generations/${id}/fail`, { error: "boom" }],
    ] as const) {
      const res = await call("POST", path, { headers, body });
      expectProblem(res, 401, "unauthorized");
    }
  });

  it("answers 403 to a signed-in user's access token (authenticated, not a worker)", async () => {
    const user = await signupUser();
    expectProblem(await claim("w", ["none"], user.accessToken), 403, "forbidden");
  });

  it("refuses bad worker input with 400 naming the field", async () => {
    const id = newObjectId().toHexString();
    expect(
      fieldPaths(await call("POST", "/v1/internal/generations/claim", { token: WORKER_TOKEN, body: {} })),
    ).toContain("workerId");
    expect(fieldPaths(await finish("complete", id, { ...image(id), imageUrl: "not a url" }))).toContain("imageUrl");
    expect(fieldPaths(await finish("complete", id, { ...image(id), imageWidth: 0 }))).toContain("imageWidth");
    expect(fieldPaths(await finish("fail", id, {}))).toContain("error");
    expectProblem(await finish("fail", "nope", { error: "x" }), 400, "validation_failed");
  });

  it("gives each of 50 jobs to exactly one of 20 workers claiming concurrently", async () => {
    const { model } = markerModel();
    const t = Date.now();
    const docs = Array.from({ length: 50 }, (_, i) =>
      jobDoc(model, { priority: i % 3, createdAt: new Date(t - i * 10) }),
    );
    await deps.db.generationJobs.insertMany(docs);

    const claimsByWorker = await Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        const got: string[] = [];
        for (;;) {
          const res = await claim(`gpu-race-${w}`, [model]);
          if (res.status === 204) return got;
          expect(res.status, res.text).toBe(200);
          expect(res.body).toMatchObject({ status: "processing", workerId: `gpu-race-${w}`, attempts: 1 });
          got.push(res.body.id);
        }
      }),
    );
    const claimed = claimsByWorker.flat();
    expect(claimed).toHaveLength(50);
    expect(new Set(claimed).size).toBe(50);
    expect(new Set(claimed)).toEqual(new Set(docs.map((d) => d._id.toHexString())));

    const stored = await deps.db.generationJobs.find({ model });
    expectEvery(stored, (j) => j.status === "processing" && j.attempts === 1);
    // The job each worker holds in the database is the one it was handed.
    const holder = new Map(stored.map((j) => [j._id.toHexString(), j.workerId]));
    claimsByWorker.forEach((ids, w) => {
      for (const id of ids) expect(holder.get(id)).toBe(`gpu-race-${w}`);
    });
  });

  it("re-queues a failed job until it has had GENERATION_MAX_ATTEMPTS attempts, then marks it failed", async () => {
    const { model, app } = markerModel();
    const user = await signupUser();
    const { id } = await queued(user, app, model);

    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const claimed = await claim(`gpu-flaky-${attempt}`, [model]);
      expect(claimed.body).toMatchObject({ id, attempts: attempt });
      const failed = await finish("fail", id, { workerId: `gpu-flaky-${attempt}`, error: `CUDA OOM #${attempt}` });
      expect(failed.status, failed.text).toBe(200);
      if (attempt < MAX_ATTEMPTS) {
        expect(failed.body).toMatchObject({
          status: "queued",
          workerId: null,
          attempts: attempt,
          lastError: `CUDA OOM #${attempt}`,
        });
        expect((await getJob(user, id)).body.status).toBe("queued");
      } else {
        expect(failed.body).toMatchObject({
          status: "failed",
          attempts: MAX_ATTEMPTS,
          lastError: `CUDA OOM #${attempt}`,
        });
      }
    }
    expect((await getJob(user, id)).body).toMatchObject({ status: "failed", imageUrl: null });
    expect((await claim("gpu-flaky-x", [model])).status).toBe(204);
    // A failed job is finished: no more reports are accepted.
    expectProblem(await finish("fail", id, { error: "again" }), 409, "conflict");
  });

  it("stores a long worker error truncated", async () => {
    const { model } = markerModel();
    const doc = jobDoc(model);
    await deps.db.generationJobs.insertOne(doc);
    const id = doc._id.toHexString();
    await claim("gpu-long", [model]);
    const res = await finish("fail", id, { workerId: "gpu-long", error: "e".repeat(5_000) });
    expect(res.status, res.text).toBe(200);
    expect(res.body.lastError).toHaveLength(1_000);
  });

  it("lets only the holding worker complete or fail a job (409 for others), 404 for a missing one", async () => {
    const { model } = markerModel();
    const doc = jobDoc(model);
    await deps.db.generationJobs.insertOne(doc);
    const id = doc._id.toHexString();

    // Not yet claimed: nobody may finish it.
    expectProblem(await finish("complete", id, { workerId: "gpu-a", ...image(id) }), 409, "conflict");
    expect((await claim("gpu-a", [model])).body.id).toBe(id);

    expectProblem(await finish("complete", id, { workerId: "gpu-b", ...image(id) }), 409, "conflict");
    expectProblem(await finish("fail", id, { workerId: "gpu-b", error: "not mine" }), 409, "conflict");
    expect(await deps.db.generationJobs.findOne({ _id: doc._id })).toMatchObject({
      status: "processing",
      workerId: "gpu-a",
      lastError: null,
    });

    const done = await finish("complete", id, { workerId: "gpu-a", ...image(id) });
    expect(done.status, done.text).toBe(200);
    // The holder's retry of the same completion (a lost answer) is answered again; anything else is a conflict.
    expect((await finish("complete", id, { workerId: "gpu-a", ...image(id) })).status).toBe(200);
    expectProblem(await finish("complete", id, { workerId: "gpu-b", ...image(id) }), 409, "conflict");
    expectProblem(await finish("fail", id, { workerId: "gpu-a", error: "too late" }), 409, "conflict");
    expect(await deps.db.generationJobs.findOne({ _id: doc._id })).toMatchObject({
      status: "completed",
      lastError: null,
    });

    const missing = newObjectId().toHexString();
    expectProblem(await finish("complete", missing, image(missing)), 404, "not_found");
    expectProblem(await finish("fail", missing, { error: "x" }), 404, "not_found");
  });
});

describe("OpenAPI", () => {
  it("documents the generation routes and the worker token scheme", async () => {
    const res: ApiResponse<{
      paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    }> = await call("GET", "/openapi.json");
    expect(res.body.components.securitySchemes.workerToken).toEqual({ type: "http", scheme: "bearer" });
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining([
        "/v1/generations",
        "/v1/generations/{id}",
        "/v1/internal/generations/claim",
        "/v1/internal/generations/{id}/complete",
        "/v1/internal/generations/{id}/fail",
      ]),
    );
    expect(res.body.paths["/v1/internal/generations/claim"]?.post?.security).toEqual([{ workerToken: [] }]);
  });
});
