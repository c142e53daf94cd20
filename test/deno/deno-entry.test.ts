import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/local/ports";
import { schedule } from "../../src/scheduler/schedule";
import { currentTestStack } from "../setup/plan";
import { expectEvery } from "../support/expect";

/**
 * The Deno binary: the npm package `deno` (a dev dependency; npm installs the build for this platform as an
 * optional dependency), else `deno` on PATH. Null when neither runs, e.g. a registry mirror without this
 * platform's build: the suite is then skipped, and says so, instead of passing without having run.
 */
function denoBinary(): string | null {
  for (const candidate of ["node_modules/.bin/deno", "deno"]) {
    if (candidate.includes("/") && !existsSync(candidate)) continue;
    if (spawnSync(candidate, ["--version"], { stdio: "ignore" }).status === 0) return candidate;
  }
  return null;
}

const deno = denoBinary();
if (!deno) {
  console.warn(
    "\n*** SKIPPED: the Deno entry tests — no runnable deno binary (node_modules/.bin/deno or deno on PATH). ***\n" +
      "*** Install it (npm install, which fetches @deno/<platform>, or https://deno.land) to run them.       ***\n",
  );
}

// Boots src/deno.ts with README's command against the same local stack the Worker tests use.
describe.skipIf(!deno)("Deno entry", () => {
  let child: ChildProcess;
  let base = "";
  let output = "";

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // README's command: with --unstable-cron the entry registers every trigger, so a name Deno.cron refuses
    // would crash it at start.
    child = spawn(
      deno ?? "deno",
      ["run", "--sloppy-imports", "--allow-net", "--allow-env", "--unstable-cron", "src/deno.ts"],
      { env: { ...process.env, ...currentTestStack().workerBindings, PORT: String(port), DENO_NO_UPDATE_CHECK: "1" } },
    );
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`deno exited with ${child.exitCode}:\n${output}`);
      // The cron lines are written before Deno.serve's; wait for both.
      if (output.includes('"listening"')) {
        try {
          await fetch(`${base}/health`);
          return;
        } catch {
          // not answering yet
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`deno did not start:\n${output}`);
  });

  afterAll(() => {
    child?.kill("SIGTERM");
  });

  it("registers every cron trigger with Deno.cron", () => {
    const registered = output
      .split("\n")
      .filter((line) => line.includes('"cron registered"'))
      .map((line) => JSON.parse(line) as { name: string; schedule: string });
    expect(registered).toEqual(
      schedule.map((t) => ({ msg: "cron registered", name: `circle-${t.name}`, schedule: t.cron })),
    );
  });

  it("serves /health with every store ok", async () => {
    const res = await fetch(`${base}/health`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(res.status).toBe(200);
    expect(body.status).toBe("ok");
    expectEvery(Object.values(body.checks), (c) => c.ok, "store checks");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("serves the same API (events ingest and problem+json errors)", async () => {
    const ok = await fetch(`${base}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        events: [
          {
            event: "session_start",
            timestamp: new Date().toISOString(),
            sessionId: "deno-session",
            deviceId: "deno-device",
            platform: "web",
            appVersion: "1.0.0",
          },
        ],
      }),
    });
    expect(ok.status).toBe(202);
    const bad = await fetch(`${base}/v1/events`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
  });

  it("carries new messages to a waiting catch-up read over Upstash pub/sub (no Durable Objects here)", async () => {
    const json = async (path: string, init: { method?: string; token?: string; body?: unknown } = {}) => {
      const res = await fetch(`${base}${path}`, {
        method: init.method ?? "GET",
        headers: {
          "content-type": "application/json",
          ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        },
        ...(init.body ? { body: JSON.stringify(init.body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const signup = async () => {
      const name = `deno${Math.random().toString(36).slice(2, 12)}`;
      const res = await json("/v1/auth/signup", {
        method: "POST",
        body: {
          username: name,
          email: `${name}@example.test`,
          password: "correct horse battery",
          termsVersion: "1.0",
          privacyVersion: "1.0",
        },
      });
      expect(res.status).toBe(201);
      return { id: (res.body.user as { id: string }).id, token: res.body.accessToken as string };
    };
    const [a, b] = [await signup(), await signup()];
    const conv = await json("/v1/conversations", { method: "POST", token: a.token, body: { memberIds: [b.id] } });
    const say = (text: string) =>
      json(`/v1/conversations/${conv.body.id}/messages`, {
        method: "POST",
        token: a.token,
        body: { clientMessageId: `deno-${text}`, kind: "text", text },
      });
    const first = await say("first");
    const waiting = json(`/v1/conversations/${conv.body.id}/messages?after=${first.body.id}&waitSeconds=20`, {
      token: b.token,
    });
    await new Promise((r) => setTimeout(r, 500));
    await say("second");
    const caughtUp = await waiting;
    expect((caughtUp.body.items as { text: string }[]).map((m) => m.text)).toEqual(["second"]);
    const ticket = await json(`/v1/conversations/${conv.body.id}/socket-ticket`, { method: "POST", token: b.token });
    expect(ticket.status).toBe(404);
  });
});
