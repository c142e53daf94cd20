import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "./harness";

/**
 * The production gateway (MONGODB_URI set) must not carry the embedded engine: bundled the way gateway/README.md
 * measures it, everything the entry point loads statically is free of mingo and of gateway/backends/embedded,
 * which sit in a chunk reached only through the dynamic import in backends/index.ts.
 */

interface Metafile {
  outputs: Record<
    string,
    {
      bytes: number;
      entryPoint?: string;
      inputs: Record<string, unknown>;
      imports: { path: string; kind: string; external?: boolean }[];
    }
  >;
}

const run = promisify(execFile);

describe("the production bundle", () => {
  it("loads neither mingo nor the embedded engine unless the embedded backend is configured", async () => {
    const out = await tempDir("gateway-bundle-");
    try {
      const metafile = join(out.path, "meta.json");
      await run("node_modules/.bin/esbuild", [
        "gateway/server.ts",
        "--bundle",
        "--platform=node",
        "--format=esm",
        "--minify",
        "--splitting",
        `--outdir=${out.path}`,
        "--external:mongodb",
        "--external:bson",
        `--metafile=${metafile}`,
        "--log-level=error",
      ]);
      const { outputs } = JSON.parse(await readFile(metafile, "utf8")) as Metafile;
      const entry = Object.keys(outputs).find((name) => outputs[name]?.entryPoint === "gateway/server.ts");
      expect(entry).toBeDefined();

      // Outputs reachable from the entry through static imports only: what a production process loads.
      const loaded = new Set<string>();
      const pending = [entry as string];
      while (pending.length > 0) {
        const name = pending.pop() as string;
        if (loaded.has(name)) continue;
        loaded.add(name);
        for (const imported of outputs[name]?.imports ?? []) {
          if (!imported.external && imported.kind === "import-statement") pending.push(imported.path);
        }
      }
      const isEngine = (input: string) => input.includes("node_modules/mingo/") || input.includes("backends/embedded/");
      const loadedInputs = [...loaded].flatMap((name) => Object.keys(outputs[name]?.inputs ?? {}));
      expect(loadedInputs.filter(isEngine)).toEqual([]);
      expect(loadedInputs).toContain("gateway/backends/mongodb.ts");

      // The engine is still in the build, behind the dynamic import, for the embedded backend.
      const lazy = Object.keys(outputs).filter((name) => !loaded.has(name) && name.endsWith(".js"));
      const lazyInputs = lazy.flatMap((name) => Object.keys(outputs[name]?.inputs ?? {}));
      expect(lazyInputs).toContain("gateway/backends/embedded/backend.ts");
      expect(lazyInputs.some((input) => input.includes("node_modules/mingo/"))).toBe(true);
    } finally {
      await out.remove();
    }
  });
});
