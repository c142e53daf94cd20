import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWorker, kib, type WorkerBuild } from "../../scripts/build-worker";
import { type MiniflareWorker, startMiniflareWorker } from "../../scripts/local/miniflare-worker";
import { allSettings, loadConfig } from "../../src/config";
import { currentTestStack } from "../setup/plan";

/**
 * The production bundle (what `npm run deploy` uploads): small enough that a colo's cold start stays cheap, and
 * actually working: it starts in workerd with nodejs_compat behind its static assets (as deployed), reaches the
 * stores, still answers validation errors in English after zod's other locales were left out, and signs up,
 * reads, follows and pages through its own EJSON, ObjectIds and ClickHouse client with function names
 * minified. Its OpenAPI document lost its prose; the asset the build writes has all of it.
 */
const MAX_GZIP_BYTES = 250 * 1024;

let outdir: string;
let built: WorkerBuild;
let asset: string;
let code: string;
let worker: MiniflareWorker | undefined;
/** The source as `wrangler deploy --minify` would bundle it (`--plain`): every cut left out. */
let source: MiniflareWorker | undefined;

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), "circle-bundle-"));
  built = await buildWorker({ outdir });
  asset = readFileSync(built.openApiAsset!.path, "utf8");
  code = readFileSync(built.outfile, "utf8");
  const plain = await buildWorker({ outdir: join(outdir, "plain"), plain: true, openApiAsset: false });
  const { workerBindings: bindings } = currentTestStack();
  [worker, source] = await Promise.all([
    startMiniflareWorker({ scriptPath: built.outfile, bindings, assets: dirname(built.openApiAsset!.path) }),
    startMiniflareWorker({ scriptPath: plain.outfile, bindings }),
  ]);
});

afterAll(async () => {
  await Promise.all([worker?.stop(), source?.stop()]);
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const PROSE_KEYS = ["summary", "description", "example", "examples"];
const NAME_MAPS = ["properties", "patternProperties", "$defs"];

/** The document without its prose (a schema's field named `description` is a name, and stays). */
function withoutProse(value: Json, keysAreNames = false): Json {
  if (Array.isArray(value)) return value.map((v) => withoutProse(v));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => keysAreNames || !PROSE_KEYS.includes(key))
      .map(([key, v]) => [key, withoutProse(v, !keysAreNames && NAME_MAPS.includes(key))]),
  );
}

/** Where the document still has prose: `path = text`. */
function proseIn(value: Json, path = "", keysAreNames = false): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => proseIn(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, v]) => [
    ...(!keysAreNames && PROSE_KEYS.includes(key) && v !== "" ? [`${path}.${key} = ${JSON.stringify(v)}`] : []),
    ...proseIn(v, `${path}.${key}`, !keysAreNames && NAME_MAPS.includes(key)),
  ]);
}

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

  it("writes the complete OpenAPI document as an asset: what the source serves at /openapi.json", async () => {
    const res = await fetch(`${source!.url}/openapi.json`);
    expect(res.status).toBe(200);
    const served = (await res.json()) as Json;
    expect(JSON.parse(asset)).toEqual(served);
    expect(proseIn(served).length).toBeGreaterThan(500);
  });

  it("answers /openapi.json from the asset, prose and all, before the Worker runs, and /docs reads it", async () => {
    const res = await fetch(`${worker!.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    // Every answer of the Worker carries a request id; the asset's does not.
    expect(res.headers.get("x-request-id")).toBeNull();
    // Readable from other origins, as when the Worker answered (`_headers`, which is no asset itself).
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.text()).toBe(asset);
    expect((await fetch(`${worker!.url}/_headers`)).status).toBe(404);
    const docs = await fetch(`${worker!.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get("x-request-id")).not.toBeNull();
    expect(await docs.text()).toContain("/openapi.json");
  });

  it("keeps in its own document every path, operation, status, parameter, schema and x-roles: only prose goes", async () => {
    // The Worker itself, past the assets (as production's /openapi.json never reaches it).
    const own = await (await worker!.miniflare.getWorker()).fetch("http://bundle.test/openapi.json");
    expect(own.status).toBe(200);
    const stripped = (await own.json()) as Json;
    const full = JSON.parse(asset) as Json & { paths: Record<string, Record<string, { "x-roles"?: string[] }>> };
    expect(proseIn(stripped)).toEqual([]);
    expect(withoutProse(stripped)).toEqual(withoutProse(full));
    const rolesOf = (document: Json) =>
      Object.values((document as typeof full).paths).flatMap((ops) => Object.values(ops).map((op) => op["x-roles"]));
    expect(Object.keys(full.paths).length).toBeGreaterThan(100);
    expect(rolesOf(stripped).filter(Boolean).length).toBeGreaterThan(10);
    expect(rolesOf(stripped)).toEqual(rolesOf(full));
    expect(asset.length - JSON.stringify(stripped).length).toBeGreaterThan(50_000);
  });

  it("is what `npm run deploy` uploads, with the document and its headers as static assets", async () => {
    const { scripts } = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: { deploy: string } };
    const upload = scripts.deploy.split("&&").at(-1)!.trim().replaceAll("dist/", `${outdir}/`).split(/\s+/);
    expect(upload.slice(0, 2)).toEqual(["wrangler", "deploy"]);
    // wrangler looks for its configuration next to the script: dist/ is in the repository, this outdir is not.
    const dryRun = ["--config", "wrangler.toml", "--dry-run", "--outdir", join(outdir, "dry-run")];
    const { stdout } = await promisify(execFile)("npx", [...upload, ...dryRun], {
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
    });
    // openapi.json and _headers (wrangler reads both; _headers configures the other's headers).
    expect(stdout).toContain(`Read 2 files from the assets directory ${join(outdir, "assets")}`);
    // The bundle itself, as built (its size is held to the limit above).
    const uploaded = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(stdout);
    expect(uploaded?.slice(1, 3).map(Number)).toEqual([built.bytes, built.gzipBytes].map((b) => Number(kib(b))));
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
