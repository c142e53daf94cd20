import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWorker, type WorkerBuild } from "../../scripts/build-worker";
import { type MiniflareWorker, startMiniflareWorker } from "../../scripts/local/miniflare-worker";
import { currentTestStack } from "../setup/plan";

/**
 * The production bundle (what `npm run deploy` uploads): small enough that a colo's cold start stays cheap, and
 * actually working: it starts in workerd with nodejs_compat, reaches the stores, and still answers validation
 * errors in English after zod's other locales were left out.
 */
const MAX_GZIP_BYTES = 250 * 1024;

let outdir: string;
let built: WorkerBuild;
let worker: MiniflareWorker | undefined;

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), "circle-bundle-"));
  built = await buildWorker({ outdir });
  worker = await startMiniflareWorker({ scriptPath: built.outfile, bindings: currentTestStack().workerBindings });
});

afterAll(async () => {
  await worker?.stop();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe("the production Worker bundle", () => {
  it(`stays under ${MAX_GZIP_BYTES / 1024} KiB gzip, without zod's translations`, () => {
    expect(built.gzipBytes).toBeLessThanOrEqual(MAX_GZIP_BYTES);
    const code = readFileSync(built.outfile, "utf8");
    // ASCII-only strings (esbuild escapes the rest) from zod's French and German messages.
    expect(code).not.toContain("date et heure ISO");
    expect(code).not.toContain("Zu klein: erwartet");
    expect(code).toMatch(/\/\/# sourceMappingURL=worker\.js\.map\s*$/);
  });

  it("starts in workerd and answers /health with every store ok", async () => {
    const res = await fetch(`${worker!.url}/health`);
    const body = (await res.json()) as { status: string };
    expect(res.status).toBe(200);
    expect(body.status).toBe("ok");
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
});
