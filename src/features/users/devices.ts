import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { DeviceRecord } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { BatchStep, Filter, Update, UpdateResult } from "../../platform/mongo/client";
import type { DeviceBody, DeviceList, DeviceView } from "./schema";

/** What a registration says about one install; what it leaves out depends on the mode (see below). */
export interface DeviceInput {
  deviceId: string;
  platform?: string;
  pushToken?: string | null;
  appVersion?: string | null;
}

/**
 * `replace`: the record becomes exactly what was sent (PUT /v1/me/devices/{deviceId}: an omitted push token or
 * app version is cleared). `merge`: what a sign-in leaves out keeps its stored value (a sign-in is not a device
 * update; an app that signs in again without its push token keeps receiving pushes).
 */
export type DeviceMode = "replace" | "merge";

const DEVICES = { $ifNull: ["$devices", []] };

/**
 * Pipeline-update expression for `devices` after registering one install, in one write and with no read: the
 * install's old entry is removed and the new one appended (the list stays in last-seen order), any other entry
 * of the account holding the same push token loses it, and the list is cut to the newest `max`. Client strings
 * go in as `$literal`: in a pipeline a string starting with "$" would be read as a field path.
 */
export function devicesAfterRegistering(
  device: DeviceInput,
  now: Date,
  max: number,
  mode: DeviceMode,
): Record<string, unknown> {
  const id = { $literal: device.deviceId };
  const kept = (field: "platform" | "pushToken" | "appVersion", fallback: string | null) => {
    const given = device[field];
    if (given !== undefined) return { $literal: given };
    return mode === "merge" ? { $ifNull: [`$$old.${field}`, fallback] } : fallback;
  };
  const record = {
    deviceId: id,
    platform: kept("platform", "unknown"),
    lastSeenAt: { $literal: now },
    pushToken: kept("pushToken", null),
    appVersion: kept("appVersion", null),
  };
  const others = { $filter: { input: DEVICES, as: "d", cond: { $ne: ["$$d.deviceId", id] } } };
  const token = typeof device.pushToken === "string" ? { $literal: device.pushToken } : null;
  const withoutToken = token
    ? {
        $map: {
          input: others,
          as: "d",
          in: { $cond: [{ $eq: ["$$d.pushToken", token] }, { $mergeObjects: ["$$d", { pushToken: null }] }, "$$d"] },
        },
      }
    : others;
  return {
    $let: {
      vars: {
        old: { $arrayElemAt: [{ $filter: { input: DEVICES, as: "d", cond: { $eq: ["$$d.deviceId", id] } } }, 0] },
      },
      in: { $slice: [{ $concatArrays: [withoutToken, [record]] }, -max] },
    },
  };
}

/**
 * A push token belongs to one install: removes it from every other account's devices (the device entries stay,
 * without a token). Returns how many accounts lost it.
 */
export async function releasePushToken(deps: Deps, userId: ObjectId, pushToken: string): Promise<number> {
  const result = await deps.db.users.updateMany(...releaseOf(deps, userId, pushToken));
  return result.modifiedCount;
}

/** The same release as a step of the caller's own batch (sign-in: one Data API call for all its writes). */
export function releasePushTokenStep(deps: Deps, userId: ObjectId, pushToken: string): BatchStep<UpdateResult> {
  return deps.db.users.inBatch.updateMany(...releaseOf(deps, userId, pushToken));
}

/** Other accounts that hold the token, and the update that clears it from their devices. */
function releaseOf(deps: Deps, userId: ObjectId, pushToken: string): [Filter, Update] {
  return [
    { _id: { $ne: userId }, "devices.pushToken": pushToken },
    withoutPushTokens({ $eq: ["$$d.pushToken", { $literal: pushToken }] }, deps.clock.now()),
  ];
}

/** A pipeline update that clears the push token of every device `$$d` matching `matches`; the entries stay. */
function withoutPushTokens(matches: Record<string, unknown>, now: Date): Record<string, unknown>[] {
  return [
    {
      $set: {
        devices: {
          $map: {
            input: DEVICES,
            as: "d",
            in: { $cond: [matches, { $mergeObjects: ["$$d", { pushToken: null }] }, "$$d"] },
          },
        },
        updatedAt: { $literal: now },
      },
    },
  ];
}

/**
 * Update ops that clear push tokens the push provider reported dead (uninstalled app, malformed or foreign
 * token) from their accounts' devices; the device entries stay, without a token. For one bulk write.
 */
export function dropPushTokensOps(
  byUser: Map<string, { userId: ObjectId; tokens: string[] }>,
  now: Date,
): { updateOne: { filter: Record<string, unknown>; update: Record<string, unknown>[] } }[] {
  return [...byUser.values()].map(({ userId, tokens }) => ({
    updateOne: {
      filter: { _id: userId, "devices.pushToken": { $in: tokens } },
      update: withoutPushTokens({ $in: ["$$d.pushToken", { $literal: tokens }] }, now),
    },
  }));
}

/**
 * Records the install a sign-in came from (login, OAuth) in `merge` mode, and takes its push token from any
 * other account, in parallel.
 */
export async function recordSignInDevice(deps: Deps, userId: ObjectId, device: DeviceInput): Promise<void> {
  const now = deps.clock.now();
  await Promise.all([
    deps.db.users.updateOne({ _id: userId }, [
      { $set: { devices: devicesAfterRegistering(device, now, deps.config.devicesPerUser, "merge") } },
    ]),
    device.pushToken ? releasePushToken(deps, userId, device.pushToken) : null,
  ]);
}

export function toDeviceView(d: DeviceRecord): DeviceView {
  return {
    deviceId: d.deviceId,
    platform: d.platform,
    hasPushToken: Boolean(d.pushToken),
    appVersion: d.appVersion ?? null,
    lastSeenAt: d.lastSeenAt.toISOString(),
  };
}

/**
 * PUT /v1/me/devices/{deviceId}: an idempotent upsert of the caller's install (one conditional update, so
 * concurrent registrations of one install leave one entry), answering the device as stored.
 */
export async function registerDevice(
  deps: Deps,
  viewer: Viewer,
  deviceId: string,
  body: DeviceBody,
): Promise<DeviceView> {
  const userId = new ObjectId(viewer.id);
  const now = deps.clock.now();
  const device: DeviceInput = {
    deviceId,
    platform: body.platform,
    pushToken: body.pushToken ?? null,
    appVersion: body.appVersion ?? null,
  };
  const [updated] = await Promise.all([
    deps.db.users.findOneAndUpdate(
      { _id: userId, deletedAt: null },
      [
        {
          $set: {
            devices: devicesAfterRegistering(device, now, deps.config.devicesPerUser, "replace"),
            updatedAt: { $literal: now },
          },
        },
      ],
      { returnDocument: "after", projection: { devices: 1 } },
    ),
    device.pushToken ? releasePushToken(deps, userId, device.pushToken) : null,
  ]);
  const stored = updated?.devices?.find((d) => d.deviceId === deviceId);
  if (!stored) throw ApiError.notFound("Account not found.");
  return toDeviceView(stored);
}

/** DELETE /v1/me/devices/{deviceId}: idempotent; a device the caller does not have is already gone. */
export async function removeDevice(deps: Deps, viewer: Viewer, deviceId: string): Promise<void> {
  const result = await deps.db.users.updateOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { $pull: { devices: { deviceId } }, $set: { updatedAt: deps.clock.now() } },
  );
  if (result.matchedCount === 0) throw ApiError.notFound("Account not found.");
}

/** The caller's devices, most recently seen first. */
export async function listDevices(deps: Deps, viewer: Viewer): Promise<DeviceList> {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { devices: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return { items: [...(user.devices ?? [])].reverse().map(toDeviceView) };
}
