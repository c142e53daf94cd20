import { json, router } from "../../http/openapi";
import { publicRoute } from "../../http/routes";
import { HealthReport } from "./schema";
import { checkHealth } from "./service";

const healthRoute = publicRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Liveness and per-store checks",
  description:
    "Checks Redis, MongoDB (through the Data API) and ClickHouse in parallel, each with its own timeout. " +
    "200 with `status: degraded` when Redis or ClickHouse is down; 503 when MongoDB is unreachable.",
  responses: {
    200: json(HealthReport, "Healthy or degraded"),
    503: json(HealthReport, "MongoDB unreachable"),
  },
});

export const healthRoutes = router().openapi(healthRoute, async (c) => {
  const { report, healthy } = await checkHealth(c.var.deps);
  c.header("Cache-Control", "no-store");
  return healthy ? c.json(report, 200) : c.json(report, 503);
});
