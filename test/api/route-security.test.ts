import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { expectProblem } from "../support/problems";
import { type Operation, operations } from "../support/spec";
import { crowd, type TestUser, userWithRole } from "../support/users";

// Generated from the served OpenAPI document, so a route is covered the day it lands: every operation that
// declares bearer security refuses a missing (unless sign-in is optional), an expired and a tampered token,
// and every operation with roles (`x-roles`) refuses a signed-in caller without one of them.
const ops = await operations();
const secured = ops.filter((op) => op.security !== null);
const bindings = env as unknown as Record<string, string>;

/** A concrete path for a template: any well-formed value will do, since authentication runs before validation. */
function concrete(op: Operation): string {
  return op.path.replace(/\{([^}]+)\}/g, (_all, name: string) =>
    name === "username" ? "someone_x" : name === "provider" ? "google" : new ObjectId().toHexString(),
  );
}

async function expiredToken(user: TestUser): Promise<string> {
  const issuedAt = Math.floor(Date.now() / 1000) - 3_600;
  return new SignJWT({ sid: new ObjectId().toHexString(), role: "admin", tier: "premium" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user.id)
    .setIssuer(bindings.JWT_ISSUER ?? "circle-api")
    .setAudience(bindings.JWT_AUDIENCE ?? "circle-app")
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + 60)
    .sign(new TextEncoder().encode(bindings.JWT_SECRET));
}

/** The user's valid token with its payload rewritten to claim admin, keeping the old signature. */
function tamperedToken(user: TestUser): string {
  const [header, payload, signature] = user.accessToken.split(".") as [string, string, string];
  const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
  const forged = btoa(JSON.stringify({ ...claims, role: "admin" }))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  return `${header}.${forged}.${signature}`;
}

describe("security of every operation in /openapi.json", () => {
  let user: TestUser;
  let moderator: TestUser;

  beforeAll(async () => {
    [user] = (await crowd(1)) as [TestUser];
    moderator = await userWithRole("moderator");
  });

  it("covers the API's secured operations", () => {
    expect(secured.length).toBeGreaterThan(50);
    expect(secured.filter((op) => op.roles.length > 0).length).toBeGreaterThan(10);
  });

  for (const op of secured) {
    const name = `${op.method} ${op.path}`;
    if (!op.security?.optional) {
      it(`${name} refuses a missing token (401)`, async () => {
        expectProblem(await call(op.method, concrete(op)), 401, "unauthorized");
      });
    }
    it(`${name} refuses an expired token (401)`, async () => {
      expectProblem(await call(op.method, concrete(op), { token: await expiredToken(user) }), 401, "unauthorized");
    });
    it(`${name} refuses a tampered token (401)`, async () => {
      expectProblem(await call(op.method, concrete(op), { token: tamperedToken(user) }), 401, "unauthorized");
    });
    if (op.roles.length > 0) {
      it(`${name} refuses a signed-in caller without one of its roles (403)`, async () => {
        expectProblem(await call(op.method, concrete(op), { token: user.accessToken }), 403, "forbidden");
        if (!op.roles.includes("moderator")) {
          expectProblem(await call(op.method, concrete(op), { token: moderator.accessToken }), 403, "forbidden");
        }
      });
    }
  }
});
