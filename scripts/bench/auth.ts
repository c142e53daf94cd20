// Auth benchmark: the cost of one password hash (PBKDF2-SHA-256, 100,000 iterations: the most production
// Workers allow) inside workerd, and of one login through the Worker, against GET /health measured in the
// same run.   npm run bench:auth [-- --hashes 20 --logins 100]

import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";
import { fmt, load, startBenchStack } from "./lib";

const { values } = parseArgs({
  options: { hashes: { type: "string", default: "20" }, logins: { type: "string", default: "100" } },
});
const hashes = Number(values.hashes);
const logins = Number(values.logins);

// 1. PBKDF2 in workerd: time a request that derives K hashes minus one that derives none (workerd's own clock
// does not advance during CPU work, so the timing is taken from outside).
const mf = new Miniflare({
  modules: true,
  compatibilityDate: "2026-04-20",
  script: `export default { async fetch(request) {
    const k = Number(new URL(request.url).searchParams.get("k"));
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("correct horse battery"), "PBKDF2", false, ["deriveBits"]);
    for (let i = 0; i < k; i++) {
      await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: crypto.getRandomValues(new Uint8Array(16)), iterations: 100000 }, key, 256);
    }
    return new Response("ok");
  } }`,
});
const timeRequest = async (k: number) => {
  const t0 = performance.now();
  await (await mf.dispatchFetch(`http://bench/?k=${k}`)).text();
  return performance.now() - t0;
};
await timeRequest(1);
const empty: number[] = [];
const full: number[] = [];
for (let i = 0; i < 5; i++) {
  empty.push(await timeRequest(0));
  full.push(await timeRequest(hashes));
}
await mf.dispose();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const perHash = (median(full) - median(empty)) / hashes;

// 2. Login through the Worker (workerd via Miniflare), against /health in the same run; login limits lifted so the
// benchmark measures logins, not 429s.
const bench = await startBenchStack({
  vars: {
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: "1000000",
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_IP: "1000000",
    RATE_LIMIT_LOGIN_PER_IP: "1000000",
  },
});
try {
  const username = `bench_${Date.now().toString(36)}`;
  const password = "correct horse battery";
  const post = (path: string, body: unknown) =>
    fetch(`${bench.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const legal = (await (await fetch(`${bench.url}/v1/legal`)).json()) as {
    termsVersion: string;
    privacyVersion: string;
  };
  const signup = await post("/v1/auth/signup", { username, email: `${username}@bench.test`, password, ...legal });
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.status}`);
  const health = await load(logins, 1, () => fetch(`${bench.url}/health`));
  const login = await load(logins, 1, () => post("/v1/auth/login", { login: username, password }));
  const loginConcurrent = await load(logins, 4, () => post("/v1/auth/login", { login: username, password }));

  console.log("\nAuth benchmark (Worker in workerd)\n");
  console.log(`PBKDF2-SHA-256 × 100,000 iterations: ${fmt(perHash, 1)} ms per hash (median of 5 × ${hashes})`);
  console.log(
    `GET /health  (baseline)  p50 ${fmt(health.p50, 1)} ms  p99 ${fmt(health.p99, 1)} ms  ${fmt(health.rps)} req/s`,
  );
  console.log(
    `POST /v1/auth/login      p50 ${fmt(login.p50, 1)} ms  p99 ${fmt(login.p99, 1)} ms  ${fmt(login.rps)} req/s  statuses ${JSON.stringify(login.statuses)}`,
  );
  console.log(
    `login, 4 concurrent      p50 ${fmt(loginConcurrent.p50, 1)} ms  p99 ${fmt(loginConcurrent.p99, 1)} ms  ${fmt(loginConcurrent.rps)} req/s`,
  );
  console.log(`login p50 ÷ health p50: ${fmt(login.p50 / health.p50, 1)}×`);
} finally {
  await bench.stop();
}
