import { describe, expect, it } from "vitest";
import {
  hashPassword,
  PasswordHashError,
  verifyPassword,
  WORKERS_PBKDF2_MAX_ITERATIONS,
} from "../../src/platform/passwords";

const policy = { iterations: 100_000 };
const PASSWORD = "correct horse battery";

/** A stored hash with another iteration count in its header (salt and hash are irrelevant: it must not verify). */
const claiming = (iterations: number) =>
  `$pbkdf2-sha256$i=${iterations}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=`;

describe("password hashing (PBKDF2-SHA-256)", () => {
  it("hashes into a self-describing string that verifies the right password only", async () => {
    const stored = await hashPassword(PASSWORD, policy);
    expect(stored).toMatch(/^\$pbkdf2-sha256\$i=100000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(stored).not.toContain(PASSWORD);
    expect(await verifyPassword(PASSWORD, stored, policy)).toEqual({ ok: true, needsRehash: false });
    expect(await verifyPassword("correct horse battery!", stored, policy)).toEqual({ ok: false, needsRehash: false });
    expect(await verifyPassword("", stored, policy)).toEqual({ ok: false, needsRehash: false });
  });

  it("salts every hash", async () => {
    const [a, b] = await Promise.all([hashPassword(PASSWORD, policy), hashPassword(PASSWORD, policy)]);
    expect(a).not.toBe(b);
  });

  it("treats Unicode-equivalent spellings of a password as the same password (NFKC)", async () => {
    const stored = await hashPassword("caf\u00e9 latte", policy);
    expect((await verifyPassword("cafe\u0301 latte", stored, policy)).ok).toBe(true);
  });

  it("refuses to hash with more iterations than production Workers allow, or too few", async () => {
    expect(WORKERS_PBKDF2_MAX_ITERATIONS).toBe(100_000);
    await expect(hashPassword(PASSWORD, { iterations: 100_001 })).rejects.toThrow(PasswordHashError);
    await expect(hashPassword(PASSWORD, { iterations: 1_000_000 })).rejects.toThrow(PasswordHashError);
    await expect(hashPassword(PASSWORD, { iterations: 9_999 })).rejects.toThrow(PasswordHashError);
    await expect(hashPassword(PASSWORD, { iterations: 50_000.5 })).rejects.toThrow(PasswordHashError);
  });

  it.each([
    ["more iterations than Workers allow", claiming(200_000)],
    ["fewer iterations than the minimum", claiming(1_000)],
    ["zero iterations", claiming(0)],
    ["an absurd iteration count", claiming(Number.MAX_SAFE_INTEGER)],
    ["another algorithm", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"],
    ["no hash at all", ""],
  ])("rejects (without throwing) a stored hash claiming %s", async (_name, stored) => {
    expect(await verifyPassword(PASSWORD, stored, policy)).toEqual({ ok: false, needsRehash: false });
  });

  it("verifies a hash made with 50,000 iterations and asks for a rehash under a 100,000 policy", async () => {
    const old = await hashPassword(PASSWORD, { iterations: 50_000 });
    expect(old).toMatch(/^\$pbkdf2-sha256\$i=50000\$/);
    expect(await verifyPassword(PASSWORD, old, policy)).toEqual({ ok: true, needsRehash: true });
    expect(await verifyPassword("wrong password", old, policy)).toEqual({ ok: false, needsRehash: false });
  });
});
