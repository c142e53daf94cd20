import { env } from "cloudflare:workers";
import { createApp } from "../../src/app";
import { type Config, loadConfig } from "../../src/config";
import { bindingsOf, createDeps, type Deps } from "../../src/deps";

/** The settings the test Worker runs with, optionally overridden. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return { ...(env as unknown as Record<string, string>), ...overrides };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}

/** Deps against the real local stack, as jobs and the Worker build them. */
export function testDeps(overrides: Record<string, string> = {}): Deps {
  // The test Worker's media bucket (Miniflare's R2), so jobs and custom apps see what the Worker stores.
  const { mediaBucket } = bindingsOf(env as unknown as Record<string, unknown>);
  return createDeps(testConfig(overrides), {}, { mediaBucket });
}

/** The real app, inside workerd, with a different configuration (e.g. a low rate limit or a dead store). */
export function appWith(overrides: Record<string, string>): (request: Request) => Promise<Response> {
  const deps = testDeps(overrides);
  const app = createApp(() => deps);
  return async (request) => app.fetch(request, {});
}

/**
 * The real app whose Data API answers to writes arrive `holdMs` late (test/setup/hold-proxy.ts) while its
 * STORE_TIMEOUT_MS is shorter: it answers 503 for a write the gateway has applied, the case a client retries.
 * `actions` limits the held answers to those Data API actions (default: every write).
 */
export function appWithLateWrites(
  options: { holdMs?: number; timeoutMs?: number; actions?: string[] } = {},
): (request: Request) => Promise<Response> {
  const hold = `${env.TEST_DATA_API_HOLD_URL}/${options.holdMs ?? 1_500}${options.actions ? `:${options.actions.join(",")}` : ""}`;
  const gatewayPath = new URL(testEnv().DATA_API_URL ?? "").pathname;
  return appWith({
    DATA_API_URL: `${hold}${gatewayPath}`,
    STORE_TIMEOUT_MS: String(options.timeoutMs ?? 300),
    DATA_API_READ_RETRIES: "0",
  });
}

/** Polls `probe` until it returns something truthy (a write another request made becoming visible). */
export async function eventually<T>(
  probe: () => Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`${what} never happened`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
