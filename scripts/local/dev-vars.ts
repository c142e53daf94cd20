import { existsSync, readFileSync, writeFileSync } from "node:fs";

const DEV_VARS = ".dev.vars";

/** Reads wrangler's `.dev.vars` (KEY=value lines) if present. */
export function readDevVars(path = DEV_VARS): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*"?(.*?)"?\s*$/.exec(line);
    if (match?.[1]) vars[match[1]] = match[2] ?? "";
  }
  return vars;
}

export function writeDevVars(vars: Record<string, string>, path = DEV_VARS): void {
  const body = Object.entries(vars)
    .map(([k, v]) => `${k}="${v.replace(/"/g, '\\"')}"`)
    .join("\n");
  writeFileSync(path, `# Written by scripts/dev.ts for the local stack; not for production.\n${body}\n`, {
    mode: 0o600,
  });
}
