import { loadConfig } from "./config";
import { createDeps, type Deps } from "./deps";

const cache = new WeakMap<object, Deps>();

/**
 * Deps for a runtime's bindings, built on first use and reused for the isolate's lifetime (the bindings
 * object is stable per isolate). Throws ConfigError naming any bad setting.
 */
export function depsForEnv(env: Record<string, unknown>): Deps {
  let deps = cache.get(env);
  if (!deps) {
    deps = createDeps(loadConfig(env));
    cache.set(env, deps);
  }
  return deps;
}
