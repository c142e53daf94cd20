import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { hashPassword, verifyPassword } from "../../src/platform/passwords";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { signupUser } from "../support/users";

const policy = { iterations: 100_000 };

/** A stored hash with another iteration count in its header (salt and hash are irrelevant: it must not verify). */
const claiming = (iterations: number) =>
  `$pbkdf2-sha256$i=${iterations}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=`;

describe("rehash on login", () => {
  it("replaces a 50,000-iteration hash with a 100,000 one when the user signs in", async () => {
    const deps = testDeps();
    const user = await signupUser();
    const _id = new ObjectId(user.id);
    await deps.db.users.updateOne(
      { _id },
      { $set: { passwordHash: await hashPassword(user.password, { iterations: 50_000 }) } },
    );

    const wrong = await call("POST", "/v1/auth/login", { body: { login: user.username, password: "not it at all" } });
    expect(wrong.status).toBe(401);
    expect((await deps.db.users.findOne({ _id }))?.passwordHash).toMatch(/^\$pbkdf2-sha256\$i=50000\$/);

    const res = await call("POST", "/v1/auth/login", { body: { login: user.username, password: user.password } });
    expect(res.status, res.text).toBe(200);
    const rehashed = (await deps.db.users.findOne({ _id }))?.passwordHash ?? "";
    expect(rehashed).toMatch(/^\$pbkdf2-sha256\$i=100000\$/);
    expect(await verifyPassword(user.password, rehashed, policy)).toEqual({ ok: true, needsRehash: false });
    expect(
      (await call("POST", "/v1/auth/login", { body: { login: user.username, password: user.password } })).status,
    ).toBe(200);
  });

  it("answers 401, not 500, for an account whose stored hash has an unusable iteration count", async () => {
    const deps = testDeps();
    const user = await signupUser();
    await deps.db.users.updateOne({ _id: new ObjectId(user.id) }, { $set: { passwordHash: claiming(1_000) } });
    const res = await call("POST", "/v1/auth/login", { body: { login: user.username, password: user.password } });
    expect(res.status, res.text).toBe(401);
  });
});
