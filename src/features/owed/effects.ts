import type { OwedDoc, OwedEffectDoc, OwedState } from "../../db";
import type { Deps } from "../../deps";
import { afterResponse, currentRequestId } from "../../platform/background";
import { newObjectId, type ObjectId } from "../../platform/ids";
import { countOwed } from "../../platform/io";
import { type BatchStep, expectMatch, PreconditionFailedError } from "../../platform/mongo/client";
import { HOUR_MS } from "../../platform/time";

/**
 * What a write owes after its answer, carried out durably and exactly once (see `OwedDoc`).
 *
 * A feature defines each kind of owed effect once, with `defineOwed(kind, handler)`, and gets a builder for it.
 * A write puts the record (`owe(deps, [effects…]).step`) in the same Data API batch as the write itself, so
 * the record exists exactly when the write does, and calls `committed()` once the batch answered: the record
 * is then carried out right after the response, and by the `owed-effects` sweep if that never happens (the
 * isolate died) or fails.
 *
 * A run: take the record (the sweep and takeovers with a guarded update; the request's own run holds it until
 * its grace ends), run every effect's handler, then commit in one transaction the record's move out of
 * `pending` — guarded by this run's claim — with the counter updates the handlers returned, so they land
 * exactly once even when a slow run and a takeover overlap (only one run can make that move). Handlers must
 * therefore keep everything else they do repeatable: a notification counts an actor once per group, a cache
 * drop can happen twice. What they return in `after` (cache drops of what the commit changed, notifications)
 * runs once the commit is in, and the record is `done` only when all of it succeeded; a record left
 * `committed` gets only its follow-ups again, until they do.
 */
export interface OwedOutcome {
  /** Updates that must happen exactly once: committed together with the record's move out of `pending`. */
  commit?: BatchStep<unknown>[];
  /**
   * Repeatable work for after the commit: cache drops of what it changed, notifications (an actor counts once
   * per group). A failure is tried again later; the commit is not.
   */
  after?: () => Promise<void>;
}

export type OwedHandler<D> = (deps: Deps, data: D, owed: { id: ObjectId }) => Promise<OwedOutcome | undefined>;

interface Kind {
  handler: OwedHandler<never>;
  subjects: (data: never) => ObjectId[];
}

const kinds = new Map<string, Kind>();

/**
 * Registers how to carry out one kind of owed effect, and returns the builder a write uses to owe it. `D` is
 * stored as EJSON in the record (ObjectIds and dates survive); keep it to what the handler needs. `subjects`
 * names the people the effect is about, so their export and erasure find the record.
 */
export function defineOwed<D extends object>(
  kind: string,
  handler: OwedHandler<D>,
  subjects: (data: D) => ObjectId[],
): (data: D) => OwedEffectDoc {
  if (kinds.has(kind)) throw new Error(`owed effect "${kind}" is defined twice`);
  kinds.set(kind, { handler: handler as OwedHandler<never>, subjects: subjects as (data: never) => ObjectId[] });
  return (data) => ({ kind, data: data as Record<string, unknown> });
}

/** The people a record's effects are about, once each. */
function subjectsOf(effects: OwedEffectDoc[]): ObjectId[] {
  const ids = effects.flatMap(
    (e) => (kinds.get(e.kind)?.subjects as ((d: unknown) => ObjectId[]) | undefined)?.(e.data) ?? [],
  );
  return [...new Map(ids.map((id) => [id.toHexString(), id])).values()];
}

/** A record of owed effects for one write: the batch step that stores it, and what to call once it committed. */
export interface Owed {
  record: OwedDoc;
  /** Insert the record: put it in the write's own batch (a transaction, or after the write in an ordered one). */
  step: BatchStep<unknown>;
  /** The batch committed: count the record for Server-Timing and carry it out after the response. */
  committed(): void;
}

/**
 * `id`: the record's id, when a later request must find it — a retry whose first attempt's answer was lost
 * carries out what that attempt owed (e.g. the id of the comment the write made; the collections differ).
 */
export function owe(deps: Deps, effects: OwedEffectDoc[], options: { id?: ObjectId } = {}): Owed {
  const now = deps.clock.now();
  const record: OwedDoc = {
    _id: options.id ?? newObjectId(),
    requestId: currentRequestId() ?? null,
    effects,
    subjects: subjectsOf(effects),
    state: "pending",
    createdAt: now,
    dueAt: new Date(now.getTime() + deps.config.owed.sweepGraceSeconds * 1000),
    claimId: null,
    attempts: 0,
    lastError: null,
    doneAt: null,
    expireAt: null,
  };
  return {
    record,
    step: deps.db.owedEffects.inBatch.insertOne(record),
    committed: () => {
      countOwed();
      if (deps.config.owed.afterResponse)
        afterResponse(() => settleOwed(deps, record._id, record).then(() => undefined));
    },
  };
}

export type SettleOutcome = "done" | "taken" | "retry" | "failed";

/** States a run still has work in: nothing done yet, or the counters committed and the follow-ups not. */
export const OPEN: OwedState[] = ["pending", "committed"];

/**
 * Carries out one owed record, if this run can take it. The request that wrote it (`fresh`: the record as
 * written) holds it without a claim of its own until its grace ends: its commit is guarded by nobody having
 * claimed it since. The sweep, or a takeover after a claim ran out, takes it with a guarded update first.
 * Never throws: a failure is recorded on the record, which the sweep tries again after a backoff, until
 * OWED_EFFECTS_MAX_ATTEMPTS.
 */
export async function settleOwed(deps: Deps, id: ObjectId, fresh?: OwedDoc): Promise<SettleOutcome> {
  const { claimSeconds } = deps.config.owed;
  const claimId = fresh ? null : newObjectId().toHexString();
  const now = deps.clock.now();
  let record: OwedDoc | null = fresh ? { ...fresh, attempts: fresh.attempts + 1 } : null;
  if (!fresh) {
    try {
      record = await deps.db.owedEffects.findOneAndUpdate(
        { _id: id, state: { $in: OPEN }, $or: [{ claimId: null }, { dueAt: { $lte: now } }] },
        { $set: { claimId, dueAt: new Date(now.getTime() + claimSeconds * 1000) }, $inc: { attempts: 1 } },
        { returnDocument: "after" },
      );
    } catch (error) {
      deps.log.warn("owed effects left to the sweep", { owedId: id.toHexString(), error: String(error) });
      return "retry";
    }
  }
  if (!record) return "taken";
  try {
    const outcomes = await Promise.all(record.effects.map((effect) => handle(deps, effect, record._id)));
    const follows = outcomes.some((o) => o?.after);
    const finished = deps.clock.now();
    const done = { state: "done", doneAt: finished, expireAt: expiry(deps, finished), lastError: null };
    if (record.state === "pending") {
      // Exactly once: the counters land with the move out of `pending`, which only one run can make.
      await deps.db.batch(
        [
          expectMatch(
            deps.db.owedEffects.inBatch.updateOne(
              { _id: record._id, claimId, state: "pending" },
              { $set: follows ? { state: "committed", lastError: null } : done },
            ),
          ),
          ...outcomes.flatMap((o) => o?.commit ?? []),
        ],
        { transaction: true },
      );
    }
    if (!follows) return "done";
    // A follow-up that fails (or a run that dies here) leaves the record `committed`: the sweep repeats only
    // the follow-ups, after a backoff.
    const followed = await Promise.allSettled(outcomes.map((o) => o?.after?.()));
    const failed = followed.find((f) => f.status === "rejected");
    if (failed) throw failed.reason;
    await deps.db.owedEffects.updateOne({ _id: record._id, claimId, state: "committed" }, { $set: done });
    return "done";
  } catch (error) {
    // Another run took it over while this one was slow; that run commits it (or already did).
    if (error instanceof PreconditionFailedError && error.failedIndex === 0) return "taken";
    return recordFailure(deps, record, claimId, error);
  }
}

async function handle(deps: Deps, effect: OwedEffectDoc, id: ObjectId): Promise<OwedOutcome | undefined> {
  const handler = kinds.get(effect.kind)?.handler as OwedHandler<Record<string, unknown>> | undefined;
  if (!handler) throw new Error(`no handler for owed effect "${effect.kind}"`);
  return handler(deps, effect.data, { id });
}

async function recordFailure(
  deps: Deps,
  record: OwedDoc,
  claimId: string | null,
  error: unknown,
): Promise<SettleOutcome> {
  const { maxAttempts, retryBaseSeconds } = deps.config.owed;
  const now = deps.clock.now();
  const failed = record.attempts >= maxAttempts;
  const delayMs = Math.min(HOUR_MS, retryBaseSeconds * 1000 * 2 ** Math.max(0, record.attempts - 1));
  const message = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 500);
  (failed ? deps.log.error : deps.log.warn)("owed effects failed", {
    owedId: record._id.toHexString(),
    attempts: record.attempts,
    kinds: record.effects.map((e) => e.kind),
    error: message,
  });
  try {
    await deps.db.owedEffects.updateOne(
      { _id: record._id, claimId, state: { $in: OPEN } },
      {
        $set: failed
          ? { state: "failed", lastError: message, expireAt: expiry(deps, now) }
          : { dueAt: new Date(now.getTime() + delayMs), lastError: message },
        // The request's own run counts as an attempt too, though it took no claim.
        ...(claimId === null ? { $inc: { attempts: 1 } } : {}),
      },
    );
  } catch {
    // The claim runs out on its own; the sweep takes the record again then.
  }
  return failed ? "failed" : "retry";
}

function expiry(deps: Deps, from: Date): Date {
  return new Date(from.getTime() + deps.config.owed.retentionHours * HOUR_MS);
}

/** Counter moves as commit steps: `$inc` on documents by id, in one collection per call. */
export function incrementsOn<K extends "users" | "posts" | "comments">(
  deps: Deps,
  collection: K,
  moves: { id: ObjectId; inc: Record<string, number> }[],
): BatchStep<unknown>[] {
  const target = deps.db[collection].inBatch;
  return moves
    .filter((m) => Object.values(m.inc).some((n) => n !== 0))
    .map((m) => target.updateOne({ _id: m.id }, { $inc: m.inc }));
}
