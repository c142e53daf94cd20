import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { openApiProseCut, withoutOpenApiProse, withoutSettingDocs } from "../../scripts/build-worker";

// TypeScript source text: the `${…}` are meant literally.
const source = [
  "const setting = (env: string, schema: unknown, doc: string) => ({ env, schema, doc });",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
  "const perTier = (prefix: string, doc: string) => setting(`${prefix}_FREE`, 1, `${doc} (free tier)`);",
  "function secret(env: string, doc: string) { return { env, doc }; }",
  'export const a = setting("A", 1, "first " + "part");',
  'export const b = perTier("B", "per day");',
  'export const c = setting("C", 1, describe());',
  'export const d = other("D", 1, "kept");',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
  'export const e = secret("E", `a ${"x"} b`);',
].join("\n");

describe("the Worker build's description cut (scripts/build-worker.ts)", () => {
  const out = withoutSettingDocs(source);

  it("empties the `doc` argument of every helper that takes one, in literals, sums and templates of names", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
    expect(out).toContain('setting(`${prefix}_FREE`, 1, "")');
    expect(out).toContain('setting("A", 1, "")');
    expect(out).toContain('perTier("B", "")');
  });

  it("keeps what is not plain text or not a description: a call, another function's argument, a computed template", () => {
    expect(out).toContain('setting("C", 1, describe())');
    expect(out).toContain('other("D", 1, "kept")');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
    expect(out).toContain('secret("E", `a ${"x"} b`)');
  });

  it("changes nothing else", () => {
    expect(out.replace(/""/g, "")).toBe(
      source
        .replace('"first " + "part"', "")
        .replace('"per day"', "")
        // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
        .replace("`${doc} (free tier)`", ""),
    );
  });
});

// A feature's routes and schemas, as TypeScript source text.
const routes = [
  'import { json } from "../../http/openapi";',
  'import { authedRoute, roleRoute } from "../../http/routes";',
  "const PRIVATE = 'Only the owner sees it.';",
  "const Item = z",
  "  .object({",
  '    id: z.string().meta({ description: "The item\'s id", example: "abc123" }),',
  "    name: z.string().meta({ description: describeName() }),",
  "    description: z.string().max(500),",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
  '    theme: z.string().meta({ title: "Theme", description: `One of ${THEMES.length} themes` }),',
  '    tags: z.array(z.string()).default(["new"]).meta({ examples: [["a", "b"]] }),',
  "  })",
  '  .meta({ id: "Item", description: "An item" + " of the caller\'s" });',
  'const Raw = z.unknown().meta({ type: "object", properties: { description: { type: "string", description: "Its text" } } });',
  "const count = (description: string) => z.number().int().meta({ description });",
  "const ledgerEntry = (amount: number, description: string) => ({ amount, description });",
  "const withEtag = (description: string) => ({",
  "  ...json(Item, description),",
  '  headers: { ETag: { description: "The version", schema: { type: "string" } } },',
  "});",
  "const getRoute = authedRoute({",
  '  method: "get",',
  '  path: "/v1/items/{id}",',
  '  summary: "One item",',
  "  description: PRIVATE,",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
  '  responses: { 200: withEtag("The item"), 204: { description: `No ${kind}` }, ...problems(404) },',
  "});",
  'const adminRoute = roleRoute(["admin"], {',
  '  method: "get",',
  '  path: "/v1/admin/items",',
  '  summary: kind === "all" ? "Every item" : "Some items",',
  '  responses: { 200: json(Page, "A page") },',
  "});",
  'const Total = count("How many");',
  'const reward = ledgerEntry(5, "Daily check-in");',
  'const job = { name: "purge", description: "Shown in the admin job list" };',
  'const problem = { title: "Not Found", detail: "No such item.", description: "kept" };',
  'throw ApiError.conflict("item_exists", "That item exists.");',
].join("\n");

describe("the Worker build's OpenAPI prose cut (scripts/build-worker.ts)", () => {
  const imported = (specifier: string) => new Map(specifier === "../../http/openapi" ? [["json", [1]]] : []);
  const { text, exported } = withoutOpenApiProse(routes, "routes.ts", imported);
  // A removed key leaves its blanks and maybe a trailing comma (both valid; see the TypeScript check below).
  const tidy = (source: string) =>
    source
      .replace(/,\s*(?=[}\]])/g, " ")
      .replace(/[ \t]+/g, " ")
      .replace(/\n /g, "\n");
  const out = tidy(text);

  it("takes out summaries, descriptions and examples of routes, responses, schemas and prose helpers' arguments", () => {
    // Literals, sums, templates of names, conditionals, a constant's name; a response keeps an empty description.
    const expected = routes
      .replace(' description: "The item\'s id", example: "abc123" ', "  ")
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
      .replace(", description: `One of ${THEMES.length} themes` ", " ")
      .replace(' examples: [["a", "b"]] ', "  ")
      .replace(', description: "An item" + " of the caller\'s" ', " ")
      .replace(', description: "Its text" ', " ")
      .replace("meta({ description })", "meta({  })")
      .replace("json(Item, description)", 'json(Item, "")')
      .replace('description: "The version", ', "")
      .replace('summary: "One item",', "")
      .replace("description: PRIVATE,", "")
      .replace('withEtag("The item")', 'withEtag("")')
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text
      .replace("description: `No ${kind}`", 'description: ""')
      .replace('summary: kind === "all" ? "Every item" : "Some items",', "")
      .replace('json(Page, "A page")', 'json(Page, "")')
      .replace('count("How many")', 'count("")');
    expect(out).toBe(tidy(expected));
  });

  it("leaves what the code reads or computes: ids, titles, roles, fields named description, data, errors, calls", () => {
    expect(out).toContain('.meta({ id: "Item" })');
    expect(out).toContain('roleRoute(["admin"]');
    expect(out).toContain("meta({ description: describeName() })");
    expect(out).toContain("description: z.string().max(500)");
    expect(out).toContain('properties: { description: { type: "string" } }');
    expect(out).toContain('ledgerEntry(5, "Daily check-in")');
    expect(out).toContain('description: "Shown in the admin job list"');
    expect(out).toContain('{ title: "Not Found", detail: "No such item.", description: "kept" }');
    expect(out).toContain('ApiError.conflict("item_exists", "That item exists.")');
  });

  it("finds prose helpers only where the parameter is used for prose, and only through their imports", () => {
    expect(exported).toEqual(new Map());
    const elsewhere = withoutOpenApiProse(
      'const json = (v: unknown, description: string) => save(v, description);\njson(x, "kept");',
    );
    expect(elsewhere.text).toContain('json(x, "kept")');
    const unimported = withoutOpenApiProse('import { json } from "./other";\njson(x, "kept");', "a.ts", imported);
    expect(unimported.text).toContain('json(x, "kept")');
    const helpers = withoutOpenApiProse(
      "export function json(schema: unknown, description: string) {\n" +
        '  return { description, content: { "application/json": { schema } } };\n}',
    );
    expect(helpers.exported).toEqual(new Map([["json", [1]]]));
    expect(helpers.text).toContain('return { description: "", content');
  });

  it("leaves valid TypeScript, also where a removed key was the first, the last or the only one", () => {
    const { diagnostics } = ts.transpileModule(text, { reportDiagnostics: true, fileName: "routes.ts" });
    expect(diagnostics).toEqual([]);
  });

  it("cuts the real sources: json() in src/http/openapi.ts is followed into a feature's routes", () => {
    const cut = openApiProseCut();
    const path = resolve("src/features/journal/routes.ts");
    const text = cut.cut(readFileSync(path, "utf8"), path);
    expect(text).not.toContain("Write the entry of a day");
    expect(text).toMatch(/responses: \{ 201: withEtag\(""\)/);
    expect(text).toContain('path: "/v1/journal/entries"');
  });
});
