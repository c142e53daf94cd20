import { StoreUnavailableError } from "./errors";
import { roundTrip } from "./io";

/**
 * Object storage for media (R2). The Worker writes through the **R2 binding** rather than handing clients
 * presigned PUT URLs: with a binding the bytes pass through the Worker, so their size, signature and header
 * are checked before anything is stored, and only checked objects ever exist in the bucket (a presigned PUT
 * would store first and let us look afterwards). It costs the Worker the upload's bandwidth (not CPU: the
 * bytes stream through) and caps an upload at the plan's request-body limit (100 MB on Free and Pro), which
 * the media limits in config stay under. Miniflare provides the same binding to `wrangler dev` and to the
 * workerd tests, so tests check R2 itself.
 *
 * Deno has no bindings: there the store is unconfigured and media routes answer 503 (README). Every call is
 * one round trip, metered as the `r2` store.
 */

export interface StoredObject {
  body: ReadableStream<Uint8Array>;
  size: number;
  contentType: string | null;
  etag: string;
  /** When a range was asked for: the bytes it covers. */
  range: { offset: number; length: number } | null;
}

export interface ObjectStore {
  readonly configured: boolean;
  /** Stores exactly `length` bytes; rejects (storing nothing) if the body errors or has another length. */
  put(key: string, body: ReadableStream<Uint8Array>, meta: { length: number; contentType: string }): Promise<void>;
  get(key: string, range?: { offset: number; length?: number }): Promise<StoredObject | null>;
  head(key: string): Promise<{ size: number; contentType: string | null } | null>;
  /** One page of keys under a prefix. */
  list(prefix: string, cursor?: string): Promise<{ keys: string[]; cursor: string | null }>;
  /** Deletes up to 1,000 keys in one call; missing keys are no error. */
  delete(keys: string[]): Promise<void>;
}

/** The parts of workerd's R2Bucket this adapter uses (structural, so the Deno entry needs no Workers types). */
export interface R2BucketLike {
  put(
    key: string,
    value: ReadableStream,
    options?: { httpMetadata?: { contentType?: string; cacheControl?: string } },
  ): Promise<unknown>;
  get(
    key: string,
    options?: { range?: { offset: number; length?: number } },
  ): Promise<{
    body: ReadableStream;
    size: number;
    etag: string;
    httpMetadata?: { contentType?: string };
    range?: { offset?: number; length?: number };
  } | null>;
  head(key: string): Promise<{ size: number; httpMetadata?: { contentType?: string } } | null>;
  list(options: {
    prefix: string;
    cursor?: string;
    limit?: number;
  }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
  delete(keys: string | string[]): Promise<void>;
}

/** Whether a binding looks like an R2 bucket (Workers pass bindings in `env` next to plain-string settings). */
export function isR2Bucket(value: unknown): value is R2BucketLike {
  const v = value as Partial<R2BucketLike> | null;
  return typeof v === "object" && v !== null && typeof v.put === "function" && typeof v.list === "function";
}

// Every object key is fresh (a new random name per upload) and never rewritten, so caches may keep it forever.
const IMMUTABLE = "public, max-age=31536000, immutable";

export function r2Store(bucket: R2BucketLike, timeoutMs: number): ObjectStore {
  // One round trip to R2, bounded like any store call; an upload's put is bounded by the client's own pace
  // instead (its bytes arrive as the phone sends them), so it ignores the per-call timeout.
  const call = <T>(what: string, fn: () => Promise<T>, bounded = true): Promise<T> =>
    roundTrip("r2", timeoutMs, async (signal) => {
      try {
        return bounded ? await abortable(fn(), signal) : await fn();
      } catch (error) {
        if (error instanceof UploadBodyError) throw error.cause;
        if (error instanceof StoreUnavailableError || signal.aborted) throw error;
        throw new StoreUnavailableError("r2", `${what}: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      }
    });
  return {
    configured: true,
    put: (key, body, meta) =>
      call("put", async () => {
        // R2 needs the length up front; a FixedLengthStream also fails the put if the body runs short or long.
        const fixed = new (fixedLengthStream())(meta.length);
        let bodyError: unknown;
        const piping = body.pipeTo(fixed.writable).catch((error: unknown) => {
          bodyError = error;
        });
        try {
          await bucket.put(key, fixed.readable, {
            httpMetadata: { contentType: meta.contentType, cacheControl: IMMUTABLE },
          });
        } catch (error) {
          await piping;
          // The body's own failure (the upload was refused mid-stream) is the cause, not the store.
          if (bodyError !== undefined) throw new UploadBodyError(bodyError);
          throw error;
        }
        await piping;
        if (bodyError !== undefined) throw new UploadBodyError(bodyError);
      }),
    get: (key, range) =>
      call("get", async () => {
        const object = await bucket.get(key, range ? { range } : {});
        if (!object) return null;
        const offset = object.range?.offset ?? range?.offset ?? 0;
        return {
          body: object.body as ReadableStream<Uint8Array>,
          size: object.size,
          contentType: object.httpMetadata?.contentType ?? null,
          etag: object.etag,
          range: range ? { offset, length: object.range?.length ?? object.size - offset } : null,
        };
      }),
    head: (key) =>
      call("head", async () => {
        const object = await bucket.head(key);
        return object ? { size: object.size, contentType: object.httpMetadata?.contentType ?? null } : null;
      }),
    list: (prefix, cursor) =>
      call("list", async () => {
        const page = await bucket.list({ prefix, limit: 1_000, ...(cursor ? { cursor } : {}) });
        return { keys: page.objects.map((o) => o.key), cursor: page.truncated ? (page.cursor ?? null) : null };
      }),
    delete: (keys) =>
      keys.length === 0
        ? Promise.resolve()
        : call("delete", async () => {
            await bucket.delete(keys);
          }),
  };
}

/** Where no bucket is bound (the Deno entry, scripts): every call is a 503 naming the missing binding. */
export function unconfiguredStore(): ObjectStore {
  const refuse = () =>
    Promise.reject(new StoreUnavailableError("r2", "no object storage configured (bind MEDIA_BUCKET)"));
  return { configured: false, put: refuse, get: refuse, head: refuse, list: refuse, delete: refuse };
}

/** The call's answer, or a rejection once `signal` aborts (the binding's calls take no signal of their own). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** workerd's FixedLengthStream (an identity stream of known length), looked up where the runtime has it. */
function fixedLengthStream(): new (length: number) => TransformStream<Uint8Array, Uint8Array> {
  const found = (globalThis as { FixedLengthStream?: new (length: number) => TransformStream<Uint8Array, Uint8Array> })
    .FixedLengthStream;
  if (!found) throw new Error("FixedLengthStream is missing: the R2 binding runs on workerd only");
  return found;
}

/** The upload body failed while R2 read it: rethrown as that failure, not as an outage. */
class UploadBodyError extends Error {
  constructor(override readonly cause: unknown) {
    super("upload body failed");
  }
}
