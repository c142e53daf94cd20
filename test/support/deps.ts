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
