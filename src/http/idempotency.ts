import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError } from "../core/errors";
import { IDEMPOTENCY_KEY_FORMAT } from "../core/idempotency";
import { sha256Hex } from "../platform/crypto";
import { StoreUnavailableError } from "../platform/errors";
import { claimOrGet, deleteKeys, replaceValue, runOp } from "../platform/redis-ops";
import type { AuthedEnv } from "./auth";
import type { AppEnv } from "./context";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
export const REPLAYED_HEADER = "Idempotent-Replayed";
/**
 * Answers where nothing happened and a retry may succeed (fixed input or Content-Type, a conflict that cleared):
 * not kept. A 422 from below is the durable record's verdict that the key belongs to another request (its Redis
 * record was gone): kept, it would make the key's own request look like the impostor.
 */
const RELEASING = new Set([400, 409, 415, 422]);
/** The Content-Types a JSON route's validator lets through (as @hono/zod-openapi's media-type gate tests them). */
const JSON_REQUEST = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/**
 * What Redis holds under `idem:{scope}:{userId}:{key}`: a claim while the first request runs (short TTL, so a
 * crashed request frees its key), then the response to replay (IDEMPOTENCY_TTL_SECONDS). `fingerprint`
 * hashes method, path and body, so one key cannot stand for two different requests.
 */
export type IdempotencyRecord =
  | { state: "in_flight"; fingerprint: string }
  | { state: "done"; fingerprint: string; status: number; contentType: string; body: string };

/** The request's validated Idempotency-Key (only inside routes behind `idempotent`). */
export function idempotencyKeyOf(c: Context): string {
  const key = c.req.header(IDEMPOTENCY_HEADER);
  if (key === undefined || !IDEMPOTENCY_KEY_FORMAT.test(key)) throw invalidKey(key);
  return key;
}

/** The request's Idempotency-Key where it is optional: undefined without one, a 400 naming it when malformed. */
export function optionalIdempotencyKey(c: Context): string | undefined {
  return c.req.header(IDEMPOTENCY_HEADER) === undefined ? undefined : idempotencyKeyOf(c);
}

function invalidKey(key: string | undefined): ApiError {
  const message = key === undefined ? "required" : "1–255 printable ASCII characters";
  return ApiError.validation(
    [{ path: IDEMPOTENCY_HEADER, message }],
    `The ${IDEMPOTENCY_HEADER} header is ${key === undefined ? "required" : "not valid"}: ${message}.`,
  );
}

/**
 * Money-like POSTs and creates (after requireAuth): the first request with a key claims it (SET NX GET, one round trip,
 * which also returns an existing record), runs, and its answer is stored (one more round trip); a repeat with
 * the same body gets that answer replayed with `Idempotent-Replayed: true`, a repeat while it runs a 409, and
 * a repeat with a different body a 422. Answers that changed nothing and may succeed on retry (400, 409, 5xx,
 * thrown errors) release the key instead; others (201, 402, 404) are kept. Redis only saves work and returns the same
 * answer: the ledger keys its entries by user + Idempotency-Key too, and creates store the key and the fingerprint
 * (`c.var.idempotency`) under a unique index, so a lost record, or an answer lost after the write committed (a 503
 * releases the key), can never make a second one. With `required: false` a request without the header passes
 * through untouched.
 */
export function idempotent(scope: string, options: { required?: boolean } = {}): MiddlewareHandler<AppEnv & AuthedEnv> {
  const required = options.required ?? true;
  return async (c, next) => {
    if (!required && c.req.header(IDEMPOTENCY_HEADER) === undefined) return next();
    const viewer = c.var.viewer;
    const key = idempotencyKeyOf(c);
    // Another media type is a 415 from the route's validator, which changes nothing: no key to claim.
    const contentType = c.req.header("content-type");
    if (contentType !== undefined && !JSON_REQUEST.test(contentType)) return next();
    const { redis, keys, config, log } = c.var.deps;
    const body = await c.req.text();
    const fingerprint = await sha256Hex(`${c.req.method} ${c.req.path}\n${body}`);
    const recordKey = keys.idempotency(`${scope}:${viewer.id}`, key);
    c.set("idempotency", { key, fingerprint });

    let existing: IdempotencyRecord | null;
    try {
      // With GET, SET answers the previous value (null when this request claimed the key), never "OK".
      const claim: IdempotencyRecord = { state: "in_flight", fingerprint };
      existing = await runOp(
        redis,
        claimOrGet<IdempotencyRecord>(recordKey, claim, config.idempotency.inFlightTtlSeconds),
      );
    } catch (error) {
      throw new StoreUnavailableError("redis", String(error), { cause: error });
    }
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        throw new ApiError(
          "idempotency_mismatch",
          `This ${IDEMPOTENCY_HEADER} was already used with a different request; use a new key.`,
        );
      }
      if (existing.state === "in_flight") {
        throw ApiError.conflict(
          "idempotency_in_flight",
          `A request with this ${IDEMPOTENCY_HEADER} is still in progress; retry shortly.`,
        );
      }
      return c.body(existing.body, existing.status as ContentfulStatusCode, {
        "content-type": existing.contentType,
        [REPLAYED_HEADER]: "true",
      });
    }

    const release = async () => {
      try {
        await runOp(redis, deleteKeys([recordKey]));
      } catch (error) {
        // The claim expires on its own after IDEMPOTENCY_IN_FLIGHT_TTL_SECONDS.
        log.warn("idempotency release failed", { requestId: c.var.requestId, error: String(error) });
      }
    };
    try {
      await next();
    } catch (error) {
      await release();
      throw error;
    }
    const status = c.res.status;
    if (RELEASING.has(status) || status >= 500) {
      await release();
      return;
    }
    const record: IdempotencyRecord = {
      state: "done",
      fingerprint,
      status,
      contentType: c.res.headers.get("content-type") ?? "application/json",
      body: await c.res.clone().text(),
    };
    try {
      await runOp(redis, replaceValue(recordKey, record, config.idempotency.ttlSeconds));
    } catch (error) {
      // The answer stands; a retry after the claim expires re-runs and the ledger's key makes it a no-op.
      log.warn("idempotency record not stored", { requestId: c.var.requestId, error: String(error) });
    }
  };
}
