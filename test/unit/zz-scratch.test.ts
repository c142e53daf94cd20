import { it } from "vitest";
import { hashPassword } from "../../src/platform/passwords";
import { signupUser } from "../support/users";
import { call } from "../support/api";

it("timing", async () => {
  let t = performance.now();
  await hashPassword("x".repeat(12), { iterations: 100_000 });
  console.log("hash", performance.now() - t);
  t = Date.now();
  await hashPassword("x".repeat(12), { iterations: 100_000 });
  console.log("hash date", Date.now() - t);
  t = Date.now();
  const u = await signupUser();
  console.log("signup", Date.now() - t);
  t = Date.now();
  await Promise.all(Array.from({ length: 10 }, () => signupUser()));
  console.log("10 signups", Date.now() - t);
  t = Date.now();
  const r = await call("POST", "/v1/auth/login", { body: { login: u.username, password: u.password } });
  console.log("login", Date.now() - t, r.status);
});
