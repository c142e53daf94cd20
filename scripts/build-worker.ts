// Builds the production Worker bundle (dist/worker.js + source map) with esbuild, the way wrangler bundles a
// Worker with nodejs_compat, minus what the Worker never runs (zod's translations and two unused zod modules,
// the settings' descriptions, the OpenAPI document's prose, function names), and writes the complete OpenAPI
// document to dist/assets/openapi.json: `npm run deploy` uploads both as they are (`wrangler deploy
// dist/worker.js --no-bundle --assets dist/assets`), and the benchmarks run the bundle in workerd through
// Miniflare.
//
//   npm run build [-- --outdir dist] [--entry src/worker.ts] [--plain] [--inputs]
//     --plain   as `wrangler deploy --minify` would bundle the same source (for comparison)
//     --inputs  also print the minified bytes each package (and our own code, `src`) adds
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
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
  /** The complete OpenAPI document (`<outdir>/assets/openapi.json`), unless `openApiAsset: false`. */
  openApiAsset?: { path: string; bytes: number };
}

export interface BuildOptions {
  /** Entry module, relative to the repository root. */
  entry?: string;
  /** Output directory (created); the bundle is `<outdir>/<entry name>.js`. */
  outdir?: string;
  minify?: boolean;
  /**
   * Bundle as a plain `wrangler deploy --minify` would from the same source: names kept, zod's locales and
   * unused modules in, every setting's description and all OpenAPI prose in. For measuring what the trimming
   * saves; the `keep*` options below override it one by one.
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
  /** Keep the OpenAPI document's prose (summaries, descriptions, examples) in the bundle. */
  keepOpenApiProse?: boolean;
  /** Write the complete OpenAPI document to `<outdir>/assets/openapi.json` (default true). */
  openApiAsset?: boolean;
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
 * A cut in our own sources as esbuild loads them. esbuild loads a file once (the first `onLoad` that answers
 * wins), so every cut that applies to a file runs in one plugin, one after the other.
 */
export interface SourceCut {
  applies(path: string): boolean;
  cut(source: string, path: string): string;
}

/** The plugin that applies `cuts()` (made afresh for each build, so no state outlives one). */
export function cutSources(name: string, cuts: () => SourceCut[]): Plugin {
  return {
    name,
    setup(b) {
      const active = cuts();
      b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
        const apply = active.filter((c) => c.applies(args.path));
        if (apply.length === 0) return null;
        const source = readFileSync(args.path, "utf8");
        return { contents: apply.reduce((text, c) => c.cut(text, args.path), source), loader: "ts" };
      });
    },
  };
}

/**
 * Every setting's description (the `doc` argument of `setting`, `secret`, and of any helper in src/config.ts
 * with a parameter named `doc`) is for README's table, which is printed in Node; the Worker never reads one.
 * ~12 KiB minified.
 */
export const settingDocsCut: SourceCut = {
  applies: (path) => /[\\/]src[\\/]config\.ts$/.test(path),
  cut: (source, path) => withoutSettingDocs(source, path),
};
export const dropSettingDocs = cutSources("drop-setting-docs", () => [settingDocsCut]);

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
 * The OpenAPI document's prose — operations' summaries and descriptions, responses' descriptions, schemas'
 * descriptions and examples — is read by people and tools at `/openapi.json` and `/docs`, never by the
 * Worker's logic, and production serves the complete document as a static asset (`writeOpenApiDocument`).
 * What the Worker reads stays: schemas, ids (`$ref` names), `x-roles`, parameter names, titles, and every error
 * text (problem titles and details are code, not OpenAPI metadata). ~70 KiB minified.
 */
export function openApiProseCut(): SourceCut {
  // Each file cut once, from disk: a file's cut needs the helpers its imports export. A module inside an import
  // cycle sees none of the other's (its calls keep their prose).
  const cuts = new Map<string, { source: string; text: string; exported: ProseHelpers }>();
  const cutFile = (path: string, source = readFileSync(path, "utf8")) => {
    let done = cuts.get(path);
    if (!done || done.source !== source) {
      cuts.set(path, { source, text: source, exported: new Map() });
      done = { source, ...withoutOpenApiProse(source, path, (specifier) => importedBy(path, specifier)) };
      cuts.set(path, done);
    }
    return done;
  };
  const importedBy = (path: string, specifier: string): ProseHelpers => {
    const target = sourceFileFor(path, specifier);
    return target ? cutFile(target).exported : new Map();
  };
  return { applies: (path) => path.endsWith(".ts"), cut: (source, path) => cutFile(path, source).text };
}
export const dropOpenApiProse = cutSources("drop-openapi-prose", () => [openApiProseCut()]);

/** The .ts file a relative import names (`./x`, `./x.ts`, `./x.js`, `./x/index.ts`); none for a package. */
function sourceFileFor(importer: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const base = resolve(dirname(importer), specifier).replace(/\.js$/, ".ts");
  return [base, `${base}.ts`, join(base, "index.ts")].find((p) => p.endsWith(".ts") && existsSync(p));
}

/** Function name → the positions of its parameters that take OpenAPI prose. */
export type ProseHelpers = ReadonlyMap<string, readonly number[]>;

/** Keys that hold prose in OpenAPI objects and in zod metadata. */
const PROSE_KEYS = new Set(["summary", "description", "example", "examples"]);
/** Calls whose object arguments are route definitions: zod-openapi's `createRoute`, src/http/routes.ts's builders. */
const ROUTE_DEFINERS = new Set([
  "createRoute",
  "publicRoute",
  "viewerRoute",
  "authedRoute",
  "roleRoute",
  "workerRoute",
]);
/** Methods whose object arguments are OpenAPI metadata: zod's `.meta()` and zod-openapi's `.openapi()`. */
const METADATA_METHODS = new Set(["meta", "openapi"]);
/** OpenAPIHono's document methods: their configuration (inline, or a const of the same file) has `info`. */
const DOCUMENT_METHODS = new Set(["doc", "doc31", "getOpenAPIDocument", "getOpenAPI31Document"]);
/** Keys whose object's keys are names (a JSON Schema's fields), not OpenAPI keywords. */
const NAME_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions"]);
/** A response's key in `responses`. */
const STATUS_KEY = /^([1-5](\d\d|XX)|default)$/;
const MEDIA_TYPE = /^[\w.+*-]+\/[\w.+*-]+$/;

/**
 * The source with its OpenAPI prose taken out, and the prose helpers it exports. Prose is the value of a
 * `summary`, `description`, `example` or `examples` key
 *  - in a route definition (an object argument of a route builder, at any depth through object and array
 *    literals: responses, their headers and media types, a request body),
 *  - in the object given to `.meta()` or `.openapi()` (a schema's or a parameter's metadata),
 *  - in a document's configuration (`.doc31(path, config)`: `info.description`),
 *  - in a response or request body written anywhere (an object whose `content` is keyed by media types, or
 *    one that spreads what a prose helper returns),
 * and the argument a prose helper takes prose in: a top-level function of the file (or one imported from a
 * relative module) with a parameter named like those keys that is used nowhere but in such positions
 * (`json(schema, description)` in src/http/openapi.ts, `idempotencyKey(description, example)`, …).
 *
 * Only inert values go (literals, names, lookups, and templates, sums and conditionals of those: nothing that
 * calls or assigns), so taking one out changes nothing but the document. A `summary` or `description` must
 * not be an object or array literal (a JSON Schema's field named `description` is a name in `properties`, left
 * alone as those are). The key goes, except a response's `description`, which OpenAPI requires: it becomes "".
 */
export function withoutOpenApiProse(
  source: string,
  fileName = "routes.ts",
  importedHelpers: (specifier: string) => ProseHelpers = () => new Map(),
): { text: string; exported: ProseHelpers } {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const helpers = new Map<string, readonly number[]>();
  for (const statement of file.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    const clause = statement.importClause;
    const names = clause?.namedBindings;
    if (!clause || clause.isTypeOnly || !names || !ts.isNamedImports(names)) continue;
    const theirs = importedHelpers(statement.moduleSpecifier.text);
    for (const element of names.elements) {
      const positions = theirs.get((element.propertyName ?? element.name).text);
      if (positions && !element.isTypeOnly) helpers.set(element.name.text, positions);
    }
  }
  // A top-level function is a helper once its prose-named parameters are used only in prose positions; one
  // helper can make another (`withEtag(description)` hands it to `json`), so look again after each one found.
  const exported = new Map<string, readonly number[]>();
  const candidates = topLevelFunctions(file).filter((f) => f.parameters.some(isProseNamed));
  let edits = proseEdits(file, helpers);
  for (let found = true; found; ) {
    found = false;
    for (const { name, body, parameters, isExported } of candidates) {
      if (helpers.has(name)) continue;
      const positions = parameters.flatMap((p, i) =>
        isProseNamed(p) && usedOnlyIn(file, body, (p.name as ts.Identifier).text, edits) ? [i] : [],
      );
      if (positions.length === 0) continue;
      helpers.set(name, positions);
      if (isExported) exported.set(name, positions);
      edits = proseEdits(file, helpers);
      found = true;
    }
  }
  return { text: applyEdits(source, edits), exported };
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

interface TopLevelFunction {
  name: string;
  body: ts.Node;
  parameters: readonly ts.ParameterDeclaration[];
  isExported: boolean;
}

const isProseNamed = (p: ts.ParameterDeclaration) => ts.isIdentifier(p.name) && PROSE_KEYS.has(p.name.text);

function topLevelFunctions(file: ts.SourceFile): TopLevelFunction[] {
  const exportedHere = (node: ts.Node) =>
    ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  const found: TopLevelFunction[] = [];
  for (const statement of file.statements) {
    if (ts.isFunctionDeclaration(statement) && statement.name && statement.body) {
      const { parameters, body } = statement;
      found.push({ name: statement.name.text, body, parameters, isExported: exportedHere(statement) });
    }
    if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        const fn = declaration.initializer && unwrap(declaration.initializer);
        if (ts.isIdentifier(declaration.name) && fn && (ts.isArrowFunction(fn) || ts.isFunctionExpression(fn))) {
          const { parameters, body } = fn;
          found.push({ name: declaration.name.text, body, parameters, isExported: exportedHere(statement) });
        }
      }
    }
  }
  return found;
}

/** True when every mention of `name` in `body` lies inside an edit (a mention that declares it again does not). */
function usedOnlyIn(file: ts.SourceFile, body: ts.Node, name: string, edits: Map<number, Edit>): boolean {
  const ranges = [...edits.values()];
  let only = true;
  const visit = (node: ts.Node) => {
    if (!only) return;
    if (ts.isIdentifier(node) && node.text === name && !isPropertyName(node)) {
      const [start, end] = [node.getStart(file), node.getEnd()];
      if (!ranges.some((e) => e.start <= start && end <= e.end)) only = false;
    }
    ts.forEachChild(node, visit);
  };
  visit(body);
  return only;
}

/** A property's name (`x.name`, `{ name: … }`), which is no mention of a variable; `{ name }` is one. */
function isPropertyName(node: ts.Identifier): boolean {
  const parent = node.parent;
  return (
    (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
    (ts.isQualifiedName(parent) && parent.right === node) ||
    ((ts.isPropertyAssignment(parent) || ts.isMethodDeclaration(parent) || ts.isPropertySignature(parent)) &&
      parent.name === node)
  );
}

function proseEdits(file: ts.SourceFile, helpers: ProseHelpers): Map<number, Edit> {
  const edits = new Map<number, Edit>();
  const add = (start: number, end: number, text: string) => edits.set(start, { start, end, text });
  const topLevelObject = (name: string) => {
    for (const statement of file.statements) {
      if (!ts.isVariableStatement(statement)) continue;
      for (const d of statement.declarationList.declarations) {
        const value = d.initializer && unwrap(d.initializer);
        if (ts.isIdentifier(d.name) && d.name.text === name && value && ts.isObjectLiteralExpression(value))
          return value;
      }
    }
    return undefined;
  };
  // `{ ...json(Entry, "The entry"), headers }`: what a helper makes, extended.
  const extendsHelper = (object: ts.ObjectLiteralExpression) =>
    object.properties.some((p) => {
      const spread = ts.isSpreadAssignment(p) ? unwrap(p.expression) : undefined;
      return (
        spread &&
        ts.isCallExpression(spread) &&
        ts.isIdentifier(spread.expression) &&
        helpers.has(spread.expression.text)
      );
    });
  const strip = (object: ts.ObjectLiteralExpression) => {
    const isResponse = isMessage(object) || isResponseEntry(object) || extendsHelper(object);
    for (const property of object.properties) {
      const key = keyOf(property);
      if (key === undefined) continue;
      if (PROSE_KEYS.has(key) && isProse(property, key)) {
        if (key === "description" && isResponse) {
          if (ts.isShorthandPropertyAssignment(property)) {
            add(property.getStart(file), property.getEnd(), 'description: ""');
          } else if (ts.isPropertyAssignment(property) && !isEmptyText(property.initializer)) {
            add(property.initializer.getStart(file), property.initializer.getEnd(), '""');
          }
        } else {
          add(property.getStart(file), endWithComma(file, property), "");
        }
        continue;
      }
      if (!ts.isPropertyAssignment(property)) continue;
      const value = unwrap(property.initializer);
      if (NAME_MAPS.has(key) && ts.isObjectLiteralExpression(value)) {
        for (const field of value.properties) {
          const schema = ts.isPropertyAssignment(field) ? unwrap(field.initializer) : undefined;
          if (schema && ts.isObjectLiteralExpression(schema)) strip(schema);
        }
      } else if (ts.isObjectLiteralExpression(value)) {
        strip(value);
      } else if (ts.isArrayLiteralExpression(value)) {
        for (const element of value.elements) {
          const item = unwrap(element);
          if (ts.isObjectLiteralExpression(item)) strip(item);
        }
      }
    }
  };
  const stripArguments = (call: ts.CallExpression, resolveNames: boolean) => {
    for (const argument of call.arguments) {
      const value = unwrap(argument);
      const object = ts.isIdentifier(value) && resolveNames ? topLevelObject(value.text) : value;
      if (object && ts.isObjectLiteralExpression(object)) strip(object);
    }
  };
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (ts.isIdentifier(callee) && ROUTE_DEFINERS.has(callee.text)) stripArguments(node, false);
      if (ts.isPropertyAccessExpression(callee) && METADATA_METHODS.has(callee.name.text)) stripArguments(node, false);
      if (ts.isPropertyAccessExpression(callee) && DOCUMENT_METHODS.has(callee.name.text)) stripArguments(node, true);
      for (const position of (ts.isIdentifier(callee) && helpers.get(callee.text)) || []) {
        const argument = node.arguments[position];
        if (argument && isInert(argument) && !isEmptyText(argument)) {
          add(argument.getStart(file), argument.getEnd(), '""');
        }
      }
    }
    if (ts.isObjectLiteralExpression(node) && (isMessage(node) || extendsHelper(node))) strip(node);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return edits;
}

function keyOf(property: ts.ObjectLiteralElementLike): string | undefined {
  const name = property.name;
  if (!name || ts.isComputedPropertyName(name) || ts.isPrivateIdentifier(name)) return undefined;
  return name.text;
}

/** A prose key's value: inert, and for a summary or description not an object or array (a field, not text). */
function isProse(property: ts.ObjectLiteralElementLike, key: string): boolean {
  if (ts.isShorthandPropertyAssignment(property)) return !property.objectAssignmentInitializer;
  if (!ts.isPropertyAssignment(property) || !isInert(property.initializer)) return false;
  const value = unwrap(property.initializer);
  return key.startsWith("example") || !(ts.isObjectLiteralExpression(value) || ts.isArrayLiteralExpression(value));
}

/** A response or request body: its `content` is an object keyed by media types. */
function isMessage(object: ts.ObjectLiteralExpression): boolean {
  return object.properties.some((p) => {
    if (keyOf(p) !== "content" || !ts.isPropertyAssignment(p)) return false;
    const content = unwrap(p.initializer);
    return (
      ts.isObjectLiteralExpression(content) &&
      content.properties.length > 0 &&
      content.properties.every((m) => MEDIA_TYPE.test(keyOf(m) ?? ""))
    );
  });
}

/** The value of a status code's key (`responses: { 204: { description } }`). */
function isResponseEntry(object: ts.ObjectLiteralExpression): boolean {
  const parent = object.parent;
  return (
    ts.isPropertyAssignment(parent) && STATUS_KEY.test(keyOf(parent) ?? "") && unwrap(parent.initializer) === object
  );
}

/** The end of a property with the comma after it, so that removing it leaves a valid list. */
function endWithComma(file: ts.SourceFile, property: ts.Node): number {
  const siblings = property.parent.getChildren(file).find((c) => c.kind === ts.SyntaxKind.SyntaxList);
  const list = siblings?.getChildren(file) ?? [];
  const next = list[list.indexOf(property) + 1];
  return next?.kind === ts.SyntaxKind.CommaToken ? next.getEnd() : property.getEnd();
}

function unwrap(node: ts.Expression): ts.Expression {
  while (
    ts.isParenthesizedExpression(node) ||
    ts.isAsExpression(node) ||
    ts.isSatisfiesExpression(node) ||
    ts.isNonNullExpression(node) ||
    ts.isTypeAssertionExpression(node)
  ) {
    node = node.expression;
  }
  return node;
}

const isEmptyText = (node: ts.Expression) =>
  (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && node.text === "";

/**
 * An expression whose evaluation does nothing but make its value: literals, names, property lookups, and
 * templates, operators, conditionals, arrays and objects of those. No call, `new`, assignment or spread.
 */
export function isInert(expression: ts.Expression): boolean {
  const node = unwrap(expression);
  switch (node.kind) {
    case ts.SyntaxKind.StringLiteral:
    case ts.SyntaxKind.NoSubstitutionTemplateLiteral:
    case ts.SyntaxKind.NumericLiteral:
    case ts.SyntaxKind.BigIntLiteral:
    case ts.SyntaxKind.TrueKeyword:
    case ts.SyntaxKind.FalseKeyword:
    case ts.SyntaxKind.NullKeyword:
    case ts.SyntaxKind.Identifier:
      return true;
  }
  if (ts.isTemplateExpression(node)) return node.templateSpans.every((s) => isInert(s.expression));
  if (ts.isPropertyAccessExpression(node)) return isInert(node.expression);
  if (ts.isElementAccessExpression(node)) return isInert(node.expression) && isInert(node.argumentExpression);
  if (ts.isConditionalExpression(node)) return [node.condition, node.whenTrue, node.whenFalse].every(isInert);
  if (ts.isBinaryExpression(node)) {
    const op = node.operatorToken.kind;
    const assigns = op >= ts.SyntaxKind.FirstAssignment && op <= ts.SyntaxKind.LastAssignment;
    return !assigns && isInert(node.left) && isInert(node.right);
  }
  if (ts.isPrefixUnaryExpression(node)) {
    const op = node.operator;
    return op !== ts.SyntaxKind.PlusPlusToken && op !== ts.SyntaxKind.MinusMinusToken && isInert(node.operand);
  }
  if (ts.isTypeOfExpression(node) || ts.isVoidExpression(node)) return isInert(node.expression);
  if (ts.isArrayLiteralExpression(node)) return node.elements.every((e) => !ts.isSpreadElement(e) && isInert(e));
  if (ts.isObjectLiteralExpression(node)) {
    return node.properties.every(
      (p) =>
        ts.isShorthandPropertyAssignment(p) ||
        (ts.isPropertyAssignment(p) &&
          isInert(p.initializer) &&
          (!ts.isComputedPropertyName(p.name) || isInert(p.name.expression))),
    );
  }
  return false;
}

/** Applies non-overlapping edits (one inside another: the outer one wins). */
function applyEdits(source: string, edits: Map<number, Edit>): string {
  const ordered = [...edits.values()].sort((a, b) => a.start - b.start || b.end - a.end);
  let out = "";
  let at = 0;
  for (const edit of ordered) {
    if (edit.start < at) {
      if (edit.end <= at) continue;
      throw new Error(`overlapping OpenAPI prose edits at ${edit.start}`);
    }
    out += source.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return out + source.slice(at);
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
      cutSources("cut-sources", () => [
        ...((opts.keepSettingDocs ?? plain) ? [] : [settingDocsCut]),
        ...((opts.keepOpenApiProse ?? plain) ? [] : [openApiProseCut()]),
      ]),
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
    ...((opts.openApiAsset ?? true) ? { openApiAsset: await writeOpenApiDocument(join(outdir, "assets")) } : {}),
  };
}

interface AppModule {
  createApp(depsFor: () => never): { getOpenAPI31Document(config: unknown): unknown };
  OPENAPI_DOCUMENT: unknown;
}

/**
 * Writes the complete OpenAPI document, prose and all, to `<dir>/openapi.json`: what the source serves at
 * `/openapi.json`, generated by the app's own code in Node (the document depends on nothing but the route
 * definitions and schemas: no bindings, no store, so no runtime to start). `npm run deploy` uploads the
 * directory as the Worker's static assets, which answer before the Worker runs.
 */
export async function writeOpenApiDocument(dir: string): Promise<{ path: string; bytes: number }> {
  // A path the Node type check does not follow (src/ is checked with the Workers types).
  const app = (await import(pathToFileURL(join(root, "src", "app.ts")).href)) as AppModule;
  const document = app
    .createApp(() => {
      throw new Error("the document needs no Deps");
    })
    .getOpenAPI31Document(app.OPENAPI_DOCUMENT);
  // As the Worker sends it (`c.json`).
  const text = JSON.stringify(document);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "openapi.json");
  writeFileSync(path, text);
  // Static assets' response headers (Workers' `_headers` file): tools on other origins (editors, generators in
  // a browser) read the document, as they could when the Worker answered with CORS; it is public and has no
  // credentials to guard, so any origin may.
  writeFileSync(join(dir, "_headers"), "/openapi.json\n  Access-Control-Allow-Origin: *\n");
  return { path, bytes: Buffer.byteLength(text) };
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
  if (built.openApiAsset) console.log(`wrote ${built.openApiAsset.path}: ${kib(built.openApiAsset.bytes)} KiB`);
  if (values.inputs) {
    for (const [owner, bytes] of Object.entries(built.inputs).sort(([, a], [, b]) => b - a)) {
      console.log(`  ${kib(bytes).padStart(8)} KiB  ${owner}`);
    }
  }
}
