import type { PageQuery } from "../../core/schemas";
import type { Viewer } from "../../core/viewer";
import type { ReferralDoc, ReferralTrigger, RejectionReason, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { paginate } from "../../platform/mongo/paginate";
import { countInWindow, runOp } from "../../platform/redis-ops";
import { addHours, DAY_SECONDS, utcDay } from "../../platform/time";
import { moveGems } from "../gems/ledger";
import { ledgerKeys } from "../gems/ledger-keys";
import { notify } from "../notifications/service";
import { activeReferralBonus, isBanned, toPublicUser } from "../users/schema";
import { loadSelf } from "../users/service";
import type { ReferralItem, ReferralSummary } from "./schema";

const OPEN = { validated: false, status: { $ne: "rejected" } } as const;

export type ReferralOutcome = "validated" | "rejected" | "capped" | "not_yet" | "not_applicable";

/**
 * Called when a referred user does something that shows they are real (a post, a check-in on a later day
 * than signup). Validates their referral once: anti-abuse checks first (OWASP API6 "referral farming": the two
 * accounts may share no device and no IP hash), then whether the referred account has lived like a real one —
 * at least REFERRAL_MIN_ACCOUNT_AGE_HOURS old, with a post and activity on REFERRAL_MIN_ACTIVE_DAYS distinct
 * UTC days (one generation from a throwaway account is not enough; until then the referral waits, and the next
 * post or check-in asks again) — then a conditional update that only one caller can win, then the referrer's
 * daily cap, then the referrer's bonus and their 2× window (`referralBonusExpiresAt`), applied by the ledger
 * in the same update as the gems.
 */
export async function validateReferral(
  deps: Deps,
  referredUserId: ObjectId,
  trigger: ReferralTrigger,
): Promise<ReferralOutcome> {
  if (!deps.config.gems.referral.validateOn.includes(trigger)) return "not_applicable";
  const referral = await deps.db.referrals.findOne({ referredUserId, ...OPEN });
  if (!referral) return "not_applicable";
  const { rejection, referred } = await abuseCheck(deps, referral);
  if (!rejection && referred && !livedIn(referred, deps.clock.now(), deps.config.gems.referral)) return "not_yet";
  if (rejection) {
    await deps.db.referrals.updateOne(
      { _id: referral._id, ...OPEN },
      { $set: { status: "rejected", rejectedReason: rejection, validatedAt: null } },
    );
    deps.log.info("referral rejected", { referralId: referral._id.toHexString(), reason: rejection });
    return "rejected";
  }
  // Claim first (only one caller per referral gets past this), then count it against the referrer's daily
  // cap: the counter only ever moves for a won claim, so exactly the cap's worth validate however many
  // triggers race. Over the cap, the claim is undone and the referral waits for a later day's activity.
  const now = deps.clock.now();
  const { bonus, windowHours } = deps.config.gems.referral;
  const claimed = await deps.db.referrals.findOneAndUpdate(
    { _id: referral._id, ...OPEN },
    {
      $set: {
        validated: true,
        status: "validated",
        trigger,
        validatedAt: now,
        bonusGemsAwarded: bonus,
        bonusMultiplierActive: true,
        bonusExpiresAt: addHours(now, windowHours),
        rewardTransactionId: null,
      },
    },
    { returnDocument: "after" },
  );
  if (!claimed) return "validated"; // another request validated it first
  const capKey = deps.keys.fraudReferrals(referral.referrerId.toHexString(), utcDay(now));
  // The counter outlives its UTC day a little; a fresh key is used each day.
  const today = await runOp(deps.redis, countInWindow(capKey, 2 * DAY_SECONDS));
  if (today > deps.config.gems.referral.dailyCap) {
    await Promise.all([
      runOp(deps.redis, countInWindow(capKey, 2 * DAY_SECONDS, -1)),
      deps.db.referrals.updateOne(
        { _id: referral._id, rewardTransactionId: null },
        {
          $set: {
            validated: false,
            status: "pending",
            trigger: null,
            validatedAt: null,
            bonusGemsAwarded: 0,
            bonusMultiplierActive: false,
            bonusExpiresAt: null,
          },
        },
      ),
    ]);
    return "capped";
  }
  await payReferral(deps, claimed);
  return "validated";
}

/**
 * Pays a validated referral's bonus to the referrer and opens (or extends) their multiplier window, keyed by
 * the referral so a retry or the reconciliation job can never pay twice.
 */
export async function payReferral(deps: Deps, referral: ReferralDoc): Promise<void> {
  const expires = referral.bonusExpiresAt ?? deps.clock.now();
  const effect = { $max: { referralBonusExpiresAt: expires }, $inc: { referralCount: 1 } };
  let entryId: ObjectId;
  if (referral.bonusGemsAwarded > 0) {
    const { entry, replayed } = await moveGems(deps, {
      userId: referral.referrerId,
      type: "earn",
      source: "referral",
      amount: referral.bonusGemsAwarded,
      referenceType: "referral",
      referenceId: referral._id.toHexString(),
      description: "A friend you invited joined",
      idempotencyKey: ledgerKeys.referralBonus(referral._id.toHexString()),
      effect,
    });
    entryId = entry._id;
    if (!replayed) await notifyReferrer(deps, referral);
  } else {
    await deps.db.users.updateOne({ _id: referral.referrerId }, effect);
    entryId = referral._id; // nothing to pay: mark it done
  }
  await deps.db.referrals.updateOne({ _id: referral._id }, { $set: { rewardTransactionId: entryId } });
}

async function notifyReferrer(deps: Deps, referral: ReferralDoc): Promise<void> {
  const { referralMultiplier } = deps.config.gems;
  await notify(deps, {
    type: "system",
    kind: "referral",
    recipientId: referral.referrerId,
    title: `A friend you invited joined: +${referral.bonusGemsAwarded} gems`,
    body: `Your posts earn ${referralMultiplier}× gems for the next ${deps.config.gems.referral.windowHours} hours.`,
    actionType: "open_profile",
    actionPayload: { userId: referral.referredUserId.toHexString() },
  });
}

type Trace = Pick<
  UserDoc,
  | "_id"
  | "devices"
  | "deletedAt"
  | "bannedAt"
  | "banExpiresAt"
  | "shadowBanned"
  | "createdAt"
  | "totalPosts"
  | "lastActiveDate"
>;

/**
 * Whether a referred account has lived like a real one: old enough, with a post, and active on enough distinct
 * UTC days (its signup day counts as one, its last active day as another when later).
 */
export function livedIn(
  user: Pick<UserDoc, "createdAt" | "totalPosts" | "lastActiveDate">,
  now: Date,
  rules: { minAccountAgeHours: number; minActiveDays: number },
): boolean {
  const ageHours = (now.getTime() - user.createdAt.getTime()) / 3_600_000;
  const signupDay = utcDay(user.createdAt);
  const activeDays = 1 + (user.lastActiveDate && user.lastActiveDate > signupDay ? 1 : 0);
  return ageHours >= rules.minAccountAgeHours && (user.totalPosts ?? 0) >= 1 && activeDays >= rules.minActiveDays;
}

/** Why a referral must not pay (or null), and the referred account as read. Two reads in parallel. */
async function abuseCheck(
  deps: Deps,
  referral: ReferralDoc,
): Promise<{ rejection: RejectionReason | null; referred: Trace | undefined }> {
  const verdict = (rejection: RejectionReason | null, referred?: Trace) => ({ rejection, referred });
  if (referral.fraudScore >= 1 || referral.referrerId.equals(referral.referredUserId)) {
    return verdict("self_referral");
  }
  const pair = [referral.referrerId, referral.referredUserId];
  const [people, sessions] = await Promise.all([
    deps.db.users.find(
      { _id: { $in: pair } },
      {
        projection: {
          devices: 1,
          deletedAt: 1,
          bannedAt: 1,
          banExpiresAt: 1,
          shadowBanned: 1,
          createdAt: 1,
          totalPosts: 1,
          lastActiveDate: 1,
        },
        limit: 2,
      },
    ) as Promise<Trace[]>,
    deps.db.sessions.find(
      { userId: { $in: pair } },
      { projection: { userId: 1, ipHash: 1, deviceId: 1 }, sort: { createdAt: -1 }, limit: 500 },
    ),
  ]);
  const now = deps.clock.now();
  const referrer = people.find((p) => p._id.equals(referral.referrerId));
  const referred = people.find((p) => p._id.equals(referral.referredUserId));
  const unavailable = (u: Trace | undefined) => !u || u.deletedAt != null || isBanned(u, now) || u.shadowBanned;
  if (unavailable(referrer) || unavailable(referred)) return verdict("account_unavailable", referred);

  const traces = (id: ObjectId, user: Trace | undefined) => {
    const mine = sessions.filter((s) => s.userId.equals(id));
    return {
      devices: new Set(
        [...(user?.devices ?? []).map((d) => d.deviceId), ...mine.map((s) => s.deviceId)].filter(Boolean),
      ),
      ips: new Set(mine.map((s) => s.ipHash)),
    };
  };
  const a = traces(referral.referrerId, referrer);
  const b = traces(referral.referredUserId, referred);
  if (referral.deviceId) b.devices.add(referral.deviceId);
  if (referral.ipHash) b.ips.add(referral.ipHash);
  if ([...b.devices].some((d) => a.devices.has(d))) return verdict("shared_device", referred);
  if ([...b.ips].some((ip) => a.ips.has(ip))) return verdict("shared_ip", referred);
  return verdict(null, referred);
}

/** Validated referrals whose bonus was not paid (the request stopped in between); reconciliation pays them. */
export async function payUnpaidReferrals(deps: Deps, since: Date, before: Date): Promise<number> {
  const unpaid = await deps.db.referrals.find(
    { validated: true, rewardTransactionId: null, validatedAt: { $gte: since, $lt: before } },
    { limit: 1_000 },
  );
  for (const referral of unpaid) await payReferral(deps, referral);
  return unpaid.length;
}

/** The caller's code, how many people they brought, their active bonus window and who they invited. */
export async function myReferrals(deps: Deps, viewer: Viewer, query: PageQuery): Promise<ReferralSummary> {
  const [user, page] = await Promise.all([
    loadSelf(deps, viewer),
    paginate(deps.db.referrals, {
      filter: { referrerId: new ObjectId(viewer.id) },
      order: { direction: "desc" },
      limit: query.limit,
      cursor: query.cursor,
    }),
  ]);
  const ids = page.items.map((r) => r.referredUserId);
  const people = ids.length
    ? await deps.db.users.find({ _id: { $in: ids }, deletedAt: null }, { limit: ids.length })
    : [];
  const byId = new Map(people.map((p) => [p._id.toHexString(), toPublicUser(p)]));
  const items: ReferralItem[] = page.items.map((r) => ({
    id: r._id.toHexString(),
    user: byId.get(r.referredUserId.toHexString()) ?? null,
    status: r.status ?? (r.validated ? "validated" : "pending"),
    bonusGems: r.validated ? r.bonusGemsAwarded : 0,
    createdAt: r.createdAt.toISOString(),
    validatedAt: r.validatedAt?.toISOString() ?? null,
  }));
  return {
    code: user.referralCode,
    referralCount: user.referralCount ?? 0,
    bonusActiveUntil: activeReferralBonus(user, deps.clock.now())?.toISOString() ?? null,
    items,
    nextCursor: page.nextCursor,
  };
}
