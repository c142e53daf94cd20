import { z } from "zod";
import type { GatewayOptions } from "./node";

/**
 * The gateway CLI's settings from the environment, validated with zod. A missing or malformed setting fails
 * with a message naming it (and never echoing secret values).
 */

export class GatewayConfigError extends Error {
  override name = "GatewayConfigError";
}

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const positiveInt = (fallback?: number) =>
  optionalText
    .pipe(
      z
        .string()
        .regex(/^\d+$/, "must be a positive integer")
        .transform(Number)
        .refine((value) => value > 0, "must be a positive integer")
        .optional(),
    )
    .transform((value) => value ?? fallback);

const list = (fallback?: string) =>
  optionalText
    .transform((value) => value ?? fallback)
    .pipe(
      z
        .string({ error: "is required" })
        .transform((value) =>
          value
            .split(",")
            .map((item) => item.trim())
            .filter((item) => item.length > 0),
        )
        .refine((items) => items.length > 0, "must list at least one value"),
    );

const EnvSchema = z.object({
  GATEWAY_PORT: optionalText.pipe(
    z
      .string()
      .regex(/^\d+$/, "must be a port number")
      .transform(Number)
      .refine((port) => port > 0 && port < 65_536, "must be a port number (1-65535)")
      .optional(),
  ),
  GATEWAY_HOST: optionalText,
  DATA_API_KEYS: list(),
  DATA_API_DATABASES: list("circle"),
  MONGODB_URI: optionalText.pipe(
    z
      .string()
      .regex(/^mongodb(\+srv)?:\/\/\S+$/, "must be a mongodb:// or mongodb+srv:// connection string")
      .optional(),
  ),
  GATEWAY_DATA_DIR: optionalText,
  GATEWAY_MAX_BODY_BYTES: positiveInt(),
  GATEWAY_MAX_LIMIT: positiveInt(),
  GATEWAY_MAX_TIME_MS: positiveInt(),
  GATEWAY_TTL_SWEEP_MS: positiveInt(),
  GATEWAY_COMPACT_BYTES: positiveInt(),
  GATEWAY_MAX_BATCH_OPERATIONS: positiveInt(),
});

export function loadGatewayConfig(env: Record<string, string | undefined>): GatewayOptions {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "environment"} ${issue.message}`);
    throw new GatewayConfigError(`invalid gateway configuration: ${problems.join("; ")}`);
  }
  const settings = parsed.data;
  const options: GatewayOptions = {
    port: settings.GATEWAY_PORT ?? 8081,
    host: settings.GATEWAY_HOST ?? "127.0.0.1",
    apiKeys: settings.DATA_API_KEYS,
    databases: settings.DATA_API_DATABASES,
    backend: settings.MONGODB_URI
      ? { kind: "mongodb", uri: settings.MONGODB_URI }
      : {
          kind: "embedded",
          ...(settings.GATEWAY_DATA_DIR ? { dataDir: settings.GATEWAY_DATA_DIR } : {}),
          ...(settings.GATEWAY_TTL_SWEEP_MS ? { ttlSweepMs: settings.GATEWAY_TTL_SWEEP_MS } : {}),
          ...(settings.GATEWAY_COMPACT_BYTES ? { compactAfterBytes: settings.GATEWAY_COMPACT_BYTES } : {}),
        },
  };
  if (settings.GATEWAY_MAX_BODY_BYTES) options.maxBodyBytes = settings.GATEWAY_MAX_BODY_BYTES;
  if (settings.GATEWAY_MAX_LIMIT) options.maxLimit = settings.GATEWAY_MAX_LIMIT;
  if (settings.GATEWAY_MAX_TIME_MS) options.maxTimeMS = settings.GATEWAY_MAX_TIME_MS;
  if (settings.GATEWAY_MAX_BATCH_OPERATIONS) options.maxBatchOperations = settings.GATEWAY_MAX_BATCH_OPERATIONS;
  return options;
}
