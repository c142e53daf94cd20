import type { Deps } from "../../deps";
import type { Viewer } from "../../http/context";
import type { JobContext, JobReport } from "../../jobs/types";
import { utcDay } from "../../platform/clock";
import { ObjectId } from "../../platform/ids";
import type { TransactionSource, TransactionType } from "../gems/schema";
import { type PublicUser, toPublicUser, type UserDoc } from "../users/schema";
import { currentWindows, type LeaderboardPeriod, type PeriodWindow, periodWindow } from "./periods";

/**
 * Gems earned by taking part count; gifts and admin adjustments do not, so a place on a board can be neither
 * bought nor handed over.
 */
export const LEADERBOARD_SOURCES: readonly TransactionSource[] = [
  "votes",
  "daily_login",
  "streak_bonus",
  "referral",
  "trending_bonus",
];

/** The ledger entries that count, as a query: `countsOnLeaderboard` for the rebuild and the repair. */
const COUNTED_EARNINGS = {
  status: "applied",
  type: "earn",
  source: { $in: [...LEADERBOARD_SOURCES] },
  amount: { $gt: 0 },
} as const;

export function countsOnLeaderboard(entry: { type: TransactionType; source: TransactionSource; amount: number }) {
  return entry.type === "earn" && entry.amount > 0 && LEADERBOARD_SOURCES.includes(entry.source);
}

export interface Earning {
  _id: ObjectId;
  userId: ObjectId;
  amount: number;
  createdAt: Date;
}

/** Redis seconds-since-epoch at which a period's board may go: its end plus the configured retention. */
function expiry(deps: Deps, w: PeriodWindow): number | null {
  if (!w.end) return null;
  return Math.ceil(w.end.getTime() / 1000) + deps.config.gems.leaderboard.retainHours * 3_600;
}

// Adds each ledger entry to the three boards at most once: the entry id goes into a per-day "counted" set in
// the same atomic script, so a retry, a re-run after a crash or two overlapping jobs can't count it twice.
const ADD_EARNINGS = `local added = 0
for i = 4, #ARGV, 3 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    for k = 2, 4 do redis.call('ZINCRBY', KEYS[k], ARGV[i + 2], ARGV[i + 1]) end
    added = added + 1
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[2], ARGV[2])
redis.call('EXPIREAT', KEYS[3], ARGV[3])
return added`;

/** Entries stay in a "counted" set this long: longer than any retry or crash recovery takes. */
const COUNTED_TTL_SECONDS = 3 * 86_400;

/**
 * Adds ledger earnings to the current daily, weekly and all-time boards, each entry at most once, in one
 * round trip. Never throws: the ledger is the record, the boards a view of it that the `leaderboards` job
 * rebuilds if Redis loses them.
 */
export async function recordEarnings(deps: Deps, earnings: Earning[]): Promise<number> {
  const counted = earnings.filter((e) => e.amount > 0);
  if (counted.length === 0) return 0;
  try {
    const [daily, weekly, alltime] = currentWindows(deps.clock.now(), deps.keys);
    const byDay = new Map<string, Earning[]>();
    for (const e of counted) {
      const day = utcDay(e.createdAt);
      const group = byDay.get(day);
      if (group) group.push(e);
      else byDay.set(day, [e]);
    }
    const pipeline = deps.redis.pipeline();
    for (const [day, entries] of byDay) {
      pipeline.eval(
        ADD_EARNINGS,
        [deps.keys.leaderboardCounted(day), daily!.key, weekly!.key, alltime!.key],
        [
          COUNTED_TTL_SECONDS,
          expiry(deps, daily!)!,
          expiry(deps, weekly!)!,
          ...entries.flatMap((e) => [e._id.toHexString(), e.userId.toHexString(), e.amount]),
        ],
      );
    }
    const added = (await pipeline.exec()) as number[];
    return added.reduce((sum, n) => sum + Number(n), 0);
  } catch (error) {
    deps.log.error("leaderboard update failed", { entries: counted.length, error: String(error) });
    return 0;
  }
}

const REPAIR_PAGE = 1_000;
/** How far back the repair looks: a little over the reconciliation job's hourly period. */
const REPAIR_WINDOW_MS = 2 * 3_600_000;

/**
 * Adds to today's boards any of today's recent earnings a crash kept off them (the process died between the
 * ledger write and the board update). Adding is idempotent per entry, so entries already counted cost nothing
 * but the read. Returns how many were missing.
 */
export async function restoreRecentEarnings(deps: Deps): Promise<number> {
  const now = deps.clock.now();
  const todayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const filter: Record<string, unknown> = {
    ...COUNTED_EARNINGS,
    createdAt: { $gte: new Date(Math.max(todayStart, now.getTime() - REPAIR_WINDOW_MS)) },
  };
  let restored = 0;
  for (;;) {
    const page = await deps.db.gemTransactions.find(filter, {
      sort: { _id: 1 },
      limit: REPAIR_PAGE,
      projection: { userId: 1, amount: 1, createdAt: 1 },
    });
    restored += await recordEarnings(deps, page);
    const last = page.at(-1);
    if (page.length < REPAIR_PAGE || !last) return restored;
    filter._id = { $gt: last._id };
  }
}

/** Takes a user off every current board (banned, shadow-banned, deleted); a rebuild leaves them off too. */
export async function removeFromLeaderboards(deps: Deps, userId: string): Promise<void> {
  const pipeline = deps.redis.pipeline();
  for (const w of currentWindows(deps.clock.now(), deps.keys)) pipeline.zrem(w.key, userId);
  await pipeline.exec();
}

// The caller's standing with ties shared: 1 + how many scored strictly more ("1, 2, 2, 4").
const STANDING = `local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return false end
return {redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf') + 1, s}`;

export interface LeaderboardItem {
  rank: number;
  user: PublicUser;
  score: number;
}

export interface Leaderboard {
  period: LeaderboardPeriod;
  items: LeaderboardItem[];
  me: { rank: number; score: number } | null;
}

/**
 * The top of a board and the caller's standing, in one Redis round trip (plus one MongoDB read for the
 * people). Equal scores share a rank. People who can no longer be shown (deleted, banned, shadow-banned)
 * are left out of the page.
 */
export async function leaderboard(
  deps: Deps,
  viewer: Viewer | undefined,
  period: LeaderboardPeriod,
  limit: number,
): Promise<Leaderboard> {
  const w = periodWindow(period, deps.clock.now(), deps.keys);
  const pipeline = deps.redis.pipeline();
  pipeline.zrange(w.key, 0, limit - 1, { rev: true, withScores: true });
  if (viewer) pipeline.eval(STANDING, [w.key], [viewer.id]);
  const [flat, standing] = (await pipeline.exec()) as [(string | number)[], [number, string] | null | undefined];

  const top: { id: string; score: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) top.push({ id: String(flat[i]), score: Number(flat[i + 1]) });
  const people = top.length
    ? await deps.db.users.find(
        {
          _id: { $in: top.map((t) => new ObjectId(t.id)) },
          deletedAt: null,
          bannedAt: null,
          shadowBanned: { $ne: true },
        },
        { limit: top.length },
      )
    : [];
  const byId = new Map<string, UserDoc>(people.map((p) => [p._id.toHexString(), p]));
  const items: LeaderboardItem[] = [];
  top.forEach((t, i) => {
    const person = byId.get(t.id);
    // Ties share the rank of the first in the run (the list is sorted by score, descending).
    const rank = i > 0 && top[i - 1]!.score === t.score ? (items.at(-1)?.rank ?? i + 1) : i + 1;
    if (person) items.push({ rank, user: toPublicUser(person), score: t.score });
  });
  const me = standing ? { rank: Number(standing[0]), score: Number(standing[1]) } : null;
  return { period, items, me };
}

/**
 * Rebuilds any current board Redis has lost, from the ledger (the record of every gem earned). Writing goes
 * through a scratch key merged with `ZUNIONSTORE … AGGREGATE MAX`, so increments that arrived meanwhile are
 * kept and nothing is counted twice. A board that exists costs one `EXISTS` in the pipeline.
 */
export async function rebuildLeaderboards(ctx: JobContext): Promise<JobReport> {
  const { deps } = ctx;
  const windows = currentWindows(deps.clock.now(), deps.keys);
  const present = deps.redis.pipeline();
  for (const w of windows) present.exists(w.key);
  const exists = (await present.exec()) as number[];
  for (const [i, w] of windows.entries()) {
    if (exists[i]) continue;
    const scores = await ledgerScores(deps, w);
    ctx.count(`${w.period}Users`, scores.length);
    if (scores.length > 0) {
      await writeBoard(deps, w, scores);
      ctx.count("rebuilt");
    }
    await ctx.checkpoint(`rebuilt-${w.period}`);
  }
  return { more: false };
}

async function ledgerScores(deps: Deps, w: PeriodWindow): Promise<{ id: string; score: number }[]> {
  const match: Record<string, unknown> = { ...COUNTED_EARNINGS };
  if (w.start && w.end) match.createdAt = { $gte: w.start, $lt: w.end };
  const sums = await deps.db.gemTransactions.aggregate<{ _id: ObjectId; score: number }>([
    { $match: match },
    { $group: { _id: "$userId", score: { $sum: "$amount" } } },
  ]);
  if (sums.length === 0) return [];
  const hidden = await deps.db.users.find(
    {
      _id: { $in: sums.map((s) => s._id) },
      $or: [{ deletedAt: { $ne: null } }, { bannedAt: { $ne: null } }, { shadowBanned: true }],
    },
    { projection: { _id: 1 }, limit: sums.length },
  );
  const skip = new Set(hidden.map((h) => h._id.toHexString()));
  return sums.map((s) => ({ id: s._id.toHexString(), score: s.score })).filter((s) => !skip.has(s.id));
}

const WRITE_CHUNK = 1_000;

async function writeBoard(deps: Deps, w: PeriodWindow, scores: { id: string; score: number }[]): Promise<void> {
  const scratch = `${w.key}:rebuild`;
  const pipeline = deps.redis.pipeline();
  pipeline.del(scratch);
  for (let i = 0; i < scores.length; i += WRITE_CHUNK) {
    const [first, ...rest] = scores.slice(i, i + WRITE_CHUNK).map((s) => ({ score: s.score, member: s.id }));
    if (first) pipeline.zadd(scratch, first, ...rest);
  }
  pipeline.zunionstore(w.key, 2, [w.key, scratch], { aggregate: "max" });
  pipeline.del(scratch);
  const at = expiry(deps, w);
  if (at !== null) pipeline.expireat(w.key, at);
  await pipeline.exec();
}
