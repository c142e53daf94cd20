import type { IdempotentRequest } from "../core/idempotency";
import type { RequestMeta, Viewer } from "../core/viewer";
import type { Deps } from "../deps";
import { afterResponse as queueAfterResponse } from "../platform/background";
import type { IoTally } from "../platform/io";
import type { GuardedSet, RedisBatch } from "../platform/redis-ops";

/** What middleware puts on the Hono context for routes. */
export interface AppVariables {
  /** The caller on routes with optional sign-in (authenticated routes type it as always present). */
  viewer: Viewer | undefined;
  deps: Deps;
  requestId: string;
  clientIp: string;
  io: IoTally;
  /**
   * The request's Redis batches: on cache-first routes the first batch also carries the rate-limit check
   * (one round trip for a cached answer); elsewhere a plain pipelined round trip.
   */
  redis: RedisBatch;
  /**
   * The cached account standing (`session:{userId}`) and relations (`relations:{userId}`) of the user a
   * bearer token names, read (unverified) alongside the rate limit so that `requireAuth` needs no round trip
   * of its own; used only once the token is verified for that user.
   */
  prefetchedStanding: { userId: string; value: unknown; relations: GuardedSet } | undefined;
  /** A route's own reads (`prefetch` in http/routes.ts) for the user a bearer token names, read the same way. */
  prefetched: { userId: string; results: Record<string, unknown> } | undefined;
  /** The Idempotency-Key and request fingerprint, on creates behind `idempotent` that were sent one. */
  idempotency: IdempotentRequest | undefined;
}

export type AppEnv = { Bindings: Record<string, unknown>; Variables: AppVariables };

/** Where the request came from, for audit entries and session records. */
export function requestMetaOf(c: {
  var: AppVariables;
  req: { header(name: string): string | undefined };
}): RequestMeta {
  return { ip: c.var.clientIp, userAgent: c.req.header("user-agent") ?? null, requestId: c.var.requestId };
}

/** The app's installation id (`X-Device-Id`), for fraud signals, flag bucketing and view counting. */
export function deviceIdOf(c: { req: { header(name: string): string | undefined } }): string | null {
  return c.req.header("x-device-id")?.trim().slice(0, 128) || null;
}

/** The route's prefetched reads, when they were read for the verified caller (else undefined: read them now). */
export function prefetchedReads(c: {
  var: Pick<AppVariables, "viewer" | "prefetched">;
}): Record<string, unknown> | undefined {
  const prefetched = c.var.prefetched;
  return prefetched && c.var.viewer && prefetched.userId === c.var.viewer.id ? prefetched.results : undefined;
}

/**
 * Runs work after the response is sent (side effects that are not the answer: fan-out, notifications), through
 * the request's background queue (platform/background.ts, handed to `waitUntil` by the `backgroundWork`
 * middleware), so it never shows in the request's Server-Timing. It must not throw (each piece logs its own
 * failure).
 */
export function afterResponse(): (work: () => Promise<unknown>) => void {
  return (work) =>
    queueAfterResponse(async () => {
      await work();
    });
}
