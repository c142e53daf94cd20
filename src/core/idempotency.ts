import { z } from "zod";
import { ApiError } from "./errors";

/**
 * A create request that carries an `Idempotency-Key`: the key and a fingerprint of the request (method, path and
 * body). Services store both with what they create, under a unique index, so a retry whose first attempt
 * committed (its answer lost to a timeout, a 503, a dropped connection, or its Redis record gone) finds the
 * first result instead of making a second one, and the same key with another request is refused.
 */
export interface IdempotentRequest {
  key: string;
  fingerprint: string;
}

/** `Idempotency-Key` on creates that accept one (optional: without it a retry may create twice). */
export const OptionalIdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .optional()
    .meta({
      description:
        "Client-chosen key (e.g. a UUID per create): a retry with it returns the first answer instead of creating " +
        "again; the same key with a different body is a 422, while the first is still running a 409",
      example: "2f1d5f3f-7e10-4c2e-9a43-0b6f4c3e6a9c",
    }),
});

/** The 422 for an Idempotency-Key reused with a different request. */
export function idempotencyMismatch(): ApiError {
  return new ApiError(
    "idempotency_mismatch",
    "This Idempotency-Key was already used with a different request; use a new key.",
  );
}
