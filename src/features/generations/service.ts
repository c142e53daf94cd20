import { ApiError } from "../../core/errors";
import { type IdempotentRequest, idempotencyMismatch } from "../../core/idempotency";
import type { Viewer } from "../../core/viewer";
import type { GenerationJobDoc, Tier } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Filter } from "../../platform/mongo/client";
import { paginate } from "../../platform/mongo/paginate";
import { countInWindow, runOp } from "../../platform/redis-ops";
import { DAY_SECONDS, secondsUntilNextUtcDay, utcDay } from "../../platform/time";
import { newGenerationJobDoc } from "./documents";
import { rememberGenerationPostFacts } from "./post-facts";
import {
  type ClaimBody,
  type CompleteBody,
  type CreateGenerationBody,
  type FailBody,
  type GenerationAccepted,
  type GenerationJob,
  type GenerationJobPage,
  type GenerationListQuery,
  toGenerationJob,
  toWorkerGenerationJob,
  type WorkerGenerationJob,
} from "./schema";

/** Longest worker error text kept on the job. */
export const MAX_STORED_ERROR = 1_000;
/** Queue order: highest priority first, then oldest (the `queue` index), `_id` to break exact ties. */
const QUEUE_ORDER = { priority: -1, createdAt: 1, _id: 1 } as const;

/** The daily generation quota of a user on a tier: the counter that enforces it (UTC day) and its limit. */
export function generationQuota(deps: Deps, userId: string, tier: Tier, now: Date): { key: string; limit: number } {
  return { key: deps.keys.rateGen(userId, utcDay(now)), limit: deps.config.generation.dailyQuota[tier] };
}

interface QuotaUnit {
  limit: number;
  used: number;
  /** Gives the unit back (the job was not enqueued after all). */
  giveBack(): Promise<void>;
}

/**
 * Takes one unit of the caller's daily quota (`rate:gen:{userId}:{day}`): INCR and EXPIRE in one pipelined
 * round trip. A request over the limit undoes its own increment before answering 429, so refusals never
 * consume quota and N concurrent requests against a quota of Q get exactly min(N, Q) units.
 */
async function takeDailyQuota(deps: Deps, viewer: Viewer, now: Date): Promise<QuotaUnit> {
  const { key, limit } = generationQuota(deps, viewer.id, viewer.tier, now);
  // The key outlives its UTC day; a fresh key is used each day, so the expiry only bounds garbage.
  const used = await runOp(deps.redis, countInWindow(key, DAY_SECONDS));
  const giveBack = async () => {
    await runOp(deps.redis, countInWindow(key, DAY_SECONDS, -1));
  };
  if (used > limit) {
    await giveBack();
    const retryAfter = secondsUntilNextUtcDay(now);
    throw ApiError.quotaExceeded(
      `Your ${viewer.tier} plan allows ${limit} generations per UTC day. The quota resets in ${retryAfter} s.`,
      retryAfter,
    );
  }
  return { limit, used, giveBack };
}

/**
 * Models the store sells (a `model_unlock` item) are for paid tiers and for people who bought the unlock;
 * every other configured model is open to all. Costs a read only for a free-tier caller asking for a sold one.
 */
async function requireModelAccess(deps: Deps, viewer: Viewer, model: string): Promise<void> {
  const sold = deps.config.shop.catalog.some((i) => i.kind === "model_unlock" && i.model === model);
  if (!sold || viewer.tier !== "free") return;
  const unlocked = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), unlockedModels: model },
    { projection: { _id: 1 } },
  );
  if (!unlocked) throw ApiError.forbidden(`The ${model} model needs an unlock from the store (or a paid tier).`);
}

/**
 * Queues a generation: validates the model against config, takes a unit of the tier's daily quota, inserts
 * the job with the tier's priority. 1 Redis round trip (quota) + 1 MongoDB insert; a failed insert gives the
 * unit back. With an Idempotency-Key the job carries it under a unique index: a retry whose first attempt
 * queued the job (its answer lost to a 503) gets that job back and gives its own unit back, so one request
 * makes one job and is never charged twice; the same key with another request is a 422.
 */
export async function createGeneration(
  deps: Deps,
  viewer: Viewer,
  body: CreateGenerationBody,
  request?: IdempotentRequest,
): Promise<GenerationAccepted> {
  const { models, defaultModel, priority } = deps.config.generation;
  const model = body.model ?? defaultModel;
  if (!models.includes(model)) {
    throw ApiError.invalidField("model", `must be one of: ${models.join(", ")}`);
  }
  await requireModelAccess(deps, viewer, model);
  const now = deps.clock.now();
  const quota = await takeDailyQuota(deps, viewer, now);
  const requestKey = request ? { key: `${viewer.id}:${request.key}`, fingerprint: request.fingerprint } : undefined;
  const doc: GenerationJobDoc = {
    ...newGenerationJobDoc({
      userId: new ObjectId(viewer.id),
      userTier: viewer.tier,
      prompt: body.prompt,
      negativePrompt: body.negativePrompt || null,
      model,
      steps: body.steps,
      cfgScale: body.cfgScale,
      seed: body.seed,
      priority: priority[viewer.tier],
      hasWatermark: viewer.tier === "free",
      createdAt: now,
    }),
    ...(requestKey ? { idempotency: requestKey } : {}),
  };
  const giveBack = () =>
    quota.giveBack().catch((refundError: unknown) => {
      deps.log.warn("could not give back a generation quota unit", { userId: viewer.id, error: String(refundError) });
    });
  let inserted: boolean;
  try {
    inserted = await deps.db.generationJobs.insertUnique(doc);
  } catch (error) {
    await giveBack();
    throw error;
  }
  let job = doc;
  let used = quota.used;
  if (!inserted) {
    // Only the Idempotency-Key index can refuse a new job: its first attempt queued one.
    await giveBack();
    used -= 1;
    const first = requestKey ? await deps.db.generationJobs.findOne({ "idempotency.key": requestKey.key }) : null;
    if (!first) throw ApiError.conflict("generation_conflict", "The job could not be queued; retry.");
    if (first.idempotency?.fingerprint !== requestKey?.fingerprint) throw idempotencyMismatch();
    job = first;
  }
  const resetsAt = new Date(now.getTime() + secondsUntilNextUtcDay(now) * 1000);
  return {
    id: job._id.toHexString(),
    status: "queued",
    priority: job.priority,
    quota: { limit: quota.limit, remaining: Math.max(0, quota.limit - used), resetsAt: resetsAt.toISOString() },
  };
}

/** The caller's own job; someone else's is the same 404 as a missing one. */
export async function getGeneration(deps: Deps, viewer: Viewer, id: string): Promise<GenerationJob> {
  const doc = await deps.db.generationJobs.findOne({ _id: new ObjectId(id), userId: new ObjectId(viewer.id) });
  if (!doc) throw ApiError.notFound("No such generation.");
  return toGenerationJob(doc);
}

/** The caller's jobs, newest first (the `user_created` index), cursor-paginated. */
export async function listGenerations(
  deps: Deps,
  viewer: Viewer,
  query: GenerationListQuery,
): Promise<GenerationJobPage> {
  const filter: Filter = { userId: new ObjectId(viewer.id) };
  if (query.status) filter.status = query.status;
  const page = await paginate(deps.db.generationJobs, {
    filter,
    order: { field: "createdAt", kind: "date", direction: "desc" },
    limit: query.limit,
    cursor: query.cursor,
  });
  return { items: page.items.map(toGenerationJob), nextCursor: page.nextCursor };
}

/**
 * Hands the next job to a worker: highest priority, then oldest, optionally only for the worker's models.
 * One findOneAndUpdate selects and marks the job in a single atomic step, so two workers never get the same
 * job however many poll at once.
 */
export async function claimGeneration(deps: Deps, body: ClaimBody): Promise<WorkerGenerationJob | null> {
  const filter: Filter = { status: "queued" };
  if (body.models) filter.model = { $in: body.models };
  const job = await deps.db.generationJobs.findOneAndUpdate(
    filter,
    { $set: { status: "processing", workerId: body.workerId, startedAt: deps.clock.now() }, $inc: { attempts: 1 } },
    { sort: QUEUE_ORDER, returnDocument: "after" },
  );
  return job ? toWorkerGenerationJob(job) : null;
}

/** The job as its holder sees it: processing, and claimed by this worker when the worker says who it is. */
function heldBy(id: string, workerId: string | undefined): Filter {
  return { _id: new ObjectId(id), status: "processing", ...(workerId ? { workerId } : {}) };
}

/** Why a finish request matched nothing: 404 for a missing job, 409 for one this worker does not hold. */
async function notHeld(deps: Deps, id: string, workerId: string | undefined): Promise<ApiError> {
  const job = await deps.db.generationJobs.findOne({ _id: new ObjectId(id) }, { projection: { status: 1 } });
  if (!job) return ApiError.notFound("No such generation job.");
  const holder = workerId ? ` by worker ${workerId}` : "";
  return ApiError.conflict("job_not_held", `The job is ${job.status}, not being processed${holder}.`);
}

/**
 * Records a finished image. Only a processing job, and only for its holder when `workerId` is given (a worker
 * whose job timed out and was re-queued gets 409). Repeating the same worker's completion answers 200 again,
 * so a worker that lost the first answer can retry safely. The job's post-facing fields are cached before the
 * answer (post-facts.ts), so the post the app makes of it next waits on one Data API call.
 */
export async function completeGeneration(deps: Deps, id: string, body: CompleteBody): Promise<WorkerGenerationJob> {
  const done = await deps.db.generationJobs.findOneAndUpdate(
    heldBy(id, body.workerId),
    {
      $set: {
        status: "completed",
        imageUrl: body.imageUrl,
        thumbnailUrl: body.thumbnailUrl,
        imageWidth: body.imageWidth,
        imageHeight: body.imageHeight,
        blurhash: body.blurhash ?? null,
        generationTimeMs: body.generationTimeMs,
        computeCostUsd: body.computeCostUsd ?? null,
        nsfwScore: body.nsfwScore ?? null,
        refinedPrompt: body.refinedPrompt ?? null,
        modelVersion: body.modelVersion ?? null,
        lastError: null,
        completedAt: deps.clock.now(),
      },
    },
    { returnDocument: "after" },
  );
  if (done) {
    await rememberGenerationPostFacts(deps, done);
    return toWorkerGenerationJob(done);
  }
  if (body.workerId) {
    const replay = await deps.db.generationJobs.findOne({
      _id: new ObjectId(id),
      status: "completed",
      workerId: body.workerId,
      imageUrl: body.imageUrl,
    });
    if (replay) {
      await rememberGenerationPostFacts(deps, replay);
      return toWorkerGenerationJob(replay);
    }
  }
  throw await notHeld(deps, id, body.workerId);
}

/**
 * Records a failed attempt: the job goes back to the queue (worker cleared, so the failed worker can no longer
 * finish it) until it has been attempted GENERATION_MAX_ATTEMPTS times, then it is `failed` for good.
 */
export async function failGeneration(deps: Deps, id: string, body: FailBody): Promise<WorkerGenerationJob> {
  const { maxAttempts } = deps.config.generation;
  const held = heldBy(id, body.workerId);
  const lastError = body.error.slice(0, MAX_STORED_ERROR);
  const requeued = await deps.db.generationJobs.findOneAndUpdate(
    { ...held, attempts: { $not: { $gte: maxAttempts } } },
    { $set: { status: "queued", workerId: null, startedAt: null, lastError } },
    { returnDocument: "after" },
  );
  if (requeued) return toWorkerGenerationJob(requeued);
  const failed = await deps.db.generationJobs.findOneAndUpdate(
    { ...held, attempts: { $gte: maxAttempts } },
    { $set: { status: "failed", lastError, completedAt: deps.clock.now() } },
    { returnDocument: "after" },
  );
  if (failed) return toWorkerGenerationJob(failed);
  throw await notHeld(deps, id, body.workerId);
}
