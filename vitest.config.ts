import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { planTestStack } from "./test/setup/plan";
import { unitProject } from "./vitest.unit.config";

// Ports and secrets are chosen here, once, in the main process: the Worker's bindings need them at
// config time and the global setup (same process) starts the services on exactly these ports.
const plan = await planTestStack();

export default defineConfig({
  test: {
    globalSetup: ["./test/setup/global-stack.ts"],
    projects: [
      unitProject,
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/gateway/**/*.test.ts", "test/local/**/*.test.ts", "test/deno/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: plan.workerBindings },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/api/**/*.test.ts", "test/jobs/**/*.test.ts"],
          setupFiles: ["./test/support/declared-statuses.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
