import { existsSync, readFileSync, writeFileSync } from "node:fs";

const DEV_VARS = ".dev.vars";
/** Untracked, yours: settings merged over what the dev script writes (e.g. SETTLEMENT_DELAY_SECONDS=10). */
export const DEV_OVERRIDES = ".dev.vars.local";

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

/**
 * The developer's own settings for `npm run dev`: `.dev.vars.local` (KEY=value lines, untracked), then every
 * `--set KEY=value`, later ones winning. Names the config does not know are refused, so a typo cannot pass
 * silently.
 */
export function devOverrides(sets: string[], known: readonly string[], path = DEV_OVERRIDES): Record<string, string> {
  const overrides: Record<string, string> = { ...readDevVars(path) };
  for (const entry of sets) {
    const match = /^([A-Z0-9_]+)=(.*)$/s.exec(entry);
    if (!match?.[1]) throw new Error(`--set expects KEY=value, got "${entry}"`);
    overrides[match[1]] = match[2] ?? "";
  }
  const unknown = Object.keys(overrides).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Error(`unknown setting${unknown.length > 1 ? "s" : ""} in overrides: ${unknown.join(", ")}`);
  }
  return overrides;
}
