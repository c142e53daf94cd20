import { json, problems, router } from "../../http/openapi";
import { roleRoute } from "../../http/routes";
import { JobName, JobRun, JobRunList, JobRunsQuery } from "./schema";
import { recentRuns, triggerJob } from "./service";

const listRunsRoute = roleRoute(["admin"], {
  method: "get",
  path: "/v1/admin/jobs/runs",
  tags: ["admin", "jobs"],
  summary: "Recent job runs (newest first)",
  request: { query: JobRunsQuery },
  responses: { 200: json(JobRunList, "Runs") },
});

const runJobRoute = roleRoute(["admin"], {
  method: "post",
  path: "/v1/admin/jobs/{name}/run",
  tags: ["admin", "jobs"],
  summary: "Run a scheduled job now",
  description: "Runs under the same lease as the cron trigger: answers with outcome `skipped` if a run is under way.",
  request: { params: JobName },
  responses: { 200: json(JobRun, "The run, finished"), ...problems(404) },
});

export const jobsRoutes = router()
  .openapi(listRunsRoute, async (c) => c.json(await recentRuns(c.var.deps, c.req.valid("query")), 200))
  .openapi(runJobRoute, async (c) => c.json(await triggerJob(c.var.deps, c.req.valid("param").name), 200));
