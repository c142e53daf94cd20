// Builds the production Worker bundle (dist/worker.js + source map) with esbuild, the way wrangler bundles a
// Worker with nodejs_compat, minus zod's translations: `npm run deploy` uploads this file as is
// (`wrangler deploy dist/worker.js --no-bundle`), and the benchmarks run it in workerd through Miniflare.
//
//   npm run build [-- --outdir dist] [--entry src/worker.ts] [--keep-locales]
import { mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { build, type Metafile, type Plugin } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface WorkerBuild {
  /** Absolute path of the bundle (its source map sits next to it, `.map`). */
  outfile: string;
  bytes: number;
  gzipBytes: number;
  /** Input bytes per package (or `src` for our own code) that made it into the bundle. */
  inputs: Record<string, number>;
  millis: number;
}

export interface BuildOptions {
  /** Entry module, relative to the repository root. */
  entry?: string;
  /** Output directory (created); the bundle is `<outdir>/<entry name>.js`. */
  outdir?: string;
  minify?: boolean;
  /** Keep zod's ~40 locales (all languages) in the bundle, as a plain wrangler build does. */
  keepZodLocales?: boolean;
  /** Keep function and class names (wrangler's default `keep_names`); false measures what they cost. */
  keepNames?: boolean;
}

/**
 * zod exports every translation as `z.locales` / `core.locales` (`export * as locales from
 * "../locales/index.js"`); @hono/zod-openapi hands the whole `z` namespace to `extendZodWithOpenApi`, so
 * esbuild cannot tree-shake them (~260 KiB minified). The English messages zod configures by default come
 * from `locales/en.js`, imported directly by its schemas, so they stay.
 */
export const dropZodLocales: Plugin = {
  name: "drop-zod-locales",
  setup(b) {
    b.onResolve({ filter: /(^|\/)locales\/index\.c?js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: "zod-locales", namespace: "empty-module" } : null,
    );
    b.onLoad({ filter: /.*/, namespace: "empty-module" }, () => ({ contents: "export {};", loader: "js" }));
  },
};

/**
 * esbuild with wrangler 4.86's options for a modules Worker with nodejs_compat (conditions workerd, worker,
 * browser; ES2024; ESM; `node:*` and `cloudflare:*` left to the runtime; names kept, as wrangler's default
 * `keep_names`; `process.env.NODE_ENV` = production; a linked source map).
 */
export async function buildWorker(opts: BuildOptions = {}): Promise<WorkerBuild> {
  const entry = resolve(root, opts.entry ?? "src/worker.ts");
  const outdir = resolve(root, opts.outdir ?? "dist");
  mkdirSync(outdir, { recursive: true });
  const outfile = join(outdir, `${basename(entry).replace(/\.[cm]?[jt]s$/, "")}.js`);
  const started = performance.now();
  const nodeEnv = JSON.stringify("production");
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2024",
    supported: { "import-source": true },
    conditions: ["workerd", "worker", "browser"],
    external: ["node:*", "cloudflare:*"],
    loader: { ".js": "jsx", ".mjs": "jsx", ".cjs": "jsx" },
    define: {
      "process.env.NODE_ENV": nodeEnv,
      "global.process.env.NODE_ENV": nodeEnv,
      "globalThis.process.env.NODE_ENV": nodeEnv,
      "navigator.userAgent": JSON.stringify("Cloudflare-Workers"),
    },
    minify: opts.minify ?? true,
    keepNames: opts.keepNames ?? true,
    sourcemap: "linked",
    metafile: true,
    legalComments: "none",
    logLevel: "silent",
    plugins: opts.keepZodLocales ? [] : [dropZodLocales],
  });
  const millis = performance.now() - started;
  const code = readFileSync(outfile);
  return {
    outfile,
    bytes: code.byteLength,
    // Default level, as wrangler reports it ("Total Upload: … / gzip: …").
    gzipBytes: gzipSync(code).byteLength,
    inputs: inputsByPackage(result.metafile, outfile),
    millis,
  };
}

function inputsByPackage(meta: Metafile, outfile: string): Record<string, number> {
  const output = Object.entries(meta.outputs).find(([path]) => resolve(root, path) === outfile)?.[1];
  const sizes: Record<string, number> = {};
  for (const [path, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const owner = match?.[1] ?? (path.startsWith("src/") ? "src" : path);
    sizes[owner] = (sizes[owner] ?? 0) + bytesInOutput;
  }
  return sizes;
}

export const kib = (bytes: number) => (bytes / 1024).toFixed(2);

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      outdir: { type: "string", default: "dist" },
      entry: { type: "string", default: "src/worker.ts" },
      "keep-locales": { type: "boolean", default: false },
    },
  });
  const built = await buildWorker({
    outdir: values.outdir,
    entry: values.entry,
    keepZodLocales: values["keep-locales"],
  });
  console.log(
    `built ${built.outfile}: ${kib(built.bytes)} KiB / gzip ${kib(built.gzipBytes)} KiB in ${built.millis.toFixed(0)} ms`,
  );
}
