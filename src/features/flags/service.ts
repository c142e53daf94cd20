import { bestEffort } from "../../core/best-effort";
import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { FeatureFlagDoc, StoredVariant } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { fromStoredJson, toStoredJson } from "../../platform/mongo/client-json";
import { batchOn, deleteKeys, getValue, readOrMiss, runOp, setValue } from "../../platform/redis-ops";
import { SECOND_MS } from "../../platform/time";
import { inRollout, pickVariant } from "./bucketing";
import type { EvaluatedFlags, FlagBody, FlagList, FlagRule, FlagView } from "./schema";

let memory: { rules: FlagRule[]; expiresAt: number } | null = null;

export interface FlagSubject {
  /** User id when signed in, else the device id (anonymous bucketing). */
  id: string | null;
  tier: string;
  userId: string | null;
  overrides: Record<string, boolean>;
}

/**
 * Pure evaluation, in Unleash's order: a per-user override wins; a disabled flag is off (kill switch);
 * listed users are on; other tiers are off; then the gradual rollout decides. Variants only for enabled flags.
 */
export function evaluate(rules: FlagRule[], subject: FlagSubject): EvaluatedFlags {
  const flags: EvaluatedFlags["flags"] = {};
  const variants: EvaluatedFlags["variants"] = {};
  for (const rule of rules) {
    let on: boolean;
    if (rule.name in subject.overrides) on = Boolean(subject.overrides[rule.name]);
    else if (!rule.enabled) on = false;
    else if (subject.userId && rule.targetUserIds.includes(subject.userId)) on = true;
    else if (rule.targetTiers.length > 0 && !rule.targetTiers.includes(subject.tier)) on = false;
    else on = subject.id ? inRollout(subject.id, rule.name, rule.rolloutPercentage) : rule.rolloutPercentage >= 100;
    flags[rule.name] = on;
    if (on && subject.id && rule.variants.length) {
      const v = pickVariant(subject.id, rule.name, rule.variants);
      if (v) variants[rule.name] = { name: v.name, config: v.config };
    }
  }
  return { flags, variants };
}

function toRule(doc: FeatureFlagDoc): FlagRule {
  return {
    name: doc.name,
    enabled: doc.enabled,
    rolloutPercentage: doc.rolloutPercentage,
    targetTiers: doc.targetTiers ?? [],
    targetUserIds: (doc.targetUserIds ?? []).map((id) => id.toHexString()),
    variants: (doc.variants ?? []).map(variantOf),
  };
}

/** A stored variant as rules and views show it: its config back as the JSON object that was sent. */
function variantOf(v: StoredVariant): FlagRule["variants"][number] {
  const config = v.configJson === undefined ? (v.config ?? {}) : fromStoredJson(v.configJson);
  return { name: v.name, weight: v.weight, config: config as Record<string, unknown> };
}

/**
 * The rule set: isolate memory, then `flags:all` in Redis, then MongoDB. Usually no round trip at all; without
 * Redis, MongoDB (and the isolate keeps the rules in memory as usual).
 */
export async function loadRules(deps: Deps): Promise<FlagRule[]> {
  const now = Date.now();
  if (memory && memory.expiresAt > now) return memory.rules;
  const key = deps.keys.flagsAll();
  let { rules } = await readOrMiss(batchOn(deps.redis), { rules: getValue<FlagRule[]>(key) }, deps.log);
  if (!rules) {
    const loaded = (await deps.db.featureFlags.find({}, { sort: { name: 1 }, limit: 1000 })).map(toRule);
    await bestEffort(deps, "flag rules cache fill", () =>
      runOp(deps.redis, setValue(key, loaded, deps.config.flags.cacheTtlSeconds)),
    );
    rules = loaded;
  }
  // How long this isolate trusts its in-memory copy before asking Redis again.
  memory = { rules, expiresAt: now + deps.config.flags.localCacheTtlSeconds * SECOND_MS };
  return rules;
}

/** Flags for the caller: anonymous callers by device id; signed-in callers' results cached per user. */
export async function flagsFor(
  deps: Deps,
  viewer: Viewer | undefined,
  deviceId: string | null,
): Promise<EvaluatedFlags> {
  const rules = await loadRules(deps);
  if (!viewer) return evaluate(rules, { id: deviceId, tier: "free", userId: null, overrides: {} });
  const key = deps.keys.flagsUser(viewer.id);
  const { cached } = await readOrMiss(batchOn(deps.redis), { cached: getValue<EvaluatedFlags>(key) }, deps.log);
  if (cached) return cached;
  const user = await deps.db.users.findOne(
    { _id: new ObjectId(viewer.id) },
    { projection: { featureFlags: 1, tier: 1 } },
  );
  const result = evaluate(rules, {
    id: viewer.id,
    tier: user?.tier ?? viewer.tier,
    userId: viewer.id,
    overrides: user?.featureFlags ?? {},
  });
  await bestEffort(deps, "flag results cache fill", () =>
    runOp(deps.redis, setValue(key, result, deps.config.flags.userCacheTtlSeconds)),
  );
  return result;
}

function toView(doc: FeatureFlagDoc): FlagView {
  return {
    name: doc.name,
    description: doc.description,
    enabled: doc.enabled,
    rolloutPercentage: doc.rolloutPercentage,
    targetTiers: doc.targetTiers as FlagView["targetTiers"],
    targetUserIds: doc.targetUserIds.map((id) => id.toHexString()),
    isExperiment: doc.isExperiment,
    variants: (doc.variants ?? []).map(variantOf),
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}

export async function listFlags(deps: Deps): Promise<FlagList> {
  return { items: (await deps.db.featureFlags.find({}, { sort: { name: 1 }, limit: 1000 })).map(toView) };
}

/**
 * Drops the caches a rule change makes stale: `flags:all` and this isolate's memory at once; per-user
 * results expire within FLAGS_USER_CACHE_TTL_SECONDS and other isolates' memory within FLAGS_LOCAL_CACHE_TTL_SECONDS.
 * Best effort: without Redis the change stands and `flags:all` expires within FLAGS_CACHE_TTL_SECONDS.
 */
async function invalidate(deps: Deps): Promise<void> {
  memory = null;
  await bestEffort(deps, "flag rules cache drop", () => runOp(deps.redis, deleteKeys([deps.keys.flagsAll()])));
}

export async function putFlag(deps: Deps, name: string, body: FlagBody): Promise<FlagView> {
  const now = deps.clock.now();
  const doc = await deps.db.featureFlags.findOneAndUpdate(
    { name },
    {
      $set: {
        ...body,
        targetUserIds: body.targetUserIds.map((id) => new ObjectId(id)),
        variants: body.variants.map(
          (v): StoredVariant => ({ name: v.name, weight: v.weight, configJson: toStoredJson(v.config) }),
        ),
        updatedAt: now,
      },
      $setOnInsert: { name, createdAt: now },
    },
    { upsert: true, returnDocument: "after" },
  );
  await invalidate(deps);
  if (!doc) throw new Error("flag upsert returned nothing");
  return toView(doc);
}

export async function deleteFlag(deps: Deps, name: string): Promise<void> {
  const removed = await deps.db.featureFlags.deleteOne({ name });
  if (removed === 0) throw ApiError.notFound("No such flag.");
  await invalidate(deps);
}

/** Test seam: forget the isolate's in-memory rule set. */
export function forgetRulesInMemory(): void {
  memory = null;
}
