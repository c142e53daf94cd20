import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";

/**
 * Consents and settings in GDPR export and erasure (wired in by features/privacy): the consent ledger (every
 * decision with its time, version, source and user agent; the IP is only ever stored as a keyed hash) and the
 * account's settings and current consent summary.
 */

const PAGE = 500;
const idOf = (userId: ObjectId | string) => (typeof userId === "string" ? new ObjectId(userId) : userId);

export async function* exportSections(
  deps: Deps,
  userId: ObjectId | string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const id = idOf(userId);
  const user = await deps.db.users.findOne({ _id: id }, { projection: { settings: 1, consents: 1 } });
  yield {
    section: "settings",
    items: user?.settings ? [{ ...user.settings }] : [],
  };
  let after: ObjectId | null = null;
  for (;;) {
    const docs = await deps.db.consents.find(after ? { userId: id, _id: { $gt: after } } : { userId: id }, {
      sort: { _id: 1 },
      limit: PAGE,
    });
    if (docs.length > 0) {
      yield {
        section: "consents",
        items: docs.map((d) => ({
          id: d._id.toHexString(),
          kind: d.kind,
          granted: d.granted,
          version: d.version,
          source: d.source,
          ipHash: d.ipHash,
          userAgent: d.userAgent,
          createdAt: d.createdAt.toISOString(),
        })),
      };
    }
    if (docs.length < PAGE) return;
    after = docs.at(-1)?._id ?? null;
  }
}

/** Removes the consent ledger and the account's settings and consent summary. Idempotent. */
export async function eraseUser(deps: Deps, userId: ObjectId | string): Promise<void> {
  const id = idOf(userId);
  await deps.db.consents.deleteMany({ userId: id });
  await deps.db.users.updateOne({ _id: id }, { $unset: { settings: "", consents: "" } });
}
