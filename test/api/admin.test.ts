import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { Me } from "../../src/features/users/schema";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectProblem, fieldPaths } from "../support/problems";
import { signupUser, type TestUser, userWithRole } from "../support/users";

const deps = testDeps();

const setRole = (id: string, role: unknown, token?: string) =>
  call<Me>("PUT", `/v1/admin/users/${id}/role`, { body: { role }, token });

describe("PUT /v1/admin/users/{id}/role", () => {
  let admin: TestUser;
  let user: TestUser;
  beforeAll(async () => {
    [admin, user] = await Promise.all([userWithRole("admin"), signupUser()]);
  });

  it("is refused to a signed-in user (403) and to a moderator (403), and to nobody (401)", async () => {
    const moderator = await userWithRole("moderator");
    expectProblem(await setRole(user.id, "admin", user.accessToken), 403, "forbidden");
    expectProblem(await setRole(user.id, "admin", moderator.accessToken), 403, "forbidden");
    expectProblem(await setRole(user.id, "admin"), 401, "unauthorized");
    expect((await deps.db.users.findOne({ _id: new ObjectId(user.id) }))?.role).toBe("user");
  });

  it("lets an admin change a role: 200 with the user, audited, carried by the user's next tokens", async () => {
    const res = await setRole(user.id, "creator", admin.accessToken);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, role: "creator" });
    const entry = await deps.db.auditLogs.findOne({ userId: new ObjectId(user.id), action: "role_changed" });
    expect(entry).toMatchObject({ metadata: { from: "user", to: "creator" } });
    expect(entry?.actorId?.toHexString()).toBe(admin.id);

    const refreshed = await call<{ accessToken: string }>("POST", "/v1/auth/refresh", {
      body: { refreshToken: user.refreshToken },
    });
    expect(decodeJwt(refreshed.body.accessToken).role).toBe("creator");
    expect((await call<Me>("GET", "/v1/me", { token: refreshed.body.accessToken })).body.role).toBe("creator");
  });

  it("answers 404 for an unknown id, 400 for a bad role or a malformed id", async () => {
    expectProblem(await setRole(new ObjectId().toHexString(), "creator", admin.accessToken), 404, "not_found");
    const badRole = await setRole(user.id, "overlord", admin.accessToken);
    expectProblem(badRole, 400, "validation_failed");
    expect(fieldPaths(badRole)).toContain("role");
    expectProblem(await setRole("not-an-id", "creator", admin.accessToken), 400, "validation_failed");
  });
});
