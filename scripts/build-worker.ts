// Builds the production Worker bundle (dist/worker.js + source map) with esbuild, the way wrangler bundles a
// Worker with nodejs_compat, minus what the Worker never runs (zod's translations and two unused zod modules,
// the settings' descriptions, function names): `npm run deploy` uploads this file as is
// (`wrangler deploy dist/worker.js --no-bundle`), and the benchmarks run it in workerd through Miniflare.
//
//   npm run build [-- --outdir dist] [--entry src/worker.ts] [--plain] [--inputs]
//     --plain   as `wrangler deploy --minify` would bundle the same source (for comparison)
//     --inputs  also print the minified bytes each package (and our own code, `src`) adds
import { mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { build, type Metafile, type Plugin } from "esbuild";
import ts from "typescript";

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
  /**
   * Bundle as a plain `wrangler deploy --minify` would from the same source: names kept, zod's locales and
   * unused modules in, every setting's description in. For measuring what the trimming saves; the options
   * below override it one by one.
   */
  plain?: boolean;
  /** Keep zod's ~40 locales (all languages) in the bundle. */
  keepZodLocales?: boolean;
  /** Keep `z.compile` and `z.fromJSONSchema`, which nothing in the Worker calls. */
  keepUnusedZod?: boolean;
  /** Keep every setting's description (src/config.ts), which only README's table and the dev script print. */
  keepSettingDocs?: boolean;
  /** Keep function and class names (wrangler's default `keep_names`); nothing in the Worker reads them. */
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
 * For the same reason (the whole `z` namespace is reachable) zod's ahead-of-time compiler (`z.compile`, ~31 KiB
 * minified) and its JSON Schema reader (`z.fromJSONSchema`, ~12 KiB) would ship, though the Worker never calls
 * them: parsing goes through the compiler only when `zod/compile` is imported, and nothing reads JSON Schema.
 * Their exports stay, as functions that say they were left out, and `INVALID` keeps its registry symbol. A zod
 * release that imports one of them by a new name fails the build (esbuild: "No matching export").
 */
const leftOut = (what: string) =>
  `function () { throw new Error("${what} is left out of the Worker bundle (scripts/build-worker.ts)"); }`;
const ZOD_STUBS: Record<string, string> = {
  "v4/core/compile.js": [
    `export const INVALID = Symbol.for("zod.compile.invalid");`,
    "export class ZodCompileAsyncError extends Error {}",
    "export class ZodCompileUnsupportedError extends Error {}",
    `export const compile = ${leftOut("z.compile")};`,
    `export const withParser = ${leftOut("z.withParser")};`,
    `export const compileFn = ${leftOut("zod's compiler")};`,
  ].join("\n"),
  "v4/classic/from-json-schema.js": `export const fromJSONSchema = ${leftOut("z.fromJSONSchema")};`,
};
export const dropUnusedZod: Plugin = {
  name: "drop-unused-zod",
  setup(b) {
    b.onLoad(
      { filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/](core[\\/]compile|classic[\\/]from-json-schema)\.js$/ },
      (args) => {
        const contents = ZOD_STUBS[args.path.replace(/\\/g, "/").replace(/^.*\/node_modules\/zod\//, "")];
        return contents === undefined ? null : { contents, loader: "js" };
      },
    );
  },
};

/**
 * Every setting's description (the `doc` argument of `setting`, `secret`, and of any helper in src/config.ts
 * with a parameter named `doc`) is for README's table, which is printed in Node; the Worker never reads one.
 * ~12 KiB minified.
 */
export const dropSettingDocs: Plugin = {
  name: "drop-setting-docs",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]config\.ts$/ }, (args) => ({
      contents: withoutSettingDocs(readFileSync(args.path, "utf8"), args.path),
      loader: "ts",
    }));
  },
};

/**
 * The source with every description argument (see `dropSettingDocs`) that is plain text — a string literal, a
 * template of names, or a concatenation of those, so dropping it has no other effect — replaced by "".
 */
export function withoutSettingDocs(source: string, fileName = "config.ts"): string {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  // Functions that take a description: name → position of their `doc` parameter.
  const docParameter = new Map<string, number>();
  const noteHelper = (name: ts.Node | undefined, fn: ts.SignatureDeclarationBase) => {
    const index = fn.parameters.findIndex((p) => ts.isIdentifier(p.name) && p.name.text === "doc");
    if (name && ts.isIdentifier(name) && index >= 0) docParameter.set(name.text, index);
  };
  const findHelpers = (node: ts.Node) => {
    if (ts.isFunctionDeclaration(node)) noteHelper(node.name, node);
    if (ts.isVariableDeclaration(node) && node.initializer) {
      const init = node.initializer;
      if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) noteHelper(node.name, init);
    }
    ts.forEachChild(node, findHelpers);
  };
  findHelpers(file);
  const edits: { start: number; end: number }[] = [];
  const findCalls = (node: ts.Node) => {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression)) {
      const arg = node.arguments[docParameter.get(node.expression.text) ?? -1];
      if (arg && isPlainText(arg)) edits.push({ start: arg.getStart(file), end: arg.getEnd() });
    }
    ts.forEachChild(node, findCalls);
  };
  findCalls(file);
  let out = source;
  for (const { start, end } of edits.sort((x, y) => y.start - x.start))
    out = `${out.slice(0, start)}""${out.slice(end)}`;
  return out;
}

function isPlainText(node: ts.Expression): boolean {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return true;
  if (ts.isParenthesizedExpression(node)) return isPlainText(node.expression);
  if (ts.isTemplateExpression(node)) {
    return node.templateSpans.every(
      (s) => ts.isIdentifier(s.expression) || ts.isPropertyAccessExpression(s.expression),
    );
  }
  return (
    ts.isBinaryExpression(node) &&
    node.operatorToken.kind === ts.SyntaxKind.PlusToken &&
    isPlainText(node.left) &&
    isPlainText(node.right)
  );
}

/**
 * esbuild with wrangler 4.86's options for a modules Worker with nodejs_compat (conditions workerd, worker,
 * browser; ES2024; ESM; `node:*` and `cloudflare:*` left to the runtime; `process.env.NODE_ENV` = production;
 * a linked source map), minus the plugins' cuts above and minus function and class names, which wrangler keeps
 * by default (`keep_names`): no code of ours reads a function's `name` or `constructor.name` (our errors set
 * `name` themselves or stay `Error`), zod names its classes explicitly, and workerd binds the Durable Object
 * by its export name. jose derives its errors' `name` from their class, so those read minified in a log line;
 * code tells them apart with `instanceof` and `code`, which do not change.
 */
export async function buildWorker(opts: BuildOptions = {}): Promise<WorkerBuild> {
  const entry = resolve(root, opts.entry ?? "src/worker.ts");
  const outdir = resolve(root, opts.outdir ?? "dist");
  mkdirSync(outdir, { recursive: true });
  const outfile = join(outdir, `${basename(entry).replace(/\.[cm]?[jt]s$/, "")}.js`);
  const plain = opts.plain ?? false;
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
    keepNames: opts.keepNames ?? plain,
    sourcemap: "linked",
    metafile: true,
    legalComments: "none",
    logLevel: "silent",
    plugins: [
      ...((opts.keepZodLocales ?? plain) ? [] : [dropZodLocales]),
      ...((opts.keepUnusedZod ?? plain) ? [] : [dropUnusedZod]),
      ...((opts.keepSettingDocs ?? plain) ? [] : [dropSettingDocs]),
    ],
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
      plain: { type: "boolean", default: false },
      inputs: { type: "boolean", default: false },
    },
  });
  const built = await buildWorker({ outdir: values.outdir, entry: values.entry, plain: values.plain });
  console.log(
    `built ${built.outfile}: ${kib(built.bytes)} KiB / gzip ${kib(built.gzipBytes)} KiB in ${built.millis.toFixed(0)} ms`,
  );
  if (values.inputs) {
    for (const [owner, bytes] of Object.entries(built.inputs).sort(([, a], [, b]) => b - a)) {
      console.log(`  ${kib(bytes).padStart(8)} KiB  ${owner}`);
    }
  }
}
