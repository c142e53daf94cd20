import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { NotificationPolicy, PolicyAction } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";

export const DEFAULT_NOTIFICATION_POLICY: NotificationPolicy = { notFollowing: "accept", newAccounts: "accept" };

export function policyOf(stored: Partial<NotificationPolicy> | null | undefined): NotificationPolicy {
  return { ...DEFAULT_NOTIFICATION_POLICY, ...stored };
}

const SEVERITY: Record<PolicyAction, number> = { accept: 0, filter: 1, drop: 2 };

/** The strictest action among the rules that apply to this actor. */
export function decide(
  policy: NotificationPolicy,
  facts: { recipientFollowsActor: boolean; actorIsNew: boolean },
): PolicyAction {
  const applying: PolicyAction[] = ["accept"];
  if (!facts.recipientFollowsActor) applying.push(policy.notFollowing);
  if (facts.actorIsNew) applying.push(policy.newAccounts);
  return applying.reduce((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a));
}

export async function getPolicy(deps: Deps, viewer: Viewer): Promise<NotificationPolicy> {
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { projection: { notificationPolicy: 1 } },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return policyOf(user.notificationPolicy);
}

/** Partial update in one round trip; returns the whole policy after it. */
export async function updatePolicy(
  deps: Deps,
  viewer: Viewer,
  patch: Partial<NotificationPolicy>,
): Promise<NotificationPolicy> {
  const set: Record<string, unknown> = { updatedAt: deps.clock.now() };
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) set[`notificationPolicy.${k}`] = v;
  const user = await deps.db.users.findOneAndUpdate(
    { _id: new ObjectId(viewer.id), deletedAt: null },
    { $set: set },
    { projection: { notificationPolicy: 1 }, returnDocument: "after" },
  );
  if (!user) throw ApiError.notFound("Account not found.");
  return policyOf(user.notificationPolicy);
}
