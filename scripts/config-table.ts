// `npm run config:table`: prints README's settings table from the config schema (src/config.ts), the one place
// a setting is named; `-- --write` replaces the table in README.md between its markers. A unit test keeps
// README and the schema in step.
import { readFileSync, writeFileSync } from "node:fs";
import type { z } from "zod";
import { allSettings } from "../src/config";

export const TABLE_START = "<!-- settings:start -->";
export const TABLE_END = "<!-- settings:end -->";

interface ZodInternals {
  _zod: { def: { type: string; defaultValue?: unknown; in?: z.ZodType; innerType?: z.ZodType } };
}

/** The default as an operator would write it in the environment, or null when the setting is required. */
function defaultText(schema: z.ZodType): string | null {
  const def = (schema as unknown as ZodInternals)._zod.def;
  if (def.type === "default") return format(def.defaultValue);
  if (def.type === "pipe" && def.in) return defaultText(def.in);
  if (def.type === "optional") return "(unset)";
  return null;
}

function format(value: unknown): string {
  if (Array.isArray(value)) return value.length ? value.join(",") : "(none)";
  if (value === "") return "(empty)";
  return String(value);
}

export function settingsTable(): string {
  const rows = allSettings().map(({ setting }) => {
    const fallback = defaultText(setting.schema);
    return `| \`${setting.env}\` | ${fallback === null ? "—" : fallback} | ${setting.secret ? "yes" : ""} | ${setting.doc} |`;
  });
  return ["| setting | default | secret | what |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/** README.md with its settings table replaced by the current one. */
export function readmeWithTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${TABLE_START} … ${TABLE_END} block`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${settingsTable()}\n${readme.slice(end)}`;
}

if (process.argv[1]?.endsWith("config-table.ts")) {
  if (process.argv.includes("--write")) {
    writeFileSync("README.md", readmeWithTable(readFileSync("README.md", "utf8")));
    console.log("README.md: settings table updated");
  } else {
    console.log(settingsTable());
  }
}
