import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWorker, type WorkerBuild } from "../../scripts/build-worker";
import { type MiniflareWorker, startMiniflareWorker } from "../../scripts/local/miniflare-worker";
import { allSettings, loadConfig } from "../../src/config";
import { currentTestStack } from "../setup/plan";

/**
 * The production bundle (what `npm run deploy` uploads): small enough that a colo's cold start stays cheap, and
 * actually working: it starts in workerd with nodejs_compat, reaches the stores, still answers validation
 * errors in English after zod's other locales were left out, and signs up, reads, follows and pages through
 * its own EJSON, ObjectIds and ClickHouse client with function names minified.
 */
const MAX_GZIP_BYTES = 250 * 1024;

let outdir: string;
let built: WorkerBuild;
let code: string;
let worker: MiniflareWorker | undefined;

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), "circle-bundle-"));
  built = await buildWorker({ outdir });
  code = readFileSync(built.outfile, "utf8");
  worker = await startMiniflareWorker({ scriptPath: built.outfile, bindings: currentTestStack().workerBindings });
});

afterAll(async () => {
  await worker?.stop();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

/** Every .ts file under src/ but config.ts, whose text a setting's description may share. */
function otherSources(dir = "src"): string {
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .map((path) => (statSync(path).isDirectory() ? otherSources(path) : path.endsWith(".ts") ? path : ""))
    .filter((path) => path && path !== join("src", "config.ts"))
    .map((path) => (path.endsWith(".ts") ? readFileSync(path, "utf8") : path))
    .join("\n");
}

describe("the production Worker bundle", () => {
  it(`stays under ${MAX_GZIP_BYTES / 1024} KiB gzip, without zod's translations`, () => {
    expect(built.gzipBytes).toBeLessThanOrEqual(MAX_GZIP_BYTES);
    // ASCII-only strings (esbuild escapes the rest) from zod's French and German messages.
    expect(code).not.toContain("date et heure ISO");
    expect(code).not.toContain("Zu klein: erwartet");
    expect(code).toMatch(/\/\/# sourceMappingURL=worker\.js\.map\s*$/);
  });

  it("leaves out what the Worker never runs: bson, client-web, z.compile, z.fromJSONSchema", () => {
    expect(Object.keys(built.inputs)).not.toContain("bson");
    expect(Object.keys(built.inputs)).not.toContain("@clickhouse/client-web");
    // Error texts of zod's compiler and JSON Schema reader.
    expect(code).not.toContain("this schema must use the runtime parser");
    expect(code).not.toContain("use $defs/$ref for recursive schemas");
  });

  it("carries no setting's description (those are for README), and still every setting's name", () => {
    const elsewhere = otherSources();
    const checkable = allSettings()
      .map(({ setting }) => setting.doc)
      .filter(
        (doc) => doc.length >= 25 && /^[\x20-\x7e]+$/.test(doc) && !/[`"'\\]/.test(doc) && !elsewhere.includes(doc),
      );
    expect(checkable.length).toBeGreaterThan(50);
    expect(checkable.filter((doc) => code.includes(doc))).toEqual([]);
    // Names written as literals in config.ts (some are built from a prefix) are all still there.
    const config = readFileSync(join("src", "config.ts"), "utf8");
    const literalNames = allSettings()
      .map(({ setting }) => `"${setting.env}"`)
      .filter((name) => config.includes(name));
    expect(literalNames.length).toBeGreaterThan(100);
    expect(literalNames.filter((name) => !code.includes(name))).toEqual([]);
  });

  it("starts in workerd and answers /health with every store ok", async () => {
    const res = await fetch(`${worker!.url}/health`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(res.status).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.checks.clickhouse?.ok).toBe(true);
  });

  it("answers a bad request with a 400 naming each field in English", async () => {
    const res = await fetch(`${worker!.url}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json", "cf-connecting-ip": "fd7e:b0d1:e::1" },
      body: JSON.stringify({ username: "ok_name", email: 42 }),
    });
    const body = (await res.json()) as { code: string; errors: { path: string; message: string }[] };
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(body.code).toBe("validation_failed");
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { path: "email", message: "Invalid input: expected string, received number" },
        { path: "password", message: "Invalid input: expected string, received undefined" },
      ]),
    );
  });

  it("signs up, reads, follows and pages through the Data API, and refuses a tampered token", async () => {
    const { termsVersion, privacyVersion } = loadConfig(currentTestStack().workerBindings).legal;
    // Each call from its own address (the rate limit is per address).
    const send = async <T = Record<string, unknown>>(method: string, path: string, token?: string, body?: unknown) => {
      const res = await fetch(`${worker!.url}${path}`, {
        method,
        headers: {
          "cf-connecting-ip": `fd7e:b0d1:${randomBytes(2).toString("hex")}::1`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
    };
    type Page = { items: { id: string }[]; nextCursor: string | null };
    const signup = async () => {
      const username = `bundle_${randomBytes(6).toString("hex")}`;
      const res = await send<{ user: { id: string }; accessToken: string }>("POST", "/v1/auth/signup", undefined, {
        username,
        email: `${username}@example.test`,
        password: "correct horse battery",
        termsVersion,
        privacyVersion,
      });
      expect(res.status).toBe(201);
      return { username, id: res.body.user.id, token: res.body.accessToken };
    };
    const [author, first, second] = [await signup(), await signup(), await signup()];
    expect(author.id).toMatch(/^[0-9a-f]{24}$/);

    const me = await send<{ id: string; username: string; createdAt: string }>("GET", "/v1/me", author.token);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: author.id, username: author.username });
    expect(Date.parse(me.body.createdAt)).toBeGreaterThan(Date.now() - 600_000);

    const login = await send("POST", "/v1/auth/login", undefined, {
      login: author.username,
      password: "correct horse battery",
    });
    expect(login.status).toBe(200);

    for (const fan of [first, second])
      expect((await send("PUT", `/v1/users/${author.id}/follow`, fan.token)).status).toBe(204);
    const page1 = await send<Page>("GET", `/v1/users/${author.id}/followers?limit=1`);
    const page2 = await send<Page>("GET", `/v1/users/${author.id}/followers?limit=1&cursor=${page1.body.nextCursor}`);
    expect([...page1.body.items, ...page2.body.items].map((u) => u.id)).toEqual([second.id, first.id]);
    expect(page2.body.nextCursor).toBeNull();

    const [head, payload, signature] = author.token.split(".");
    const tampered = `${head}.${payload}.${signature?.startsWith("A") ? "B" : "A"}${signature?.slice(1)}`;
    const refused = await send("GET", "/v1/me", tampered);
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("unauthorized");
    expect((await send("GET", "/v1/users/0123456789abcdef01234567/followers")).status).toBe(404);
  });
});
