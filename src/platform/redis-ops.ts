import { EJSON } from "./ejson";
import { StoreUnavailableError } from "./errors";
import type { Logger } from "./logger";
import { decide, type RateLimitDecision } from "./ratelimit";
import type { Redis } from "./redis";
import type { Pipeline } from "./upstash";

/**
 * Named Redis operations with typed results. Every Lua script the API runs lives here; features say what
 * they want (`ops.slidingWindow(...)`, `ops.addToCountedSet(...)`) and get named results back, never a
 * pipeline reply by position. Several operations run in one round trip with `runOps(redis, { a, b })`.
 */
export interface RedisOp<T> {
  /** Adds this operation's commands to the pipeline, in order. */
  queue(pipeline: Pipeline): void;
  /** How many replies those commands produce. */
  readonly replies: number;
  /** The typed result, from exactly those replies. */
  result(replies: unknown[]): T;
}

/** A read of something Redis only caches: when Redis cannot answer, it is a miss (`miss`), not an error. */
export interface CacheRead<T> extends RedisOp<T> {
  readonly miss: T;
}

export type OpResults<M extends Record<string, RedisOp<unknown>>> = {
  [K in keyof M]: M[K] extends RedisOp<infer T> ? T : never;
};

/** Runs a set of named operations in one pipelined round trip and returns their results by name. */
export async function runOps<M extends Record<string, RedisOp<unknown>>>(redis: Redis, ops: M): Promise<OpResults<M>> {
  const entries = Object.entries(ops);
  // Nothing to send (no ops, or only ops with nothing to do, e.g. deleting no keys): no round trip.
  if (entries.every(([, op]) => op.replies === 0)) {
    return Object.fromEntries(entries.map(([name, op]) => [name, op.result([])])) as OpResults<M>;
  }
  const pipeline = redis.pipeline();
  for (const [, op] of entries) op.queue(pipeline);
  const replies = (await pipeline.exec()) as unknown[];
  const out: Record<string, unknown> = {};
  let at = 0;
  for (const [name, op] of entries) {
    out[name] = op.result(replies.slice(at, at + op.replies));
    at += op.replies;
  }
  return out as OpResults<M>;
}

/** Runs one operation on its own (one round trip). */
export async function runOp<T>(redis: Redis, op: RedisOp<T>): Promise<T> {
  return (await runOps(redis, { op })).op as T;
}

/** A batch of operations a request runs; the rate limiter may add its own check to the first one. */
export type RedisBatch = <M extends Record<string, RedisOp<unknown>>>(ops: M) => Promise<OpResults<M>>;

/** A plain batch runner (jobs, and requests whose first batch carries nothing else). */
export function batchOn(redis: Redis): RedisBatch {
  return (ops) => runOps(redis, ops);
}

/** Two operations as one (queued back to back, in one round trip), resolving to both results. */
export function both<A, B>(a: RedisOp<A>, b: RedisOp<B>): RedisOp<[A, B]> {
  return {
    replies: a.replies + b.replies,
    queue: (p) => {
      a.queue(p);
      b.queue(p);
    },
    result: (r) => [a.result(r.slice(0, a.replies)), b.result(r.slice(a.replies))],
  };
}

/**
 * Runs cache reads as one batch; when Redis cannot answer, every read comes back as its miss, so the caller
 * goes on to MongoDB (fail-open reads). Refills the caller then attempts fail at once in the same request
 * (see io.ts) and must be best effort.
 */
export async function readOrMiss<M extends Record<string, CacheRead<unknown>>>(
  batch: RedisBatch,
  ops: M,
  log: Logger,
): Promise<OpResults<M>> {
  try {
    return await batch(ops);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    (error.repeated ? log.debug : log.warn)("cache read missed: redis unavailable", {
      reads: Object.keys(ops),
      error: error.message,
    });
    return Object.fromEntries(Object.entries(ops).map(([name, read]) => [name, read.miss])) as OpResults<M>;
  }
}

const num = (v: unknown): number => Number(v ?? 0);
const op = <T>(replies: number, queue: (p: Pipeline) => void, result: (r: unknown[]) => T): RedisOp<T> => ({
  replies,
  queue,
  result,
});

// ---- Plain values ----

/** GET a JSON value (the client decodes it); null when missing, or when Redis cannot answer in `readOrMiss`. */
export const getValue = <T>(key: string): CacheRead<T | null> => ({
  ...op(
    1,
    (p) => p.get(key),
    ([v]) => (v ?? null) as T | null,
  ),
  miss: null,
});

/** MGET: one value per key, null where missing. */
export const getValues = <T>(keys: string[]): CacheRead<(T | null)[]> => ({
  ...(keys.length === 0
    ? op(
        0,
        () => {},
        () => [],
      )
    : op(
        1,
        (p) => p.mget(...keys),
        ([v]) => ((v ?? []) as (T | null)[]).map((x) => x ?? null),
      )),
  miss: keys.map(() => null),
});

/**
 * A cached copy of a stored document, with its ObjectIds and Dates intact (kept as canonical EJSON). Only for
 * documents without client-supplied free-form objects, whose `$`-keys EJSON would read as types.
 */
export const getDocument = <T>(key: string): CacheRead<T | null> => ({
  ...op(
    1,
    (p) => p.get(key),
    ([v]) => (v == null ? null : (EJSON.deserialize(v) as T)),
  ),
  miss: null,
});

/**
 * GETDEL of a cached document (see `getDocument`): the copy is read and dropped in one step, for a writer that
 * must drop it before its change and can use what it held; null when there was none.
 */
export const takeDocument = <T>(key: string): RedisOp<T | null> =>
  op(
    1,
    (p) => p.getdel(key),
    ([v]) => (v == null ? null : (EJSON.deserialize(v) as T)),
  );

/** Caches a stored document for `ttlSeconds` (see `getDocument`). */
export const setDocument = (key: string, document: object, ttlSeconds: number): RedisOp<void> =>
  op(
    1,
    (p) => p.set(key, EJSON.serialize(document, { relaxed: false }), { ex: ttlSeconds }),
    () => undefined,
  );

/** SET with an expiry in seconds. */
export const setValue = (key: string, value: unknown, ttlSeconds: number): RedisOp<void> =>
  op(
    1,
    (p) => p.set(key, value, { ex: ttlSeconds }),
    () => undefined,
  );

/** HGET of a JSON value (the client decodes it). */
export const getField = <T>(key: string, field: string): RedisOp<T | null> =>
  op(
    1,
    (p) => p.hget(key, field),
    ([v]) => (v ?? null) as T | null,
  );

/** HSET of one field, keeping the whole hash no longer than `ttlSeconds` from the first field written. */
export const setField = (key: string, field: string, value: unknown, ttlSeconds: number): RedisOp<void> =>
  op(
    2,
    (p) => {
      p.hset(key, { [field]: value });
      p.expire(key, ttlSeconds, "NX");
    },
    () => undefined,
  );

/** DEL of any number of keys; resolves to how many existed. */
export const deleteKeys = (keys: string[]): RedisOp<number> =>
  keys.length === 0
    ? op(
        0,
        () => {},
        () => 0,
      )
    : op(
        1,
        (p) => p.del(...keys),
        ([n]) => num(n),
      );

// ---- Counters and sets ----

/** INCRBY + EXPIRE: a counter for a window (a daily quota); resolves to the count after this change. */
export const countInWindow = (key: string, ttlSeconds: number, by = 1): RedisOp<number> =>
  op(
    2,
    (p) => {
      p.incrby(key, by);
      p.expire(key, ttlSeconds);
    },
    ([n]) => num(n),
  );

/**
 * INCR + EXPIRE of each key: moves change counters (cache generations: a cached value is good only while the
 * counter it was computed under is current). Resolves to the new values.
 */
export const advanceGenerations = (keys: string[], ttlSeconds: number): RedisOp<number[]> =>
  op(
    keys.length * 2,
    (p) => {
      for (const key of keys) {
        p.incr(key);
        p.expire(key, ttlSeconds);
      }
    },
    (r) => r.filter((_, i) => i % 2 === 0).map(num),
  );

/** SADD + EXPIRE + SCARD: adds a member to a set that lives `ttlSeconds`; resolves to the set's size. */
export const addToCountedSet = (key: string, member: string, ttlSeconds: number): RedisOp<number> =>
  op(
    3,
    (p) => {
      p.sadd(key, member);
      p.expire(key, ttlSeconds);
      p.scard(key);
    },
    ([, , n]) => num(n),
  );

/** SADD of members to a set with no expiry (e.g. the posts whose counters moved). */
export const addMembers = (key: string, members: string[]): RedisOp<void> =>
  members.length === 0
    ? op(
        0,
        () => {},
        () => undefined,
      )
    : op(
        1,
        (p) => p.sadd(key, members[0] as string, ...members.slice(1)),
        () => undefined,
      );

// Moves a counter only while it exists (a missing one is seeded from the source of truth instead).
const INCREMENT_IF_PRESENT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return n`;

/** Moves a live counter by `by` if it exists; resolves to its new value, or null when it is missing. */
export const incrementIfPresent = (key: string, by: number, ttlSeconds: number): RedisOp<number | null> =>
  op(
    1,
    (p) => p.eval(INCREMENT_IF_PRESENT, [key], [by, ttlSeconds]),
    ([n]) => (n === null || n === undefined || n === false ? null : num(n)),
  );

// Creates a counter from a count just taken unless another request created it meanwhile; returns the value.
const SEED_COUNTER = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return tonumber(ARGV[1]) end
return tonumber(redis.call('GET', KEYS[1]) or ARGV[1])`;

/** Seeds a missing live counter with `count` (SET NX); resolves to the counter's value afterwards. */
export const seedCounter = (key: string, count: number, ttlSeconds: number): RedisOp<number> =>
  op(
    1,
    (p) => p.eval(SEED_COUNTER, [key], [count, ttlSeconds]),
    ([n]) => num(n),
  );

// Counts a view once per viewer per window: the viewer's marker is set only if absent; a signed-out view also
// passes the per-IP cap (KEYS[4], ARGV[4]). A counted view moves the pending delta and marks the post dirty.
const COUNT_VIEW_ONCE = `
local counted = 0
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  counted = 1
  if KEYS[4] then
    local n = redis.call('INCR', KEYS[4])
    if n == 1 then redis.call('EXPIRE', KEYS[4], ARGV[1]) end
    if n > tonumber(ARGV[4]) then counted = 0 end
  end
  if counted == 1 then
    redis.call('INCR', KEYS[2])
    redis.call('EXPIRE', KEYS[2], ARGV[2])
    redis.call('SADD', KEYS[3], ARGV[3])
  end
end
return {counted, tonumber(redis.call('GET', KEYS[2]) or '0')}`;

export interface ViewCount {
  /** Whether this view was counted (a first view from this viewer in the window, within the IP cap). */
  counted: boolean;
  /** Views counted and not yet written to the store, this one included. */
  pending: number;
}

/**
 * Counts a view of `member` once per viewer marker and window. `perIp` (signed-out viewers) adds a cap on
 * views from one address in the window. Counted views move `pendingKey` and add `member` to `dirtyKey`.
 */
export const countViewOnce = (v: {
  viewerKey: string;
  windowSeconds: number;
  pendingKey: string;
  pendingTtlSeconds: number;
  dirtyKey: string;
  member: string;
  perIp?: { key: string; cap: number };
}): RedisOp<ViewCount> =>
  op(
    1,
    (p) =>
      p.eval(
        COUNT_VIEW_ONCE,
        [v.viewerKey, v.pendingKey, v.dirtyKey, ...(v.perIp ? [v.perIp.key] : [])],
        [v.windowSeconds, v.pendingTtlSeconds, v.member, ...(v.perIp ? [v.perIp.cap] : [])],
      ),
    ([r]) => {
      const [counted, pending] = (r ?? [0, 0]) as unknown[];
      return { counted: num(counted) === 1, pending: num(pending) };
    },
  );

// Takes each key's numeric value and clears it atomically (a delta counted meanwhile waits for the next take).
const TAKE_AND_CLEAR = `
local out = {}
for i, key in ipairs(KEYS) do out[i] = tonumber(redis.call('GETDEL', key) or '0') end
return out`;

/** GETDEL of numeric deltas, one per key (0 where missing). */
export const takeAndClear = (keys: string[]): RedisOp<number[]> =>
  keys.length === 0
    ? op(
        0,
        () => {},
        () => [],
      )
    : op(
        1,
        (p) => p.eval(TAKE_AND_CLEAR, keys, []),
        ([v]) => ((v ?? []) as unknown[]).map(num),
      );

// Moves up to N random members from one set to another atomically (work taken into an in-progress set).
const MOVE_RANDOM_MEMBERS = `
local ids = redis.call('SPOP', KEYS[1], ARGV[1])
if #ids > 0 then redis.call('SADD', KEYS[2], unpack(ids)) end
return ids`;

/** SPOP up to `count` members of `from` into `to`; resolves to the members moved. */
export const moveRandomMembers = (from: string, to: string, count: number): RedisOp<string[]> =>
  op(
    1,
    (p) => p.eval(MOVE_RANDOM_MEMBERS, [from, to], [count]),
    ([v]) => ((v ?? []) as unknown[]).map(String),
  );

/** SRANDMEMBER of up to `count` members. */
export const someMembers = (key: string, count: number): RedisOp<string[]> =>
  op(
    1,
    (p) => p.srandmember(key, count),
    ([v]) => ((v ?? []) as unknown[]).map(String),
  );

/** SREM of members. */
export const removeMembers = (key: string, members: string[]): RedisOp<void> =>
  members.length === 0
    ? op(
        0,
        () => {},
        () => undefined,
      )
    : op(
        1,
        (p) => p.srem(key, ...members),
        () => undefined,
      );

// ---- Rate limits ----

/**
 * Sliding-window rate limiter (the two-window approximation used by Cloudflare and Upstash): the count of the
 * previous fixed window is weighted by how much of it still overlaps the sliding window. One hash per
 * subject holds both windows; one EVAL per check, on Redis's clock so isolates with skewed clocks agree.
 */
const SLIDING_WINDOW = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = math.floor(now / window)
local counts = redis.call('HMGET', key, current, current - 1)
local cur = tonumber(counts[1] or '0')
local prev = tonumber(counts[2] or '0')
local elapsed = (now % window) / window
local allowed = 0
if prev * (1 - elapsed) + cur < limit then allowed = 1 end
local mode = ARGV[3] or 'check'
if mode == 'add' or (mode == 'check' and allowed == 1) then
  cur = redis.call('HINCRBY', key, current, 1)
  redis.call('HDEL', key, current - 2)
  redis.call('PEXPIRE', key, window * 2)
end
return {allowed, cur, prev, now}`;

/**
 * How a sliding-window call counts: `check` counts the request when allowed (a rate limit); `peek` only
 * reads; `add` counts whatever the outcome (failures recorded after the fact, e.g. wrong passwords).
 */
export type WindowMode = "check" | "peek" | "add";

/** One sliding-window call: by default a check that counts the request when allowed. */
export const slidingWindow = (
  key: string,
  limit: number,
  windowSeconds: number,
  mode: WindowMode = "check",
): RedisOp<RateLimitDecision> =>
  op(
    1,
    (p) => p.eval(SLIDING_WINDOW, [key], [limit, windowSeconds * 1000, mode]),
    ([reply]) => {
      const [allowed, current, previous, nowMs] = (reply as number[]).map(num) as [number, number, number, number];
      return decide({ allowed: allowed === 1, current, previous, nowMs }, limit, windowSeconds);
    },
  );

// ---- Leaderboards ----

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

export interface CountedBoards {
  /** The set of entry ids already counted, and how long it lives. */
  counted: { key: string; ttlSeconds: number };
  /** Boards with an end: their keys and when (epoch seconds) each may go. */
  daily: { key: string; expireAt: number };
  weekly: { key: string; expireAt: number };
  /** The board that never ends. */
  alltime: { key: string };
}

/** Adds each `{ id, member, amount }` to the three boards once per id; resolves to how many were new. */
export const addOncePerEntry = (
  boards: CountedBoards,
  entries: { id: string; member: string; amount: number }[],
): RedisOp<number> =>
  op(
    1,
    (p) =>
      p.eval(
        ADD_EARNINGS,
        [boards.counted.key, boards.daily.key, boards.weekly.key, boards.alltime.key],
        [
          boards.counted.ttlSeconds,
          boards.daily.expireAt,
          boards.weekly.expireAt,
          ...entries.flatMap((e) => [e.id, e.member, e.amount]),
        ],
      ),
    ([n]) => num(n),
  );

// A member's standing with ties shared: 1 + how many scored strictly more ("1, 2, 2, 4").
const STANDING = `local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return false end
return {redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf') + 1, s}`;

/** A member's rank (ties share one) and score on a sorted set, or null without a score. */
export const standing = (key: string, member: string): RedisOp<{ rank: number; score: number } | null> =>
  op(
    1,
    (p) => p.eval(STANDING, [key], [member]),
    ([v]) => {
      if (!Array.isArray(v)) return null;
      return { rank: num(v[0]), score: num(v[1]) };
    },
  );

/** The top `count` members of a sorted set, highest score first. */
export const topMembers = (key: string, count: number): RedisOp<{ member: string; score: number }[]> =>
  op(
    1,
    (p) => p.zrange(key, 0, count - 1, { rev: true, withScores: true }),
    ([flat]) => {
      const list = (flat ?? []) as (string | number)[];
      const out: { member: string; score: number }[] = [];
      for (let i = 0; i + 1 < list.length; i += 2) out.push({ member: String(list[i]), score: num(list[i + 1]) });
      return out;
    },
  );

/** ZREM of a member from several sorted sets. */
export const removeFromSortedSets = (keys: string[], member: string): RedisOp<void> =>
  op(
    keys.length,
    (p) => {
      for (const key of keys) p.zrem(key, member);
    },
    () => undefined,
  );

/** EXISTS per key, as booleans in the same order. */
export const keysExist = (keys: string[]): RedisOp<boolean[]> =>
  op(
    keys.length,
    (p) => {
      for (const key of keys) p.exists(key);
    },
    (r) => r.map((n) => num(n) > 0),
  );

/**
 * Replaces-or-merges a sorted set from scores computed elsewhere: written to a scratch key, merged with
 * `ZUNIONSTORE … AGGREGATE MAX` (so increments that landed meanwhile are kept), then the scratch key dropped.
 */
export const mergeSortedSet = (
  key: string,
  scores: { member: string; score: number }[],
  expireAt: number | null,
  chunk = 1_000,
): RedisOp<void> => {
  const scratch = `${key}:rebuild`;
  const chunks: { member: string; score: number }[][] = [];
  for (let i = 0; i < scores.length; i += chunk) chunks.push(scores.slice(i, i + chunk));
  return op(
    3 + chunks.length + (expireAt === null ? 0 : 1),
    (p) => {
      p.del(scratch);
      for (const c of chunks) {
        const [first, ...rest] = c.map((s) => ({ score: s.score, member: s.member }));
        if (first) p.zadd(scratch, first, ...rest);
      }
      p.zunionstore(key, 2, [key, scratch], { aggregate: "max" });
      p.del(scratch);
      if (expireAt !== null) p.expireat(key, expireAt);
    },
    () => undefined,
  );
};

// ---- Guarded sets (a cache of a set kept in the store, safe against a rebuild racing a change) ----

/** The member that marks a guarded set as loaded (an empty Redis set does not exist). */
export const GUARDED_SET_LOADED = "~";
const LOADED = GUARDED_SET_LOADED;

export interface GuardedSet {
  /** The members, or null when the set is not cached (rebuild it from the store). */
  members: string[] | null;
  /** The set's change counter when read; a rebuild writes only if no change happened since. */
  generation: string;
}

/** SMEMBERS + GET of a guarded set and its change counter (a miss: not cached, rebuild it from the store). */
export const readGuardedSet = (key: string, generationKey: string): CacheRead<GuardedSet> => ({
  ...op(
    2,
    (p) => {
      p.smembers(key);
      p.get(generationKey);
    },
    ([members, generation]) => {
      const all = ((members ?? []) as unknown[]).map(String);
      return {
        members: all.includes(LOADED) ? all.filter((m) => m !== LOADED) : null,
        generation: String(generation ?? "0"),
      };
    },
  ),
  // No generation was read: a rebuild then cached would be refused by any counter that has moved.
  miss: { members: null, generation: "unread" },
});

// Writes a rebuilt set only if its change counter still has the value read before the rebuild.
const FILL_GUARDED_SET = `
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1`;

/** Caches a set rebuilt from the store, unless it changed since `generation` was read; resolves to whether it did. */
export const fillGuardedSet = (
  key: string,
  generationKey: string,
  generation: string,
  members: string[],
  ttlSeconds: number,
): RedisOp<boolean> =>
  op(
    1,
    (p) => p.eval(FILL_GUARDED_SET, [key, generationKey], [generation, ttlSeconds, LOADED, ...members]),
    ([n]) => num(n) === 1,
  );

// Moves the change counter (so a rebuild in flight discards its result), then edits a cached set in place.
const CHANGE_GUARDED_SET = `
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local adding = tonumber(ARGV[2])
  for i = 3, 2 + adding do redis.call('SADD', KEYS[1], ARGV[i]) end
  for i = 3 + adding, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
end
return 1`;

/** Applies a change already made in the store to a cached guarded set (a set not cached stays so). */
export const changeGuardedSet = (
  key: string,
  generationKey: string,
  change: { add: string[]; remove: string[] },
  generationTtlSeconds: number,
): RedisOp<void> =>
  op(
    1,
    (p) =>
      p.eval(
        CHANGE_GUARDED_SET,
        [key, generationKey],
        [generationTtlSeconds, change.add.length, ...change.add, ...change.remove],
      ),
    () => undefined,
  );

// ---- Guarded values (a cached copy of one stored document, safe against a rebuild racing a change) ----

export interface GuardedValue<T> {
  /** The cached value, or null when not cached (rebuild it from the store). */
  value: T | null;
  /** The value's change counter when read; a rebuild writes only if no change happened since. */
  generation: string;
}

/** GET of a guarded value and its change counter. */
export const readGuardedValue = <T>(key: string, generationKey: string): RedisOp<GuardedValue<T>> =>
  op(
    2,
    (p) => {
      p.get(key);
      p.get(generationKey);
    },
    ([value, generation]) => ({ value: (value ?? null) as T | null, generation: String(generation ?? "0") }),
  );

// Writes a rebuilt value only if its change counter still has the value read before the rebuild.
const FILL_GUARDED_VALUE = `
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
return 1`;

/** Caches a value rebuilt from the store unless it changed since `generation` was read; resolves to whether it did. */
export const fillGuardedValue = (
  key: string,
  generationKey: string,
  generation: string,
  value: unknown,
  ttlSeconds: number,
): RedisOp<boolean> =>
  op(
    1,
    (p) => p.eval(FILL_GUARDED_VALUE, [key, generationKey], [generation, ttlSeconds, JSON.stringify(value)]),
    ([n]) => num(n) === 1,
  );

/** After a change in the store: moves the change counter (a rebuild in flight is discarded) and drops the copy. */
export const dropGuardedValue = (key: string, generationKey: string, generationTtlSeconds: number): RedisOp<void> =>
  op(
    3,
    (p) => {
      p.incr(generationKey);
      p.expire(generationKey, generationTtlSeconds);
      p.del(key);
    },
    () => undefined,
  );

/** GETDEL: takes a one-time value (a ticket), so two redemptions cannot both get it. */
export const takeValue = <T>(key: string): RedisOp<T | null> =>
  op(
    1,
    (p) => p.getdel(key),
    ([v]) => (v ?? null) as T | null,
  );

/** PUBLISH to a pub/sub channel; resolves to how many subscribers got it. */
export const publish = (channel: string, message: string): RedisOp<number> =>
  op(
    1,
    (p) => p.publish(channel, message),
    ([n]) => num(n),
  );

// Moves the change counter (a rebuild in flight then discards its result) and drops the cached set.
const FORGET_GUARDED_SET = `
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1`;

/** Drops a cached guarded set ahead of a change to the store, so the next read rebuilds it from there. */
export const forgetGuardedSet = (key: string, generationKey: string, generationTtlSeconds: number): RedisOp<void> =>
  op(
    1,
    (p) => p.eval(FORGET_GUARDED_SET, [key, generationKey], [generationTtlSeconds]),
    () => undefined,
  );

/** SMISMEMBER: whether each of `members` is in the set. */
export const areMembers = (key: string, members: string[]): RedisOp<boolean[]> =>
  members.length === 0
    ? op(
        0,
        () => {},
        () => [],
      )
    : op(
        1,
        (p) => p.smismember(key, members),
        ([r]) => ((r ?? []) as unknown[]).map((v) => num(v) === 1),
      );
// Takes up to ARGV[2] units from a budget of ARGV[1] per key (a window counter), atomically; returns how many.
const RESERVE_UP_TO = `local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.max(0, math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used))
if granted > 0 then
  redis.call('INCRBY', KEYS[1], granted)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
end
return granted`;

/**
 * Reserves up to `want` units of a per-window budget of `limit` (e.g. pushes per user per hour) in one atomic
 * step; resolves to the units granted. Units not used are given back with `countInWindow(key, ttl, -n)`.
 */
export const reserveUpTo = (key: string, limit: number, want: number, ttlSeconds: number): RedisOp<number> =>
  op(
    1,
    (p) => p.eval(RESERVE_UP_TO, [key], [limit, want, ttlSeconds]),
    ([n]) => num(n),
  );

// ---- Leases ----

/** SET NX PX: takes a lease for `owner`; resolves to true when this call got it. */
export const acquireLease = (key: string, owner: string, ttlMs: number): RedisOp<boolean> =>
  op(
    1,
    (p) => p.set(key, owner, { nx: true, px: ttlMs }),
    ([v]) => v === "OK",
  );

// Deletes the lease only if this owner still holds it, so a run that overran its lease never frees another's.
const RELEASE_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Releases a lease if `owner` still holds it; resolves to whether it did. */
export const releaseLease = (key: string, owner: string): RedisOp<boolean> =>
  op(
    1,
    (p) => p.eval(RELEASE_LEASE, [key], [owner]),
    ([n]) => num(n) === 1,
  );

/**
 * SET NX GET: claims `key` with `value` unless it is set; resolves to the value already there (null when this
 * call claimed it). Idempotency records and one-shot locks.
 */
export const claimOrGet = <T>(key: string, value: unknown, ttlSeconds: number): RedisOp<T | null> =>
  op(
    1,
    (p) => p.set(key, value, { nx: true, get: true, ex: ttlSeconds }),
    ([v]) => (v ?? null) as T | null,
  );

/** SET XX with an expiry: replaces an existing value only. */
export const replaceValue = (key: string, value: unknown, ttlSeconds: number): RedisOp<void> =>
  op(
    1,
    (p) => p.set(key, value, { xx: true, ex: ttlSeconds }),
    () => undefined,
  );

// ---- Turns (one action per key per interval) ----

// Takes the turn if free (SET NX PX); otherwise says how long until it frees.
const TAKE_TURN = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
return redis.call('PTTL', KEYS[1])`;

/** Takes a turn that lasts `ttlMs` (slow mode); when taken by an earlier call, how long until it frees. */
export const takeTurn = (key: string, owner: string, ttlMs: number): RedisOp<{ taken: boolean; waitMs: number }> =>
  op(
    1,
    (p) => p.eval(TAKE_TURN, [key], [owner, ttlMs]),
    ([v]) => {
      const n = num(v);
      return n === -1 ? { taken: true, waitMs: 0 } : { taken: false, waitMs: Math.max(0, n) };
    },
  );

// ---- Live streams: viewers by heartbeat ----

/** The three keys of one live stream's audience (see keys.streamLive / streamViewers / streamUniqueViewers). */
export interface StreamAudienceKeys {
  live: string;
  viewers: string;
  uniques: string;
}

const audienceKeys = (k: StreamAudienceKeys) => [k.live, k.viewers, k.uniques];

// A heartbeat. The live hash (host, cohosts, peak, hostSeenAt) exists only while the stream is live. A host's
// beat says they are still there; a viewer's beat moves them to now in the sorted set (GT: an isolate with a
// late clock never moves anyone back), drops everyone whose last beat is a lifetime old or older, and keeps the
// peak and the set of everyone who watched. Viewers blocked with the host (ARGV[5..]) are refused.
const STREAM_HEARTBEAT = `local host = redis.call('HGET', KEYS[1], 'host')
if not host then return {0} end
for i = 5, #ARGV do if ARGV[i] == host then return {-1} end end
local me = ARGV[1]
local cohosts = redis.call('HGET', KEYS[1], 'cohosts') or ''
if me == host or string.find(' ' .. cohosts .. ' ', ' ' .. me .. ' ', 1, true) then
  redis.call('HSET', KEYS[1], 'hostSeenAt', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return {2}
end
local now = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], 'GT', now, me)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
local current = redis.call('ZCARD', KEYS[2])
redis.call('SADD', KEYS[3], me)
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak') or '0')
if current > peak then
  peak = current
  redis.call('HSET', KEYS[1], 'peak', peak)
end
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[4]) end
return {1, current, peak, redis.call('SCARD', KEYS[3])}`;

export type HeartbeatResult =
  | { kind: "not_live" }
  | { kind: "blocked" }
  | { kind: "host" }
  | { kind: "viewer"; current: number; peak: number; unique: number };

/** One heartbeat of `viewerId` at `nowMs` (see STREAM_HEARTBEAT): one round trip. */
export const streamHeartbeat = (
  keys: StreamAudienceKeys,
  beat: { viewerId: string; nowMs: number; lifetimeMs: number; ttlSeconds: number; blockedIds: string[] },
): RedisOp<HeartbeatResult> =>
  op(
    1,
    (p) =>
      p.eval(STREAM_HEARTBEAT, audienceKeys(keys), [
        beat.viewerId,
        beat.nowMs,
        beat.lifetimeMs,
        beat.ttlSeconds,
        ...beat.blockedIds,
      ]),
    ([v]) => {
      const [kind, current, peak, unique] = ((v ?? [0]) as unknown[]).map(num);
      if (kind === -1) return { kind: "blocked" };
      if (kind === 2) return { kind: "host" };
      if (kind === 1) return { kind: "viewer", current: current ?? 0, peak: peak ?? 0, unique: unique ?? 0 };
      return { kind: "not_live" };
    },
  );

// Current viewers (pruned as they are read), peak and everyone who watched, for each stream (3 keys each); a
// stream that is not live (no live hash) is left alone and reads as zeros. The peak takes the count read now
// into account, so a count shown is never above the peak shown.
const STREAM_AUDIENCES = `local out = {}
local now = tonumber(ARGV[1])
local lifetime = tonumber(ARGV[2])
for i = 1, #KEYS, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', now - lifetime)
    local current = redis.call('ZCARD', KEYS[i + 1])
    local peak = tonumber(redis.call('HGET', KEYS[i], 'peak') or '0')
    if current > peak then
      peak = current
      redis.call('HSET', KEYS[i], 'peak', peak)
    end
    local seen = tonumber(redis.call('HGET', KEYS[i], 'hostSeenAt') or '0')
    table.insert(out, {1, current, peak, redis.call('SCARD', KEYS[i + 2]), seen})
  else
    table.insert(out, {0, 0, 0, 0, 0})
  end
end
return out`;

export interface StreamAudience {
  /** Whether Redis holds the stream as live (its live hash exists). */
  live: boolean;
  current: number;
  peak: number;
  unique: number;
  /** When a host last heartbeat (epoch ms; 0: never, or not known). */
  hostSeenAt: number;
}

/** The audience of several streams at `nowMs`, in one round trip (none for none). */
export const streamAudiences = (
  streams: StreamAudienceKeys[],
  nowMs: number,
  lifetimeMs: number,
): RedisOp<StreamAudience[]> =>
  streams.length === 0
    ? op(
        0,
        () => {},
        () => [],
      )
    : op(
        1,
        (p) => p.eval(STREAM_AUDIENCES, streams.flatMap(audienceKeys), [nowMs, lifetimeMs]),
        ([v]) =>
          ((v ?? []) as unknown[][]).map((row) => {
            const [live, current, peak, unique, hostSeenAt] = row.map(num);
            return {
              live: live === 1,
              current: current ?? 0,
              peak: peak ?? 0,
              unique: unique ?? 0,
              hostSeenAt: hostSeenAt ?? 0,
            };
          }),
      );

// Marks a stream live: its host and co-hosts (space-separated); the peak survives a repeat.
const STREAM_GO_LIVE = `redis.call('HSET', KEYS[1], 'host', ARGV[1], 'cohosts', ARGV[2])
redis.call('HSETNX', KEYS[1], 'hostSeenAt', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1`;

/** Marks a stream live in Redis (start, or a rebuild after Redis lost it) with its hosts. */
export const markStreamLive = (
  liveKey: string,
  hosts: { hostId: string; cohostIds: string[] },
  nowMs: number,
  ttlSeconds: number,
): RedisOp<void> =>
  op(
    1,
    (p) => p.eval(STREAM_GO_LIVE, [liveKey], [hosts.hostId, hosts.cohostIds.join(" "), nowMs, ttlSeconds]),
    () => undefined,
  );

// Changes the co-hosts of a stream that is live (a stream that is not stays not).
const STREAM_SET_COHOSTS = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cohosts', ARGV[1])
return 1`;

/** The co-hosts of a live stream (their beats count as the hosts', not as viewers). */
export const setStreamCohosts = (liveKey: string, cohostIds: string[]): RedisOp<void> =>
  op(
    1,
    (p) => p.eval(STREAM_SET_COHOSTS, [liveKey], [cohostIds.join(" ")]),
    () => undefined,
  );
