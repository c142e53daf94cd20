import { newGenerationJobDoc } from "../../src/features/generations/documents";
import { rememberGenerationPostFacts } from "../../src/features/generations/post-facts";
import { ObjectId } from "../../src/platform/ids";
import { call } from "./api";
import { testDeps } from "./deps";
import type { TestUser } from "./users";

const deps = testDeps();

interface PostBody {
  id: string;
  voteCount: number;
  visibility: string;
  moderationStatus: string;
  [field: string]: unknown;
}

/**
 * A completed generation of `author`, written straight to the queue collection: the GPU-worker path has its
 * own tests, and the queue is shared, so going through claim here would let suites take each other's jobs.
 * Its post-facing fields are cached as the completion route caches them (`cached: false`: as when that cache
 * was lost), so posting it takes the same path as in production.
 */
export async function completedGeneration(
  author: TestUser,
  prompt = "a lighthouse at dusk, oil painting",
  completion: { nsfwScore?: number | null; cached?: boolean } = {},
): Promise<string> {
  const now = new Date();
  const job = newGenerationJobDoc({
    userId: new ObjectId(author.id),
    userTier: "free",
    prompt,
    model: "sdxl-turbo",
    priority: 1,
    hasWatermark: true,
    createdAt: now,
  });
  const id = job._id.toHexString();
  const completed = {
    ...job,
    status: "completed",
    imageUrl: `https://cdn.example.test/${id}.png`,
    thumbnailUrl: `https://cdn.example.test/${id}.thumb.png`,
    imageWidth: 1024,
    imageHeight: 1024,
    blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
    generationTimeMs: 1200,
    attempts: 1,
    workerId: "test-worker",
    startedAt: now,
    completedAt: now,
    nsfwScore: completion.nsfwScore ?? null,
  } as const;
  await deps.db.generationJobs.insertOne(completed);
  if (completion.cached !== false) await rememberGenerationPostFacts(deps, completed);
  return id;
}

/** Publishes a post through the API. */
export async function publishedPost(
  author: TestUser,
  body: Record<string, unknown> = {},
  prompt?: string,
): Promise<PostBody> {
  const generationId = await completedGeneration(author, prompt);
  const res = await call<PostBody>("POST", "/v1/posts", { token: author.accessToken, body: { generationId, ...body } });
  if (res.status !== 201) throw new Error(`publishing failed: ${res.status} ${res.text}`);
  return res.body;
}

/** Creates a post from a fresh completed generation in any lifecycle state (`status`, `publishAt` in `body`). */
export async function postIn(
  author: TestUser,
  body: Record<string, unknown>,
  fetcher?: (request: Request) => Promise<Response>,
): Promise<PostBody> {
  const generationId = await completedGeneration(author);
  const res = await call<PostBody>(
    "POST",
    "/v1/posts",
    { token: author.accessToken, body: { generationId, ...body } },
    fetcher,
  );
  if (res.status !== 201) throw new Error(`creating the post failed: ${res.status} ${res.text}`);
  return res.body;
}

/** An ISO time this far from now. */
export function fromNow(ms: number): string {
  return new Date(Date.now() + ms).toISOString();
}
