import { IdParam } from "../../core/schemas";
import { deviceIdOf, requestMetaOf } from "../../http/context";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, roleRoute, viewerRoute } from "../../http/routes";
import { listDevices, registerDevice, removeDevice } from "./devices";
import {
  DeviceBody,
  DeviceList,
  DeviceParams,
  DeviceView,
  Me,
  ProfileParams,
  PublicUser,
  RoleBody,
  TierBody,
  UpdateMeBody,
} from "./schema";
import { getMe, publicProfile, setRole, setTier, updateMe } from "./service";

const tags = ["users"];

const getMeRoute = authedRoute({
  method: "get",
  path: "/v1/me",
  tags,
  summary: "The caller's own profile",
  responses: { 200: json(Me, "Own profile"), ...problems(404) },
});

const patchMeRoute = authedRoute({
  method: "patch",
  path: "/v1/me",
  tags,
  summary: "Edit the caller's profile",
  description:
    "Only displayName (1–50), bio (≤160), avatarUrl (or avatarMediaId: one of the caller's ready avatar uploads), " +
    "profileTheme and notificationPreferences can change; a new avatar reaches the caller's posts and comments " +
    "within minutes (the avatar-sync job). Any " +
    "other field (role, tier, gemBalance, trustScore, …) is refused with 400 and nothing changes.",
  request: jsonBody(UpdateMeBody),
  responses: { 200: json(Me, "Updated profile"), ...problems(404) },
});

const listDevicesRoute = authedRoute({
  method: "get",
  path: "/v1/me/devices",
  tags,
  summary: "The caller's registered devices",
  description: "Most recently seen first. Push tokens are never returned, only whether one is set.",
  responses: { 200: json(DeviceList, "Devices"), ...problems(404) },
});

const putDeviceRoute = authedRoute({
  method: "put",
  path: "/v1/me/devices/{deviceId}",
  tags,
  summary: "Register or update one of the caller's devices",
  description:
    "Idempotent: the device's record becomes what is sent (an omitted `pushToken` or `appVersion` is cleared) " +
    "and its `lastSeenAt` now. A push token belongs to one install: registering it removes it from any other " +
    "account. An account keeps its most recently seen devices up to a limit; a new one beyond it drops the " +
    "least recently seen.",
  request: { params: DeviceParams, ...jsonBody(DeviceBody) },
  responses: { 200: json(DeviceView, "The device as stored"), ...problems(404) },
});

const deleteDeviceRoute = authedRoute({
  method: "delete",
  path: "/v1/me/devices/{deviceId}",
  tags,
  summary: "Forget one of the caller's devices (no more pushes to it)",
  description: "Idempotent: 204 whether or not the device was registered.",
  request: { params: DeviceParams },
  responses: { 204: { description: "Forgotten" }, ...problems(404) },
});

const profileRoute = viewerRoute({
  method: "get",
  path: "/v1/users/{username}",
  tags,
  cacheFirst: true,
  summary: "Public profile by username",
  description:
    "Case-insensitive. Cached in Redis; a cached read costs one Redis round trip and no MongoDB call. A " +
    "signed-in caller also gets `viewer` (follows both ways, blocked, muted; one MongoDB read); someone the " +
    "caller is blocked with, either way, is a 404.",
  request: { params: ProfileParams },
  responses: { 200: json(PublicUser, "Profile"), ...problems(404) },
});

const setRoleRoute = roleRoute(["admin"], {
  method: "put",
  path: "/v1/admin/users/{id}/role",
  tags: ["admin"],
  summary: "Change a user's role (admin)",
  request: { params: IdParam, ...jsonBody(RoleBody) },
  responses: { 200: json(Me, "The user after the change"), ...problems(404) },
});

const setTierRoute = roleRoute(["admin"], {
  method: "put",
  path: "/v1/admin/users/{id}/tier",
  tags: ["admin"],
  summary: "Set a user's tier and when it ends (admin)",
  description:
    "Audited. Applies to the user's existing tokens at once; a paid tier past `expiresAt` acts as free everywhere " +
    "(quotas, queue priority, watermark, model access) with no job needed. Store subscriptions set tiers the same way.",
  request: { params: IdParam, ...jsonBody(TierBody) },
  responses: { 200: json(Me, "The user after the change"), ...problems(404) },
});

export const usersRoutes = router()
  .openapi(getMeRoute, async (c) => c.json(await getMe(c.var.deps, c.var.viewer), 200))
  .openapi(patchMeRoute, async (c) => c.json(await updateMe(c.var.deps, c.var.viewer, c.req.valid("json")), 200))
  .openapi(listDevicesRoute, async (c) => c.json(await listDevices(c.var.deps, c.var.viewer), 200))
  .openapi(putDeviceRoute, async (c) =>
    c.json(await registerDevice(c.var.deps, c.var.viewer, c.req.valid("param").deviceId, c.req.valid("json")), 200),
  )
  .openapi(deleteDeviceRoute, async (c) => {
    await removeDevice(c.var.deps, c.var.viewer, c.req.valid("param").deviceId);
    return c.body(null, 204);
  })
  .openapi(profileRoute, async (c) =>
    c.json(
      await publicProfile(c.var.deps, c.var.redis, c.var.viewer, c.req.valid("param").username, {
        deviceId: deviceIdOf(c),
      }),
      200,
    ),
  )
  .openapi(setRoleRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await setRole(c.var.deps, requestMetaOf(c), c.var.viewer, id, c.req.valid("json").role), 200);
  })
  .openapi(setTierRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await setTier(c.var.deps, requestMetaOf(c), c.var.viewer, id, c.req.valid("json")), 200);
  });
