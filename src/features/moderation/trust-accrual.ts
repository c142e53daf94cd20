import type { Job, JobContext, JobReport } from "../../core/jobs";
import { DAY_MS, utcDay } from "../../platform/time";
import { TRUST_START } from "./trust";

/**
 * Time and clean activity raise trust slowly: once a day, every account that checked in
 * yesterday or today, is neither banned nor shadow-banned, and has no sanction in the last
 * MODERATION_TRUST_CLEAN_DAYS gains MODERATION_TRUST_DAILY_GAIN, up to MODERATION_TRUST_GAIN_CAP. One
 * server-side update; `trustAccruedOn` makes a second run on the same day (or a re-run after a crash) a no-op.
 */
export async function accrueTrust(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const { dailyGain, gainCap, cleanDays } = deps.config.moderation.trust;
  if (dailyGain <= 0) return { more: false };
  const now = deps.clock.now();
  const today = utcDay(now);
  const result = await deps.db.users.updateMany(
    {
      deletedAt: null,
      bannedAt: null,
      shadowBanned: { $ne: true },
      // Check-ins are dated in each user's zone, which can be a day ahead of UTC (UTC+14): tomorrow counts too.
      lastActiveDate: {
        $gte: utcDay(new Date(now.getTime() - DAY_MS)),
        $lte: utcDay(new Date(now.getTime() + DAY_MS)),
      },
      trustAccruedOn: { $ne: today },
      $and: [
        { $or: [{ trustScore: { $lt: gainCap } }, { trustScore: null }] },
        {
          $or: [
            { lastSanctionedAt: null },
            { lastSanctionedAt: { $lt: new Date(now.getTime() - cleanDays * DAY_MS) } },
          ],
        },
      ],
    },
    [
      {
        $set: {
          trustScore: { $min: [gainCap, { $add: [{ $ifNull: ["$trustScore", TRUST_START] }, dailyGain] }] },
          trustAccruedOn: today,
        },
      },
    ],
  );
  ctx.count("users", result.modifiedCount);
  return { more: false };
}

export const trustAccrualJob: Job = {
  name: "trust-accrual",
  description: "Raises the trust score of active accounts without recent sanctions a little, once a day.",
  run: accrueTrust,
};
