import { AwsClient } from "aws4fetch";
import { StoreUnavailableError } from "./errors";
import { roundTrip } from "./io";
import type { ObjectStore, StoredObject } from "./objects";

/**
 * The media bucket over R2's S3-compatible API (path-style, SigV4 signed with aws4fetch), for runtimes without
 * the R2 binding: the Deno entry. It keeps the binding's guarantee — only checked bytes are stored — by
 * reading the whole checked body before the PUT (a refusal anywhere in the stream means no request at all),
 * which holds an upload in memory once (MEDIA_VIDEO_MAX_BYTES at most). Locally it talks to
 * scripts/local/s3-server.ts, which verifies the signatures.
 */

export interface S3StoreOptions {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  timeoutMs: number;
}

const UPLOAD_TIMEOUT_MS = 120_000;
const IMMUTABLE = "public, max-age=31536000, immutable";

export function s3Store(o: S3StoreOptions): ObjectStore {
  const client = new AwsClient({
    accessKeyId: o.accessKeyId,
    secretAccessKey: o.secretAccessKey,
    service: "s3",
    region: o.region,
  });
  const objectUrl = (key: string) =>
    `${o.endpoint}/${encodeURIComponent(o.bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;

  const send = (what: string, url: string, init: RequestInit & { upload?: boolean }, ok: number[]) =>
    roundTrip("r2", o.timeoutMs, async (signal) => {
      let response: Response;
      try {
        // An upload's PUT carries up to MEDIA_VIDEO_MAX_BYTES: it gets its own, longer bound.
        const { upload, ...request } = init;
        response = await client.fetch(url, {
          ...request,
          signal: upload ? AbortSignal.timeout(UPLOAD_TIMEOUT_MS) : signal,
        });
      } catch (error) {
        if (signal.aborted) throw error;
        throw new StoreUnavailableError("r2", `${what}: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      }
      if (!ok.includes(response.status)) {
        const text = await response.text().catch(() => "");
        const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? String(response.status);
        throw new StoreUnavailableError("r2", `${what}: ${response.status} ${code}`);
      }
      return response;
    });

  return {
    configured: true,
    async put(key, body, meta) {
      // A refusal while reading (the upload's checks) is thrown as it is, before any request is made.
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      if (bytes.length !== meta.length) throw new Error(`expected ${meta.length} bytes, got ${bytes.length}`);
      // The payload's hash is signed too (aws4fetch would send UNSIGNED-PAYLOAD), so the store gets these bytes.
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const payloadHash = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
      await send(
        "put",
        objectUrl(key),
        {
          method: "PUT",
          body: bytes,
          headers: {
            "content-type": meta.contentType,
            "cache-control": IMMUTABLE,
            "x-amz-content-sha256": payloadHash,
          },
          upload: true,
        },
        [200],
      );
    },
    async get(key, range): Promise<StoredObject | null> {
      const headers: Record<string, string> = {};
      if (range) {
        const last = range.length === undefined ? "" : String(range.offset + range.length - 1);
        headers.range = `bytes=${range.offset}-${last}`;
      }
      const response = await send("get", objectUrl(key), { headers }, [200, 206, 404]);
      if (response.status === 404 || !response.body) return null;
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
      const size = contentRange ? Number(contentRange[3]) : Number(response.headers.get("content-length") ?? 0);
      return {
        body: response.body,
        size,
        contentType: response.headers.get("content-type"),
        etag: (response.headers.get("etag") ?? "").replaceAll('"', ""),
        range: contentRange
          ? { offset: Number(contentRange[1]), length: Number(contentRange[2]) - Number(contentRange[1]) + 1 }
          : null,
      };
    },
    async head(key) {
      const response = await send("head", objectUrl(key), { method: "HEAD" }, [200, 404]);
      if (response.status === 404) return null;
      return {
        size: Number(response.headers.get("content-length") ?? 0),
        contentType: response.headers.get("content-type"),
      };
    },
    async list(prefix, cursor) {
      const query = new URLSearchParams({ "list-type": "2", prefix, "max-keys": "1000" });
      if (cursor) query.set("continuation-token", cursor);
      const response = await send("list", `${o.endpoint}/${encodeURIComponent(o.bucket)}?${query}`, {}, [200]);
      const xml = await response.text();
      const keys = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unescapeXml(m[1] ?? ""));
      const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
      const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
      return { keys, cursor: truncated && next ? unescapeXml(next) : null };
    },
    async delete(keys) {
      // One DELETE per key, a few at a time (DeleteObjects would need a Content-MD5, which WebCrypto lacks).
      for (let at = 0; at < keys.length; at += 16) {
        await Promise.all(
          keys.slice(at, at + 16).map((key) => send("delete", objectUrl(key), { method: "DELETE" }, [200, 204, 404])),
        );
      }
    },
  };
}

function unescapeXml(text: string): string {
  return text
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'")
    .replaceAll("&amp;", "&");
}

/** The store the MEDIA_S3_* settings describe, when they are complete (the Deno entry's media store). */
export function s3StoreFromSettings(
  settings: {
    endpoint?: string | undefined;
    bucket: string;
    region: string;
    accessKeyId?: string | undefined;
    secretAccessKey?: string | undefined;
  },
  timeoutMs: number,
): ObjectStore | undefined {
  const { endpoint, accessKeyId, secretAccessKey, bucket, region } = settings;
  if (!endpoint || !accessKeyId || !secretAccessKey) return undefined;
  return s3Store({ endpoint, bucket, region, accessKeyId, secretAccessKey, timeoutMs });
}
