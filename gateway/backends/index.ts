import { MongoBackend } from "./mongodb";
import type { Backend } from "./types";

export type BackendConfig =
  | { kind: "embedded"; dataDir?: string; ttlSweepMs?: number; compactAfterBytes?: number }
  | { kind: "mongodb"; uri: string };

/**
 * Opens the configured backend. The embedded engine (and mingo under it) is imported only here, on demand,
 * so a production gateway (MONGODB_URI set) neither loads nor, bundled, ships it. It refuses to open when
 * NODE_ENV=production.
 */
export async function openBackend(
  config: BackendConfig,
  options: { maxTimeMS?: number; log?: (line: string) => void } = {},
): Promise<Backend> {
  if (config.kind === "mongodb") {
    return new MongoBackend({ uri: config.uri, ...(options.maxTimeMS ? { maxTimeMS: options.maxTimeMS } : {}) });
  }
  const { EmbeddedBackend } = await import("./embedded/backend");
  return EmbeddedBackend.open({
    ...(config.dataDir ? { dataDir: config.dataDir } : {}),
    ...(config.ttlSweepMs ? { ttlSweepMs: config.ttlSweepMs } : {}),
    ...(config.compactAfterBytes ? { compactAfterBytes: config.compactAfterBytes } : {}),
    ...(options.maxTimeMS ? { maxTimeMS: options.maxTimeMS } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

// Type only: a value export would pull the engine into every importer (import it from ./embedded/backend).
export type { EmbeddedBackend } from "./embedded/backend";
export { MongoBackend, mapMongoError } from "./mongodb";
export type * from "./types";
