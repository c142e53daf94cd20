import { defineConfig } from "vitest/config";

/**
 * The fast tier (`npm run test:unit`): pure logic only (ranking, fraud, flag bucketing, trust, ledger math,
 * config, cursors, keys, passwords), in plain Node, with no store started. `npm test` runs these too.
 */
export const unitProject = {
  test: {
    name: "unit",
    environment: "node",
    include: ["test/unit/**/*.test.ts"],
  },
};

export default defineConfig({ test: { projects: [unitProject] } });
