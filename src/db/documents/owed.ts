import type { ObjectId } from "../../platform/ids";

/** One thing a write still owes, named by the feature that carries it out (`kind`) with what it needs (`data`). */
export interface OwedEffectDoc {
  kind: string;
  data: Record<string, unknown>;
}

/** `committed`: its counters landed, its follow-ups (cache drops of what they changed) not yet. */
export type OwedState = "pending" | "committed" | "done" | "failed";

/**
 * `owed_effects`: the durable record of what a write owes after its answer (notifications, user totals, post
 * counters, cache drops). Written in the same Data API call as the write itself, so it exists exactly when the
 * write does; carried out right after the response, or by the `owed-effects` sweep when that never happened.
 * The sweep takes a record by setting `claimId` (a guarded update; the request's own run needs none within the
 * grace); a run commits the record's counters together with its move out of `pending`, guarded by its claim, so
 * they land exactly once.
 */
export interface OwedDoc {
  _id: ObjectId;
  /** The request that left it (its X-Request-Id), for logs and for tests waiting on it. */
  requestId: string | null;
  effects: OwedEffectDoc[];
  /** The people the effects are about (their export and erasure find the record by them). */
  subjects: ObjectId[];
  state: OwedState;
  createdAt: Date;
  /**
   * When a run may take it next: first the sweep's grace (the request's own run goes first), then the end of
   * a claim (a run that died lets it go), then a retry's backoff.
   */
  dueAt: Date;
  /** The run holding it (or the last one that did); the commit is guarded by it. */
  claimId: string | null;
  attempts: number;
  lastError: string | null;
  doneAt: Date | null;
  /** TTL: set when done or failed (OWED_EFFECTS_RETENTION_HOURS). */
  expireAt: Date | null;
}
