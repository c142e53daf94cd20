import { bestEffort } from "../../core/best-effort";
import { fillCache } from "../../core/cache";
import type { Viewer } from "../../core/viewer";
import type { GemTransactionDoc, TransactionSource, TransactionType, UserDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import {
  addOncePerEntry,
  both,
  deleteKeys,
  getField,
  type RedisOp,
  removeFromSortedSets,
  runOp,
  runOps,
  setField,
  standing,
  topMembers,
} from "../../platform/redis-ops";
import { DAY_SECONDS, HOUR_MS, HOUR_SECONDS, utcDay } from "../../platform/time";
import { toPublicUser } from "../users/schema";
import { currentWindows, type LeaderboardPeriod, type PeriodWindow, periodWindow } from "./periods";
import type { Leaderboard, LeaderboardItem } from "./schema";

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
export const COUNTED_EARNINGS = {
  status: "applied",
  type: "earn",
  source: { $in: [...LEADERBOARD_SOURCES] },
  amount: { $gt: 0 },
} as const;

export function countsOnLeaderboard(entry: { type: TransactionType; source: TransactionSource; amount: number }) {
  return entry.type === "earn" && entry.amount > 0 && LEADERBOARD_SOURCES.includes(entry.source);
}

export type Earning = Pick<GemTransactionDoc, "_id" | "userId" | "amount" | "createdAt">;

/** Redis seconds-since-epoch at which a period's board may go: its end plus the configured retention. */
export function boardExpiry(deps: Deps, w: PeriodWindow): number | null {
  if (!w.end) return null;
  return Math.ceil(w.end.getTime() / 1000) + deps.config.gems.leaderboard.retainHours * HOUR_SECONDS;
}

/** Entries stay in a "counted" set this long: longer than any retry or crash recovery takes. */
const COUNTED_TTL_SECONDS = 3 * DAY_SECONDS;

/**
 * Adds ledger earnings to the current daily, weekly and all-time boards, each entry at most once, in one
 * round trip. Never throws: the ledger is the record, the boards a view of it that the `leaderboards` job
 * rebuilds if Redis loses them.
 */
export async function recordEarnings(deps: Deps, earnings: Earning[]): Promise<number> {
  const counted = earnings.filter((e) => e.amount > 0);
  if (counted.length === 0) return 0;
  try {
    const [daily, weekly, alltime] = currentWindows(deps.clock.now(), deps.keys) as [
      PeriodWindow,
      PeriodWindow,
      PeriodWindow,
    ];
    const byDay = new Map<string, Earning[]>();
    for (const e of counted) {
      const day = utcDay(e.createdAt);
      const group = byDay.get(day);
      if (group) group.push(e);
      else byDay.set(day, [e]);
    }
    const ops = Object.fromEntries(
      [...byDay].map(([day, entries]) => [
        day,
        addOncePerEntry(
          {
            counted: { key: deps.keys.leaderboardCounted(day), ttlSeconds: COUNTED_TTL_SECONDS },
            daily: { key: daily.key, expireAt: boardExpiry(deps, daily) ?? 0 },
            weekly: { key: weekly.key, expireAt: boardExpiry(deps, weekly) ?? 0 },
            alltime: { key: alltime.key },
          },
          entries.map((e) => ({ id: e._id.toHexString(), member: e.userId.toHexString(), amount: e.amount })),
        ),
      ]),
    );
    const stale = deleteKeys([daily, weekly, alltime].map((w) => deps.keys.leaderboardPage(w.key)));
    const [added] = await runOp(deps.redis, both(combined(ops), stale));
    return added;
  } catch (error) {
    deps.log.error("leaderboard update failed", { entries: counted.length, error: String(error) });
    return 0;
  }
}

/** Several counting operations as one, resolving to their sum. */
function combined(ops: Record<string, RedisOp<number>>): RedisOp<number> {
  const parts = Object.values(ops);
  return {
    replies: parts.reduce((n, o) => n + o.replies, 0),
    queue: (p) => {
      for (const o of parts) o.queue(p);
    },
    result: (replies) => {
      let at = 0;
      let sum = 0;
      for (const o of parts) {
        sum += o.result(replies.slice(at, at + o.replies));
        at += o.replies;
      }
      return sum;
    },
  };
}

const REPAIR_PAGE = 1_000;

/**
 * Adds to today's boards any of today's recent earnings a crash kept off them (the process died between the
 * ledger write and the board update). Adding is idempotent per entry, so entries already counted cost nothing
 * but the read. Returns how many were missing.
 */
export async function restoreRecentEarnings(deps: Deps): Promise<number> {
  const now = deps.clock.now();
  const todayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const windowMs = deps.config.gems.leaderboard.repairWindowHours * HOUR_MS;
  const filter: Record<string, unknown> = {
    ...COUNTED_EARNINGS,
    createdAt: { $gte: new Date(Math.max(todayStart, now.getTime() - windowMs)) },
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

/**
 * Takes a user off every current board (banned, shadow-banned, deleted); a rebuild leaves them off too. Best
 * effort: boards never show such accounts anyway (the page's people are read with those filters).
 */
export async function removeFromLeaderboards(deps: Deps, userId: string): Promise<void> {
  await bestEffort(deps, "leaderboard removal", () => runOp(deps.redis, leaderboardRemoval(deps, userId)));
}

/** `removeFromLeaderboards` as an operation, to run in a pipeline with others. */
export function leaderboardRemoval(deps: Deps, userId: string): RedisOp<unknown> {
  const keys = currentWindows(deps.clock.now(), deps.keys).map((w) => w.key);
  return both(removeFromSortedSets(keys, userId), deleteKeys(keys.map(deps.keys.leaderboardPage)));
}

/**
 * The top of a board and the caller's standing. Warm, one Redis round trip: the rendered page (kept
 * LEADERBOARD_PAGE_CACHE_TTL_SECONDS, dropped whenever earnings are added or someone is taken off) beside the
 * caller's rank. Equal scores share a rank. People who can no longer be shown (deleted, banned,
 * shadow-banned) are left out of the page. The boards live in Redis only (rebuilt from the ledger by the
 * `leaderboards` job), so without Redis this is a 503.
 */
export async function leaderboard(
  deps: Deps,
  viewer: Viewer | undefined,
  period: LeaderboardPeriod,
  limit: number,
): Promise<Leaderboard> {
  const w = periodWindow(period, deps.clock.now(), deps.keys);
  const pageKey = deps.keys.leaderboardPage(w.key);
  const field = String(limit);
  // The people on top come rendered from a short-lived cache; the caller's own rank is read fresh beside it,
  // and so are the top scores (a cheap range read), so that a miss costs no second round trip.
  const { cached, top, me } = await runOps(deps.redis, {
    cached: getField<LeaderboardItem[]>(pageKey, field),
    top: topMembers(w.key, limit),
    ...(viewer ? { me: standing(w.key, viewer.id) } : {}),
  } as {
    cached: ReturnType<typeof getField<LeaderboardItem[]>>;
    top: ReturnType<typeof topMembers>;
    me?: ReturnType<typeof standing>;
  });
  if (cached) return { period, items: cached, me: me ?? null };
  const items = await rankedPeople(deps, top);
  await fillCache(
    deps,
    setField(pageKey, field, items, deps.config.gems.leaderboard.pageCacheTtlSeconds),
    "board page",
  );
  return { period, items, me: me ?? null };
}

/** Board entries with the people behind them; people who can no longer be shown are left out. */
async function rankedPeople(deps: Deps, top: { member: string; score: number }[]): Promise<LeaderboardItem[]> {
  const people = top.length
    ? await deps.db.users.find(
        {
          _id: { $in: top.map((t) => new ObjectId(t.member)) },
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
    const person = byId.get(t.member);
    // Ties share the rank of the first in the run (the list is sorted by score, descending).
    const previous = top[i - 1];
    const rank = previous && previous.score === t.score ? (items.at(-1)?.rank ?? i + 1) : i + 1;
    if (person) items.push({ rank, user: toPublicUser(person), score: t.score });
  });
  return items;
}
