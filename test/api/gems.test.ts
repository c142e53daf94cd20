import { describe, expect, it } from "vitest";
import { applyEntry, GuardFailedError, moveGems } from "../../src/features/gems/ledger";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { crowd } from "../support/users";

const deps = testDeps();

const balanceOf = async (id: string) => (await deps.db.users.findOne({ _id: new ObjectId(id) }))?.gemBalance;
const ledgerSum = async (id: string) =>
  (await deps.db.gemTransactions.find({ userId: new ObjectId(id), status: "applied" })).reduce(
    (s, t) => s + t.amount,
    0,
  );

function credit(userId: string, amount: number, key: string) {
  return moveGems(deps, {
    userId: new ObjectId(userId),
    type: "earn",
    source: "admin",
    amount,
    description: "test credit",
    idempotencyKey: key,
  });
}

function debit(userId: string, amount: number, key: string) {
  return moveGems(deps, {
    userId: new ObjectId(userId),
    type: "spend",
    source: "cosmetic",
    amount: -amount,
    description: "test spend",
    idempotencyKey: key,
  });
}

describe("gem ledger", () => {
  it("applies a movement once however often it is repeated, concurrently or not", async () => {
    const [user] = await crowd(1);
    const key = `test:${crypto.randomUUID()}`;
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => credit(user.id, 7, key)));
    const fulfilled = results.filter((r) => r.status === "fulfilled").map((r) => r.value);
    expect(fulfilled.length).toBeGreaterThan(0);
    // Exactly one caller reports the movement as its own.
    expect(fulfilled.filter((r) => !r.replayed)).toHaveLength(1);
    expect(await balanceOf(user.id)).toBe(7);
    expect(await deps.db.gemTransactions.find({ idempotencyKey: key })).toHaveLength(1);
    const replay = await credit(user.id, 7, key);
    expect(replay).toMatchObject({ replayed: true, entry: { balanceAfter: 7 } });
  });

  it("never overdraws: 20 concurrent debits against a balance for 5 → exactly 5 succeed", async () => {
    const [user] = await crowd(1);
    await credit(user.id, 50, `seed:${crypto.randomUUID()}`);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => debit(user.id, 10, `buy:${user.id}:${i}`)),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expectEvery(refused, (r) => (r.reason as { code?: string }).code === "insufficient_gems");
    expect(await balanceOf(user.id)).toBe(0);
    expect(await ledgerSum(user.id)).toBe(0);
    const applied = await deps.db.gemTransactions.find(
      { userId: new ObjectId(user.id), status: "applied" },
      { sort: { appliedAt: 1 } },
    );
    // Every applied entry records a consistent before/after pair.
    for (const t of applied) expect(t.balanceAfter! - t.balanceBefore!).toBe(t.amount);
  });

  it("completes an entry interrupted after the balance moved, without moving it again", async () => {
    const [user] = await crowd(1);
    const { entry } = await credit(user.id, 9, `int:${crypto.randomUUID()}`);
    // Simulate a crash between moving the balance and marking the entry applied.
    await deps.db.gemTransactions.updateOne({ _id: entry._id }, { $set: { status: "pending", balanceAfter: null } });
    const pending = await deps.db.gemTransactions.findOne({ _id: entry._id });
    const finished = await applyEntry(deps, pending!);
    expect(finished).toMatchObject({ movedNow: false, entry: { status: "applied" } });
    expect(await balanceOf(user.id)).toBe(9);
    expect((await credit(user.id, 9, entry.idempotencyKey)).entry.status).toBe("applied");
    expect(await balanceOf(user.id)).toBe(9);
  });

  it("serves the balance and the ledger to their owner, filtered by type, paginated", async () => {
    const [user, other] = await crowd(2);
    for (let i = 0; i < 3; i++) await credit(user.id, 4, `page:${user.id}:${i}`);
    await debit(user.id, 5, `page:${user.id}:spend`);
    const balance = await call("GET", "/v1/me/gems", { token: user.accessToken });
    expect(balance.body).toEqual({
      balance: 7,
      totalEarned: 12,
      totalSpent: 5,
      multiplier: 1,
      multiplierExpiresAt: null,
    });
    const earn = await call<{ items: { type: string }[]; nextCursor: string | null }>(
      "GET",
      "/v1/me/gems/transactions?type=earn&limit=2",
      { token: user.accessToken },
    );
    expect(earn.body.items).toHaveLength(2);
    expectEvery(earn.body.items, (t) => t.type === "earn");
    const rest = await call<{ items: unknown[]; nextCursor: string | null }>(
      "GET",
      `/v1/me/gems/transactions?type=earn&limit=2&cursor=${earn.body.nextCursor}`,
      { token: user.accessToken },
    );
    expect(rest.body.items).toHaveLength(1);
    expect(rest.body.nextCursor).toBeNull();
    const others = await call<{ items: unknown[] }>("GET", "/v1/me/gems/transactions", { token: other.accessToken });
    expect(others.body.items).toHaveLength(0);
    expect((await call("GET", "/v1/me/gems/transactions?type=steal", { token: user.accessToken })).status).toBe(400);
    expect((await call("GET", "/v1/me/gems")).status).toBe(401);
  });

  it("moves nothing when a movement's guard fails, however many race for it, and says so on replay", async () => {
    const [user] = await crowd(1);
    await credit(user.id, 100, `test:${crypto.randomUUID()}`);
    const unlock = (key: string) =>
      moveGems(deps, {
        userId: new ObjectId(user.id),
        type: "spend",
        source: "model_unlock",
        amount: -30,
        description: "unlock",
        idempotencyKey: key,
        effect: { $addToSet: { unlockedModels: "flux" } },
        guard: { unlockedModels: { $ne: "flux" } },
      });
    const keys = Array.from({ length: 10 }, () => `test:${crypto.randomUUID()}`);
    const results = await Promise.allSettled(keys.map(unlock));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results.filter((r) => r.status === "rejected")) {
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(GuardFailedError);
    }
    expect(await balanceOf(user.id)).toBe(70);
    expect(await ledgerSum(user.id)).toBe(70);
    const refusedKey = keys[results.findIndex((r) => r.status === "rejected")]!;
    await expect(unlock(refusedKey)).rejects.toBeInstanceOf(GuardFailedError);
  });
});
