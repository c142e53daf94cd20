import { createRoute, z } from "@hono/zod-openapi";
import { requireAuth, requireRole, viewerOf } from "../../http/auth";
import { requestMetaOf } from "../../http/context";
import { json, problems, router } from "../../http/openapi";
import { IdParam } from "../../http/pagination";
import { revokeAllSessions } from "../auth/service";
import { CheckinResult, Me, PublicUser, ROLES, UpdateMeBody, Username } from "./schema";
import { checkin, deleteMe, exportMe, getMe, publicProfile, setRole, updateMe } from "./service";

const tags = ["users"];
const bearer = [{ bearer: [] }];

const getMeRoute = createRoute({
  method: "get",
  path: "/v1/me",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "The caller's own profile",
  responses: { 200: json(Me, "Own profile"), ...problems(401, 404, 429, 503) },
});

const patchMeRoute = createRoute({
  method: "patch",
  path: "/v1/me",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Edit the caller's profile",
  description:
    "Only displayName (1–50), bio (≤160), avatarUrl, profileTheme and notificationPreferences can change; any " +
    "other field (role, tier, gemBalance, trustScore, …) is refused with 400 and nothing changes.",
  request: { body: { content: { "application/json": { schema: UpdateMeBody } }, required: true } },
  responses: { 200: json(Me, "Updated profile"), ...problems(400, 401, 404, 429, 503) },
});

const deleteMeRoute = createRoute({
  method: "delete",
  path: "/v1/me",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Delete the caller's account",
  description:
    "Soft delete: the account disappears and every session is revoked now; personal data is erased by a job " +
    "after ACCOUNT_DELETION_GRACE_DAYS. Ledger records stay, anonymised.",
  responses: {
    202: json(z.object({ erasureAfter: z.string() }), "Deletion accepted"),
    ...problems(401, 404, 429, 503),
  },
});

const exportRoute = createRoute({
  method: "get",
  path: "/v1/me/export",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Everything stored about the caller, as JSON (GDPR)",
  responses: { 200: json(z.record(z.string(), z.unknown()), "Export"), ...problems(401, 404, 429, 503) },
});

const checkinRoute = createRoute({
  method: "post",
  path: "/v1/me/checkin",
  tags,
  security: bearer,
  middleware: [requireAuth()] as const,
  summary: "Daily check-in",
  description: "Once per UTC day; yesterday's check-in extends the streak, a missed day restarts it.",
  responses: { 200: json(CheckinResult, "Streak after the check-in"), ...problems(401, 404, 429, 503) },
});

const profileRoute = createRoute({
  method: "get",
  path: "/v1/users/{username}",
  tags,
  summary: "Public profile by username",
  description: "Case-insensitive. Cached in Redis; a cached read costs one Redis round trip and no MongoDB call.",
  request: { params: z.object({ username: Username }) },
  responses: { 200: json(PublicUser, "Profile"), ...problems(400, 404, 429, 503) },
});

const setRoleRoute = createRoute({
  method: "put",
  path: "/v1/admin/users/{id}/role",
  tags: ["admin"],
  security: bearer,
  middleware: [requireAuth(), requireRole("admin")] as const,
  summary: "Change a user's role (admin)",
  request: {
    params: IdParam,
    body: { content: { "application/json": { schema: z.object({ role: z.enum(ROLES) }).strict() } }, required: true },
  },
  responses: { 200: json(Me, "The user after the change"), ...problems(400, 401, 403, 404, 429, 503) },
});

export const usersRoutes = router()
  .openapi(getMeRoute, async (c) => c.json(await getMe(c.var.deps, viewerOf(c)), 200))
  .openapi(patchMeRoute, async (c) => c.json(await updateMe(c.var.deps, viewerOf(c), c.req.valid("json")), 200))
  .openapi(deleteMeRoute, async (c) => {
    const deps = c.var.deps;
    const result = await deleteMe(deps, requestMetaOf(c), viewerOf(c), (id) =>
      revokeAllSessions(deps, id, "account_deleted"),
    );
    return c.json(result, 202);
  })
  .openapi(exportRoute, async (c) => {
    c.header("Content-Disposition", 'attachment; filename="circle-export.json"');
    return c.json(await exportMe(c.var.deps, requestMetaOf(c), viewerOf(c)), 200);
  })
  .openapi(checkinRoute, async (c) => c.json(await checkin(c.var.deps, viewerOf(c)), 200))
  .openapi(profileRoute, async (c) => c.json(await publicProfile(c.var.deps, c.req.valid("param").username), 200))
  .openapi(setRoleRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await setRole(c.var.deps, requestMetaOf(c), viewerOf(c), id, c.req.valid("json").role), 200);
  });
