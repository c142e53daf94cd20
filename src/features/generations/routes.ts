import { createRoute } from "@hono/zod-openapi";
import { requireAuth, viewerOf } from "../../http/auth";
import { json, problems, router } from "../../http/openapi";
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
import { requireWorkerToken } from "./worker-auth";

const body = <T>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });
const tags = ["generations"];
const bearer = [{ bearer: [] }];
const internal = { tags: ["internal"], security: [{ workerToken: [] }] };

const createRouteDef = createRoute({
  method: "post",
  path: "/v1/generations",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Queue an image generation",
  description:
    "Counts against the caller's daily quota for their tier (GENERATION_DAILY_QUOTA_*, per UTC day); over it " +
    "→ 429 `quota_exceeded` with Retry-After = seconds to the next UTC midnight, and the refused request uses " +
    "no quota. The job's priority comes from the tier (premium > pro > free); free-tier images carry a watermark.",
  request: body(CreateGenerationBody),
  responses: {
    202: json(GenerationAccepted, "Queued; poll GET /v1/generations/{id}"),
    ...problems(400, 401, 429, 503),
  },
});

const getRouteDef = createRoute({
  method: "get",
  path: "/v1/generations/{id}",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "One of the caller's generation jobs",
  description: "Owner only: another user's job is the same 404 as a missing one.",
  request: { params: GenerationIdParam },
  responses: { 200: json(GenerationJob, "The job"), ...problems(400, 401, 404, 429, 503) },
});

const listRouteDef = createRoute({
  method: "get",
  path: "/v1/generations",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "The caller's generation jobs",
  description:
    "Newest first, optionally one `status`. `nextCursor` is null on the last page. Jobs expire 7 days after they finish.",
  request: { query: GenerationListQuery },
  responses: { 200: json(GenerationJobPage, "A page of jobs"), ...problems(400, 401, 429, 503) },
});

const claimRouteDef = createRoute({
  method: "post",
  path: "/v1/internal/generations/claim",
  ...internal,
  middleware: [requireWorkerToken()] as const,
  summary: "Claim the next generation job (GPU workers)",
  description:
    "Highest priority first, then oldest; `models` restricts to jobs for those models. Atomic: concurrent " +
    "workers never receive the same job. The job becomes `processing` under `workerId` with `attempts` + 1. " +
    "204 when the queue is empty.",
  request: body(ClaimBody),
  responses: {
    200: json(WorkerGenerationJob, "The claimed job"),
    204: { description: "No job waiting" },
    ...problems(400, 401, 429, 503),
  },
});

const completeRouteDef = createRoute({
  method: "post",
  path: "/v1/internal/generations/{id}/complete",
  ...internal,
  middleware: [requireWorkerToken()] as const,
  summary: "Report a finished image (GPU workers)",
  description:
    "Only for a `processing` job, and only by the worker holding it when `workerId` is sent (send it: a worker " +
    "whose job timed out and was re-queued then gets 409 instead of overwriting another worker's result). " +
    "Repeating the holder's identical completion answers 200 again.",
  request: { params: GenerationIdParam, ...body(CompleteBody) },
  responses: { 200: json(WorkerGenerationJob, "The completed job"), ...problems(400, 401, 404, 409, 429, 503) },
});

const failRouteDef = createRoute({
  method: "post",
  path: "/v1/internal/generations/{id}/fail",
  ...internal,
  middleware: [requireWorkerToken()] as const,
  summary: "Report a failed attempt (GPU workers)",
  description:
    "The job is re-queued (status `queued`) until it has been attempted GENERATION_MAX_ATTEMPTS times, then it " +
    "is `failed` with `lastError`. Same holder rules as complete.",
  request: { params: GenerationIdParam, ...body(FailBody) },
  responses: { 200: json(WorkerGenerationJob, "The job after the failure"), ...problems(400, 401, 404, 409, 429, 503) },
});

export const generationsRoutes = router()
  .openapi(createRouteDef, async (c) => {
    const accepted = await createGeneration(c.var.deps, viewerOf(c), c.req.valid("json"));
    c.header("Location", `/v1/generations/${accepted.id}`);
    return c.json(accepted, 202);
  })
  .openapi(listRouteDef, async (c) => c.json(await listGenerations(c.var.deps, viewerOf(c), c.req.valid("query")), 200))
  .openapi(getRouteDef, async (c) => c.json(await getGeneration(c.var.deps, viewerOf(c), c.req.valid("param").id), 200))
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
