import { describe, expect, it } from "vitest";
import { withoutSettingDocs } from "../../scripts/build-worker";

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
