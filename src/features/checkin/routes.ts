import { json, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { CheckinResult } from "./schema";
import { checkin } from "./service";

const checkinRoute = authedRoute({
  method: "post",
  path: "/v1/me/checkin",
  tags: ["users"],
  summary: "Daily check-in",
  description:
    "Once per calendar day in the caller's time zone (`GET /v1/me/settings`); yesterday's check-in extends the " +
    "streak, a missed day restarts it. `date` is that local day.",
  responses: { 200: json(CheckinResult, "Streak after the check-in"), ...problems(404) },
});

export const checkinRoutes = router().openapi(checkinRoute, async (c) =>
  c.json(await checkin(c.var.deps, c.var.viewer), 200),
);
