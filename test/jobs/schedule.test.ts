import { describe, expect, it } from "vitest";
import { jobs, schedule } from "../../src/scheduler/schedule";
import wranglerToml from "../../wrangler.toml?raw";

describe("cron schedule", () => {
  it("binds exactly the crons that wrangler.toml triggers", () => {
    const match = /crons\s*=\s*\[([^\]]*)\]/.exec(wranglerToml);
    const crons = [...(match?.[1] ?? "").matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    expect(crons.sort()).toEqual(schedule.map((s) => s.cron).sort());
  });

  it("names every trigger as Deno.cron accepts (letters, digits, whitespace, hyphens, underscores)", () => {
    for (const trigger of schedule) expect(`circle-${trigger.name}`).toMatch(/^[A-Za-z0-9\s_-]+$/);
  });

  it("gives every job a unique name", () => {
    expect(new Set(jobs.map((j) => j.name)).size).toBe(jobs.length);
  });
});
