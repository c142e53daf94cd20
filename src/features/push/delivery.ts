import type { Job, JobContext, JobReport } from "../../core/jobs";
import type { NotificationDoc, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { mapWithLimit } from "../../platform/background";
import { type FcmMessage, type FcmSettings, type PushOutcome, sendPush } from "../../platform/fcm";
import { ObjectId } from "../../platform/ids";
import type { BulkOperation } from "../../platform/mongo/client";
import { countInWindow, reserveUpTo, runOps } from "../../platform/redis-ops";
import { HOUR_SECONDS } from "../../platform/time";
import { retryDelaySeconds } from "../mail/delivery";
import { type StoredNotification, titleOf } from "../notifications/service";
import { dropPushTokensOps } from "../users/devices";
import { isBanned } from "../users/schema";
import { groupMessage, summaryMessage } from "./compose";
import {
  capWindow,
  type OwedPush,
  type PushPlan,
  type PushRecipient,
  planPushes,
  quietHoursEnd,
  resolveTimeZone,
} from "./rules";

/**
 * Sends the pushes recipients are owed (`notifications.pushOwed`, recorded by the notification's own write).
 * Called right after a request for the recipients it notified, and by the `push-delivery` sweep for whatever
 * that missed. For a set of recipients, in six steps whatever their number:
 *
 *   1. read the recipients, their owed notifications and unread counts            (MongoDB, one wait)
 *   2. reserve pushes from each recipient's hourly budget                           (Redis, one round trip)
 *   3. claim each group to push individually (one conditional update each, in parallel), and in the same wait
 *      fold, hold back or drop the rest                                             (MongoDB, one wait)
 *   4. read the newest actors' names for the titles                                 (MongoDB, one wait)
 *   5. send, one message per push and device                                        (FCM, in parallel)
 *   6. clear dead tokens, re-owe pushes FCM failed, give back unused budget         (MongoDB + Redis, one wait)
 *
 * The claim (step 3) is the mark, and it comes before the send: a claimed version of a group is never pushed
 * twice, even if this isolate dies after FCM answered. The price is at-most-once for that one version if it dies
 * between claim and send; the next event on the group owes a fresh push, and the inbox has it regardless.
 */

const OWED_PER_RECIPIENT = 50;
const SENDS_IN_FLIGHT = 20;

export interface PushCounts {
  recipients: number;
  pushed: number;
  folded: number;
  held: number;
  dropped: number;
  retried: number;
  failed: number;
  tokensRemoved: number;
}

type Recipient = Pick<
  UserDoc,
  "_id" | "devices" | "notificationPreferences" | "settings" | "deletedAt" | "bannedAt" | "banExpiresAt"
>;

interface Push {
  userId: string;
  /** Notifications this push carries (one for a group push, several for a summary). */
  ids: ObjectId[];
  summary: boolean;
  /** For re-owing a group push: how many sends of this version already failed. */
  attempts: number;
  messages: FcmMessage[];
}

const zero = (): PushCounts => ({
  recipients: 0,
  pushed: 0,
  folded: 0,
  held: 0,
  dropped: 0,
  retried: 0,
  failed: 0,
  tokensRemoved: 0,
});

function fcmSettings(deps: Deps): FcmSettings | null {
  const account = deps.config.push.serviceAccount;
  if (!account) return null;
  return { apiUrl: deps.config.push.fcmApiUrl, account, timeoutMs: deps.config.providerTimeoutMs };
}

/** The immediate attempt after a request: never throws (the sweep picks up whatever fails here). */
export async function pushNow(deps: Deps, recipientIds: ObjectId[]): Promise<void> {
  try {
    await deliverPushes(deps, recipientIds);
  } catch (error) {
    deps.log.warn("push delivery deferred to the sweep", { recipients: recipientIds.length, error: String(error) });
  }
}

export async function deliverPushes(
  deps: Deps,
  recipientIds: ObjectId[],
  checkpoint: (name: string) => Promise<void> = async () => {},
): Promise<PushCounts> {
  const counts = zero();
  const settings = fcmSettings(deps);
  const ids = [...new Map(recipientIds.map((id) => [id.toHexString(), id])).values()];
  if (!settings || ids.length === 0) return counts;
  const now = deps.clock.now();
  const { push } = deps.config;

  // 1. Who they are, what they are owed, and their unread counts (the badge).
  const [people, owedDocs, unreadRows] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: ids } },
      {
        projection: {
          devices: 1,
          notificationPreferences: 1,
          settings: 1,
          deletedAt: 1,
          bannedAt: 1,
          banExpiresAt: 1,
        },
      },
    ),
    deps.db.notifications.find(
      { userId: { $in: ids }, pushOwed: true },
      { projection: { actorIds: 0 }, sort: { updatedAt: -1 }, limit: ids.length * OWED_PER_RECIPIENT },
    ),
    deps.db.notifications.aggregate<{ _id: ObjectId; n: number }>([
      { $match: { userId: { $in: ids }, read: false, filtered: false } },
      { $group: { _id: "$userId", n: { $sum: 1 } } },
    ]),
  ]);
  const byId = new Map((people as Recipient[]).map((p) => [p._id.toHexString(), p]));
  const unread = new Map(unreadRows.map((r) => [r._id.toHexString(), r.n]));
  const owedBy = new Map<string, StoredNotification[]>();
  for (const doc of owedDocs) {
    const key = doc.userId.toHexString();
    owedBy.set(key, [...(owedBy.get(key) ?? []), doc]);
  }
  const docsById = new Map(owedDocs.map((d) => [d._id.toHexString(), d]));
  const users = [...owedBy.keys()];
  counts.recipients = users.length;
  if (users.length === 0) return counts;

  const window = capWindow(now);
  const recipientOf = (userId: string): PushRecipient & { tokens: string[] } => {
    const person = byId.get(userId);
    const tokens = [...new Set((person?.devices ?? []).flatMap((d) => (d.pushToken ? [d.pushToken] : [])))];
    const prefs = person?.notificationPreferences;
    return {
      tokens,
      reachable: Boolean(person && !person.deletedAt && !isBanned(person, now) && tokens.length > 0),
      pushEnabled: prefs?.push !== false,
      marketing: prefs?.marketing === true,
      // No time zone is stored yet (settings come later): quiet hours are read in UTC until then.
      quietUntil: quietHoursEnd(now, prefs?.quietHours, resolveTimeZone(person?.settings?.timezone)),
    };
  };
  const owedOf = (userId: string): OwedPush[] =>
    (owedBy.get(userId) ?? []).map((d) => ({
      id: d._id.toHexString(),
      updatedAt: d.updatedAt,
      held: d.pushHeld === true,
      marketing: d.marketing === true,
    }));
  const recipients = new Map(users.map((u) => [u, recipientOf(u)]));

  // 2. Reserve what the plans want from each hourly budget, then plan with what was granted.
  const wanted = new Map(
    users.map((u) => [u, planPushes(recipients.get(u)!, owedOf(u), Number.POSITIVE_INFINITY, window.endsAt).pushes]),
  );
  const budgetKey = (u: string) => deps.keys.pushesSent(u, window.hour);
  const budgetTtl = 2 * HOUR_SECONDS;
  const granted: Record<string, number> = await runOps(
    deps.redis,
    Object.fromEntries(
      [...wanted].flatMap(([u, n]) =>
        n > 0 ? [[u, reserveUpTo(budgetKey(u), push.maxPerUserPerHour, n, budgetTtl)]] : [],
      ),
    ),
  );
  const plans = new Map<string, PushPlan>(
    users.map((u) => [u, planPushes(recipients.get(u)!, owedOf(u), granted[u] ?? 0, window.endsAt)]),
  );

  // 3. Claim, fold, hold, drop: every state change before any send.
  const claimIds = [...plans.values()].flatMap((p) => p.individual);
  const folds = users.flatMap((u) => {
    const plan = plans.get(u);
    return plan && plan.fold.length > 0 ? [{ userId: u, ids: plan.fold.map((id) => new ObjectId(id)) }] : [];
  });
  const dropIds = [...plans.values()].flatMap((p) => p.drop).map((id) => new ObjectId(id));
  const holds = new Map<number, ObjectId[]>();
  for (const plan of plans.values()) {
    if (!plan.hold) continue;
    const at = plan.hold.until.getTime();
    holds.set(at, [...(holds.get(at) ?? []), ...plan.hold.ids.map((id) => new ObjectId(id))]);
  }
  const done = { pushOwed: false, pushHeld: false, pushedAt: now };
  const [claimed, folded] = await Promise.all([
    Promise.all(
      claimIds.map((id) =>
        deps.db.notifications.findOneAndUpdate(
          { _id: new ObjectId(id), pushOwed: true },
          { $set: done },
          { projection: { actorIds: 0 }, returnDocument: "after" },
        ),
      ),
    ),
    Promise.all(
      folds.map((f) => deps.db.notifications.updateMany({ _id: { $in: f.ids }, pushOwed: true }, { $set: done })),
    ),
    dropIds.length > 0
      ? deps.db.notifications.updateMany(
          { _id: { $in: dropIds }, pushOwed: true },
          { $set: { pushOwed: false, pushHeld: false } },
        )
      : null,
    ...[...holds.entries()].map(([at, held]) =>
      deps.db.notifications.updateMany(
        { _id: { $in: held }, pushOwed: true },
        { $set: { pushHeld: true, pushNotBefore: new Date(at) } },
      ),
    ),
  ]);
  counts.dropped = dropIds.length;
  counts.held = [...holds.values()].reduce((n, held) => n + held.length, 0);

  // 4. Titles name the newest actor: one read for every push of the batch.
  const groups = claimed.filter((d): d is NotificationDoc => d !== null);
  const foldedDocs = folds.flatMap((f, i) =>
    ((folded[i]?.modifiedCount ?? 0) > 0 ? f.ids : []).map((id) => docsById.get(id.toHexString())),
  );
  const actorIds = [...groups, ...foldedDocs].flatMap((d) => (d?.sampleActors?.[0] ? [d.sampleActors[0]] : []));
  const actors = actorIds.length
    ? await deps.db.users.find({ _id: { $in: actorIds } }, { projection: { username: 1 }, limit: actorIds.length })
    : [];
  const names = new Map(actors.map((a) => [a._id.toHexString(), a.username]));
  const titleFor = (d: StoredNotification) => titleOf(d, names.get(d.sampleActors?.[0]?.toHexString() ?? ""));

  const pushes: Push[] = [];
  for (const doc of groups) {
    const userId = doc.userId.toHexString();
    const { tokens } = recipients.get(userId)!;
    const badge = unread.get(userId) ?? 0;
    const group = {
      notificationId: doc._id.toHexString(),
      type: doc.type,
      aggregationKey: doc.aggregationKey,
      aggregationCount: doc.aggregationCount,
      title: titleFor(doc),
      body: doc.body ?? null,
      imageUrl: doc.imageUrl ?? null,
      actionType: doc.actionType ?? null,
      actionPayload: doc.actionPayload ?? {},
    };
    pushes.push({
      userId,
      ids: [doc._id],
      summary: false,
      attempts: doc.pushAttempts ?? 0,
      messages: tokens.map((t) => groupMessage(t, group, badge)),
    });
  }
  folds.forEach((f, i) => {
    const count = folded[i]?.modifiedCount ?? 0;
    // Another sender folded them first: its summary covers them.
    if (count === 0) return;
    const { tokens } = recipients.get(f.userId)!;
    const titles = f.ids.flatMap((id) => {
      const doc = docsById.get(id.toHexString());
      return doc ? [titleFor(doc)] : [];
    });
    const badge = unread.get(f.userId) ?? 0;
    pushes.push({
      userId: f.userId,
      ids: f.ids,
      summary: true,
      attempts: 0,
      messages: tokens.map((t) => summaryMessage(t, count, titles, badge)),
    });
    counts.folded += count;
  });

  // 5. Send: one message per push and device.
  const sends = pushes.flatMap((p, pi) => p.messages.map((m) => ({ pi, message: m })));
  const outcomes = await mapWithLimit(sends, SENDS_IN_FLIGHT, (s) => sendPush(settings, s.message));
  await checkpoint("push-sent");

  // 6. Bookkeeping: dead tokens, pushes to re-owe, budget not used.
  const deadTokens = new Map<string, { userId: ObjectId; tokens: string[] }>();
  const results = pushes.map(() => ({ accepted: false, retry: false, retryAfter: null as number | null }));
  sends.forEach((s, i) => {
    const outcome = outcomes[i] as PushOutcome;
    const push = pushes[s.pi] as Push;
    const result = results[s.pi] as (typeof results)[number];
    if (outcome.kind === "sent") result.accepted = true;
    else if (outcome.kind === "retry") {
      result.retry = true;
      result.retryAfter = Math.max(result.retryAfter ?? 0, outcome.retryAfterSeconds ?? 0) || null;
    } else if (outcome.kind === "bad_token") {
      const entry = deadTokens.get(push.userId) ?? { userId: new ObjectId(push.userId), tokens: [] };
      entry.tokens.push(s.message.token);
      deadTokens.set(push.userId, entry);
    } else {
      deps.log.error("push refused", { userId: push.userId, error: outcome.error });
    }
  });
  const reowe: BulkOperation<NotificationDoc>[] = [];
  const sentPerUser = new Map<string, number>();
  pushes.forEach((push, i) => {
    const result = results[i] as (typeof results)[number];
    if (result.accepted) {
      counts.pushed += 1;
      sentPerUser.set(push.userId, (sentPerUser.get(push.userId) ?? 0) + 1);
      return;
    }
    // Nothing reached any device and FCM asked us to come back: owe it again, later (a summary stays folded).
    if (!result.retry) return;
    const attempts = push.attempts + 1;
    if (attempts >= deps.config.push.maxAttempts) {
      counts.failed += 1;
      return;
    }
    counts.retried += 1;
    const delay = retryDelaySeconds(
      { retryBaseSeconds: deps.config.push.retryBaseSeconds, retryMaxSeconds: HOUR_SECONDS },
      attempts,
      result.retryAfter,
    );
    reowe.push({
      updateMany: {
        filter: { _id: { $in: push.ids }, pushOwed: false, pushedAt: now },
        update: {
          $set: { pushOwed: true, pushHeld: push.summary, pushNotBefore: new Date(now.getTime() + delay * 1000) },
          $inc: { pushAttempts: 1 },
        },
      },
    });
  });
  const giveBack = Object.fromEntries(
    users.flatMap((u) => {
      const unused = (granted[u] ?? 0) - (sentPerUser.get(u) ?? 0);
      return unused > 0 ? [[u, countInWindow(budgetKey(u), budgetTtl, -unused)]] : [];
    }),
  );
  counts.tokensRemoved = [...deadTokens.values()].reduce((n, d) => n + d.tokens.length, 0);
  await Promise.all([
    deadTokens.size > 0 ? deps.db.users.bulkWrite(dropPushTokensOps(deadTokens, now), { ordered: false }) : null,
    reowe.length > 0 ? deps.db.notifications.bulkWrite(reowe, { ordered: false }) : null,
    Object.keys(giveBack).length > 0 ? runOps(deps.redis, giveBack) : null,
  ]);
  return counts;
}

/**
 * The `push-delivery` sweep: recipients with an owed push whose time has come (the immediate attempt missed it,
 * FCM was down, quiet hours or the cap ended), oldest first, in batches within the run's budget.
 */
export async function sweepPushes(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  if (!fcmSettings(deps)) {
    ctx.count("disabled");
    return { more: false };
  }
  const batch = deps.config.push.sweepBatchUsers;
  const margin = Math.min(2_000, deps.config.jobs.timeBudgetMs / 4);
  while (ctx.timeLeft() > margin) {
    const due = await deps.db.notifications.find(
      { pushOwed: true, pushNotBefore: { $lte: deps.clock.now() } },
      { projection: { userId: 1 }, sort: { pushNotBefore: 1 }, limit: batch },
    );
    if (due.length === 0) return { more: false };
    const counts = await deliverPushes(
      deps,
      due.map((d) => d.userId),
      ctx.checkpoint,
    );
    for (const [name, n] of Object.entries(counts)) ctx.count(name, n);
    if (due.length < batch) return { more: false };
  }
  return { more: true };
}

export const pushDeliveryJob: Job = {
  name: "push-delivery",
  description:
    "Sends owed pushes the immediate attempt missed, FCM refused for now, or quiet hours and the cap held back.",
  run: sweepPushes,
};
