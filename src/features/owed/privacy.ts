import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import { everyPage } from "../../platform/mongo/paginate";
import { OPEN } from "./effects";

/**
 * Export and erasure of the owed-effect records about a person (wired into features/privacy by its owner).
 * They are bookkeeping: what the service still owed (or did) after writes that concerned them, kept
 * OWED_EFFECTS_RETENTION_HOURS once done.
 *
 * Export: each record's kinds of effect, state and times — not its data, which names other people too.
 *
 * Erasure (idempotent and restartable): every done or failed record about them goes at once. Records still
 * being carried out are left to finish (they move other people's counters too) and go on a later run.
 */

const PAGE = 500;

export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  for await (const records of everyPage(deps.db.owedEffects, {
    filter: { subjects: new ObjectId(userId) },
    order: { direction: "asc" },
    limit: PAGE,
  })) {
    yield {
      section: "owedEffects",
      items: records.map((r) => ({
        id: r._id.toHexString(),
        effects: r.effects.map((e) => e.kind),
        state: r.state,
        createdAt: r.createdAt.toISOString(),
        doneAt: r.doneAt?.toISOString() ?? null,
      })),
    };
  }
}

export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  await deps.db.owedEffects.deleteMany({ subjects: new ObjectId(userId), state: { $nin: OPEN } });
}
