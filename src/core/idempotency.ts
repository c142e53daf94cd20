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

/** 1–255 printable ASCII characters (space included), as clients send UUIDs or their own ids. */
export const IDEMPOTENCY_KEY_FORMAT = /^[\x20-\x7E]{1,255}$/;

/** The header's schema: declared and checked with the route's other input, so a bad key is a 400 naming it. */
const idempotencyKey = (description: string, example: string) =>
  z.string().regex(IDEMPOTENCY_KEY_FORMAT, "1–255 printable ASCII characters").meta({ description, example });

/** `Idempotency-Key` on money-like POSTs, where it is required. */
export const IdempotencyHeaders = z.object({
  "idempotency-key": idempotencyKey(
    "Client-chosen key; a repeat replays the first answer",
    "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
  ),
});

/** `Idempotency-Key` on creates that accept one (optional: without it a retry may create twice). */
export const OptionalIdempotencyHeaders = z.object({
  "idempotency-key": idempotencyKey(
    "Client-chosen key (e.g. a UUID per create): a retry with it returns the first answer instead of creating " +
      "again; the same key with a different body is a 422, while the first is still running a 409",
    "2f1d5f3f-7e10-4c2e-9a43-0b6f4c3e6a9c",
  ).optional(),
});

/** The 422 for an Idempotency-Key reused with a different request. */
export function idempotencyMismatch(): ApiError {
  return new ApiError(
    "idempotency_mismatch",
    "This Idempotency-Key was already used with a different request; use a new key.",
  );
}
