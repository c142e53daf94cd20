import { OptionalIdempotencyHeaders } from "../../core/idempotency";
import { idempotent } from "../../http/idempotency";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, workerRoute } from "../../http/routes";
import {
  ClaimBody,
  CompleteBody,
  CreateGenerationBody,
  FailBody,
  GenerationAccepted,
  GenerationIdParam,
  GenerationJob,
  GenerationJobPage,
  GenerationListQuery,
  WorkerGenerationJob,
} from "./schema";
import {
  claimGeneration,
  completeGeneration,
  createGeneration,
  failGeneration,
  getGeneration,
  listGenerations,
} from "./service";

const tags = ["generations"];
const internal = { tags: ["internal"] };

const createRouteDef = authedRoute({
  method: "post",
  path: "/v1/generations",
  tags,
  summary: "Queue an image generation",
  description:
    "Counts against the caller's daily quota for their tier (GENERATION_DAILY_QUOTA_*, per UTC day); over it " +
    "→ 429 `quota_exceeded` with Retry-After = seconds to the next UTC midnight, and the refused request uses " +
    "no quota. The job's priority comes from the tier (premium > pro > free); free-tier images carry a watermark. " +
    "A model the store sells needs its unlock or a paid tier (403). With an `Idempotency-Key` a retry (e.g. " +
    "after a 503) gets the job its first attempt queued instead of a second one, and uses no more quota; the " +
    "same key with another body is a 422.",
  use: [idempotent("generation", { required: false })],
  request: { headers: OptionalIdempotencyHeaders, ...jsonBody(CreateGenerationBody) },
  responses: {
    202: json(GenerationAccepted, "Queued; poll GET /v1/generations/{id}"),
    ...problems(403, 409, 422),
  },
});

const getRouteDef = authedRoute({
  method: "get",
  path: "/v1/generations/{id}",
  tags,
  summary: "One of the caller's generation jobs",
  description: "Owner only: another user's job is the same 404 as a missing one.",
  request: { params: GenerationIdParam },
  responses: { 200: json(GenerationJob, "The job"), ...problems(404) },
});

const listRouteDef = authedRoute({
  method: "get",
  path: "/v1/generations",
  tags,
  summary: "The caller's generation jobs",
  description:
    "Newest first, optionally one `status`. `nextCursor` is null on the last page. Jobs expire 7 days after they finish.",
  request: { query: GenerationListQuery },
  responses: { 200: json(GenerationJobPage, "A page of jobs") },
});

const claimRouteDef = workerRoute({
  method: "post",
  path: "/v1/internal/generations/claim",
  ...internal,
  summary: "Claim the next generation job (GPU workers)",
  description:
    "Highest priority first, then oldest; `models` restricts to jobs for those models. Atomic: concurrent " +
    "workers never receive the same job. The job becomes `processing` under `workerId` with `attempts` + 1. " +
    "204 when the queue is empty.",
  request: jsonBody(ClaimBody),
  responses: {
    200: json(WorkerGenerationJob, "The claimed job"),
    204: { description: "No job waiting" },
  },
});

const completeRouteDef = workerRoute({
  method: "post",
  path: "/v1/internal/generations/{id}/complete",
  ...internal,
  summary: "Report a finished image (GPU workers)",
  description:
    "Only for a `processing` job, and only by the worker holding it when `workerId` is sent (send it: a worker " +
    "whose job timed out and was re-queued then gets 409 instead of overwriting another worker's result). " +
    "Repeating the holder's identical completion answers 200 again.",
  request: { params: GenerationIdParam, ...jsonBody(CompleteBody) },
  responses: { 200: json(WorkerGenerationJob, "The completed job"), ...problems(404, 409) },
});

const failRouteDef = workerRoute({
  method: "post",
  path: "/v1/internal/generations/{id}/fail",
  ...internal,
  summary: "Report a failed attempt (GPU workers)",
  description:
    "The job is re-queued (status `queued`) until it has been attempted GENERATION_MAX_ATTEMPTS times, then it " +
    "is `failed` with `lastError`. Same holder rules as complete.",
  request: { params: GenerationIdParam, ...jsonBody(FailBody) },
  responses: { 200: json(WorkerGenerationJob, "The job after the failure"), ...problems(404, 409) },
});

export const generationsRoutes = router()
  .openapi(createRouteDef, async (c) => {
    const accepted = await createGeneration(c.var.deps, c.var.viewer, c.req.valid("json"), c.var.idempotency);
    c.header("Location", `/v1/generations/${accepted.id}`);
    return c.json(accepted, 202);
  })
  .openapi(listRouteDef, async (c) =>
    c.json(await listGenerations(c.var.deps, c.var.viewer, c.req.valid("query")), 200),
  )
  .openapi(getRouteDef, async (c) =>
    c.json(await getGeneration(c.var.deps, c.var.viewer, c.req.valid("param").id), 200),
  )
  .openapi(claimRouteDef, async (c) => {
    const job = await claimGeneration(c.var.deps, c.req.valid("json"));
    return job ? c.json(job, 200) : c.body(null, 204);
  })
  .openapi(completeRouteDef, async (c) =>
    c.json(await completeGeneration(c.var.deps, c.req.valid("param").id, c.req.valid("json")), 200),
  )
  .openapi(failRouteDef, async (c) =>
    c.json(await failGeneration(c.var.deps, c.req.valid("param").id, c.req.valid("json")), 200),
  );
