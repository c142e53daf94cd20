import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";

/**
 * Billing's part of export and erasure. Export: the account's store subscriptions and its notification history
 * (no app account token: it links purchases to the account and is not the user's to hand around). Erasure:
 * the account forgets its token, Stripe customer and subscriptions, and its history stays as an anonymous
 * financial record (no user id); both steps are idempotent, so a restarted erasure just repeats them.
 */

const PAGE = 500;

export async function* exportSections(
  deps: Deps,
  userId: string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const _id = new ObjectId(userId);
  const user = await deps.db.users.findOne({ _id }, { projection: { billing: 1 } });
  yield {
    section: "subscriptions",
    items: (user?.billing?.entitlements ?? []).map((e) => ({
      store: e.store,
      subscriptionId: e.subscriptionId,
      productId: e.productId,
      tier: e.tier,
      state: e.state,
      expiresAt: e.expiresAt?.toISOString() ?? null,
      autoRenew: e.autoRenew,
      updatedAt: e.updatedAt.toISOString(),
    })),
  };
  // The whole history, a page at a time (an export has no size limit).
  const limit = Number.MAX_SAFE_INTEGER;
  let exported = 0;
  let before: { receivedAt: Date; _id: ObjectId } | null = null;
  while (exported < limit) {
    const page = await deps.db.subscriptions.find(
      {
        userId: _id,
        ...(before
          ? {
              $or: [
                { receivedAt: { $lt: before.receivedAt } },
                { receivedAt: before.receivedAt, _id: { $lt: before._id } },
              ],
            }
          : {}),
      },
      { sort: { receivedAt: -1, _id: -1 }, limit: Math.min(PAGE, limit - exported) },
    );
    if (page.length === 0) break;
    yield {
      section: "subscriptionHistory",
      items: page.map((doc) => ({
        store: doc.store,
        type: doc.type,
        subscriptionId: doc.subscriptionId,
        productId: doc.change?.productId ?? null,
        outcome: doc.outcome,
        before: doc.before,
        after: doc.after,
        eventAt: doc.eventAt.toISOString(),
        receivedAt: doc.receivedAt.toISOString(),
      })),
    };
    exported += page.length;
    const last = page[page.length - 1];
    if (!last || page.length < PAGE) break;
    before = { receivedAt: last.receivedAt, _id: last._id };
  }
}

export async function eraseUser(deps: Deps, userId: string): Promise<void> {
  const _id = new ObjectId(userId);
  const now = deps.clock.now();
  const user = await deps.db.users.findOne({ _id }, { projection: { billingAccountToken: 1 } });
  const token = user?.billingAccountToken;
  await Promise.all([
    deps.db.subscriptions.updateMany(
      { userId: _id },
      { $set: { userId: null, "account.userId": null, "account.accountToken": null, erasedAt: now } },
    ),
    // Notifications never linked still carry the account's id or token as the store sent them.
    deps.db.subscriptions.updateMany(
      { $or: [{ "account.userId": userId }, ...(token ? [{ "account.accountToken": token }] : [])] },
      { $set: { "account.userId": null, "account.accountToken": null, erasedAt: now } },
    ),
  ]);
  // Last, so that a restarted erasure still finds the token above.
  await deps.db.users.updateOne({ _id }, { $unset: { billingAccountToken: "", billing: "" } });
}
