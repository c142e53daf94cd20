import { moveGems } from "../../src/features/gems/ledger";
import { ObjectId } from "../../src/platform/ids";
import { testDeps } from "./deps";

const deps = testDeps();

/** Gives a user gems through the ledger, as an admin adjustment (which leaderboards do not count). */
export async function grant(user: { id: string }, amount: number): Promise<void> {
  await moveGems(deps, {
    userId: new ObjectId(user.id),
    type: "admin_adjust",
    source: "admin",
    amount,
    description: "test grant",
    idempotencyKey: `test-grant:${crypto.randomUUID()}`,
  });
}

/** The user's cached balance as stored (undefined for no such user). */
export async function balanceOf(user: { id: string }): Promise<number | undefined> {
  return (await deps.db.users.findOne({ _id: new ObjectId(user.id) }, { projection: { gemBalance: 1 } }))?.gemBalance;
}
