import { ApiError } from "../../core/errors";
import { forgetSelfView, forgetStanding } from "../../core/standing";
import type { Viewer } from "../../core/viewer";
import { settingsOf } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { Settings, UpdateSettingsBody } from "./schema";

/** The caller's settings, defaults filled in (one MongoDB read). */
export async function getSettings(deps: Deps, viewer: Viewer): Promise<Settings> {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { settings: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return settingsOf(user);
}

/**
 * Changes the named settings in one update. The zone and private mode ride on the account's cached standing (every
 * signed-in request knows them without a read), so a change to either forgets it: the next request sees it.
 */
export async function updateSettings(deps: Deps, viewer: Viewer, patch: UpdateSettingsBody): Promise<Settings> {
  const set: Record<string, unknown> = { updatedAt: deps.clock.now() };
  for (const [name, value] of Object.entries(patch)) if (value !== undefined) set[`settings.${name}`] = value;
  const updated = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { $set: set },
    { returnDocument: "after", projection: { settings: 1 } },
  );
  if (!updated) throw ApiError.notFound("Account not found.");
  if (patch.timezone !== undefined || patch.privateMode !== undefined) await forgetStanding(deps, viewer.id);
  else await forgetSelfView(deps, viewer.id);
  return settingsOf(updated);
}
