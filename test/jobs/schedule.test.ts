import { describe, expect, it } from "vitest";
import { jobs, schedule } from "../../src/jobs";
import wranglerToml from "../../wrangler.toml?raw";

describe("cron schedule", () => {
  it("binds exactly the crons that wrangler.toml triggers", () => {
    const match = /crons\s*=\s*\[([^\]]*)\]/.exec(wranglerToml);
    const crons = [...(match?.[1] ?? "").matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    expect(crons.sort()).toEqual(Object.keys(schedule).sort());
  });

  it("gives every job a unique name", () => {
    expect(new Set(jobs.map((j) => j.name)).size).toBe(jobs.length);
  });
});
