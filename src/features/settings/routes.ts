import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute } from "../../http/routes";
import { Settings, UpdateSettingsBody } from "./schema";
import { getSettings, updateSettings } from "./service";

const tags = ["users"];

const getSettingsRoute = authedRoute({
  method: "get",
  path: "/v1/me/settings",
  tags,
  summary: "The caller's settings",
  description: "Defaults until changed: UTC, en, system theme, private mode off, email digests on.",
  responses: { 200: json(Settings, "Settings"), ...problems(404) },
});

const patchSettingsRoute = authedRoute({
  method: "patch",
  path: "/v1/me/settings",
  tags,
  summary: "Change some of the caller's settings",
  description:
    "`timezone` must be an IANA zone (validated with Intl, stored canonically, e.g. `asia/tokyo` → `Asia/Tokyo`; " +
    "fixed offsets are refused); `language` a BCP 47 tag; `theme` light, dark or system. A new zone applies to the " +
    "caller's next request: check-ins and journal streaks count days in it from then on, while entries already " +
    "written keep the zone they were written in.",
  request: jsonBody(UpdateSettingsBody),
  responses: { 200: json(Settings, "Settings after the change"), ...problems(404) },
});

export const settingsRoutes = router()
  .openapi(getSettingsRoute, async (c) => c.json(await getSettings(c.var.deps, c.var.viewer), 200))
  .openapi(patchSettingsRoute, async (c) =>
    c.json(await updateSettings(c.var.deps, c.var.viewer, c.req.valid("json")), 200),
  );
