import { existsSync, readFileSync, writeFileSync } from "node:fs";

const DEV_VARS = ".dev.vars";
/** Untracked, yours: settings merged over what the dev script writes (e.g. SETTLEMENT_DELAY_SECONDS=10). */
export const DEV_OVERRIDES = ".dev.vars.local";

/** Reads wrangler's `.dev.vars` (KEY=value lines) if present. */
export function readDevVars(path = DEV_VARS): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match?.[1]) continue;
    const raw = match[2] ?? "";
    const quote = raw.length >= 2 && raw[0] === raw[raw.length - 1] ? raw[0] : undefined;
    // As devVarsLine writes them: single quotes literal, double quotes with `\"` for a quote.
    if (quote === "'") vars[match[1]] = raw.slice(1, -1);
    else if (quote === '"') vars[match[1]] = raw.slice(1, -1).replace(/\\"/g, '"');
    else vars[match[1]] = raw;
  }
  return vars;
}

/**
 * wrangler reads `.dev.vars` with dotenv's rules: a single-quoted value is taken literally, while a double-quoted
 * one turns `\n` into a newline and keeps `\"` as is. JSON values (a service-account key file, a catalog) survive
 * only single quotes, so those are used whenever the value has no single quote of its own.
 */
export function devVarsLine(key: string, value: string): string {
  return value.includes("'") ? `${key}="${value.replace(/"/g, '\\"')}"` : `${key}='${value}'`;
}

export function writeDevVars(vars: Record<string, string>, path = DEV_VARS): void {
  const body = Object.entries(vars)
    .map(([k, v]) => devVarsLine(k, v))
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
