import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { listen } from "./ports";
import { readBytes } from "./standin-http";

/**
 * A stand-in for R2's S3-compatible API (what the Deno entry's media store speaks; Workers use the R2 binding,
 * which Miniflare provides). Path-style requests (`/{bucket}/{key}`), objects in memory, and the parts of the
 * API the adapter uses: PutObject, GetObject (one `Range`), HeadObject, DeleteObject, ListObjectsV2. Every
 * request must carry a valid AWS Signature Version 4 (`Authorization: AWS4-HMAC-SHA256 …`), verified here with
 * node:crypto from the published algorithm — not with the client library — including the payload hash and a
 * 15-minute clock window; errors are S3's XML (`SignatureDoesNotMatch`, `NoSuchKey`, …) with S3's statuses.
 */

export interface S3ServerOptions {
  port: number;
  host?: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** R2 signs with region `auto`. */
  region?: string;
  maxObjectBytes?: number;
}

export interface StoredS3Object {
  bytes: Buffer;
  contentType: string | null;
  cacheControl: string | null;
  etag: string;
  /** Whether the PUT signed its payload's hash (rather than `UNSIGNED-PAYLOAD`). */
  payloadSigned: boolean;
}

export interface RunningS3Server {
  url: string;
  server: Server;
  objects: Map<string, StoredS3Object>;
  stop(): Promise<void>;
}

const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");
const MAX_SKEW_MS = 15 * 60_000;

/** RFC 3986 encoding as SigV4 wants it (`/` kept in paths). */
export function awsEncode(text: string, keepSlash = false): string {
  return [...Buffer.from(text, "utf8")]
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) return c;
      return `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

export interface SignedRequest {
  method: string;
  /** Decoded path, e.g. `/bucket/key`. */
  path: string;
  /** Decoded query pairs. */
  query: [string, string][];
  headers: Record<string, string>;
  signedHeaders: string[];
  payloadHash: string;
  amzDate: string;
  scope: { date: string; region: string; service: string };
}

/** The SigV4 signature of a request (hex), from the secret key: canonical request → string to sign → HMAC chain. */
export function sigV4Signature(secretAccessKey: string, r: SignedRequest): string {
  const canonicalQuery = r.query
    .map(([k, v]) => [awsEncode(k), awsEncode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = r.signedHeaders
    .map((h) => `${h}:${(r.headers[h] ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const canonicalRequest = [
    r.method,
    awsEncode(r.path, true),
    canonicalQuery,
    canonicalHeaders,
    r.signedHeaders.join(";"),
    r.payloadHash,
  ].join("\n");
  const scope = `${r.scope.date}/${r.scope.region}/${r.scope.service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    r.amzDate,
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secretAccessKey}`, r.scope.date), r.scope.region), r.scope.service),
    "aws4_request",
  );
  return createHmac("sha256", signingKey).update(stringToSign).digest("hex");
}

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startS3Server(opts: S3ServerOptions): Promise<RunningS3Server> {
  const host = opts.host ?? "127.0.0.1";
  const region = opts.region ?? "auto";
  const maxBytes = opts.maxObjectBytes ?? 200 * 1_048_576;
  const objects = new Map<string, StoredS3Object>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://s3.local");
    const segments = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const [bucket = "", ...keyParts] = segments;
    const key = keyParts.join("/");
    const body = await readBytes(req, maxBytes);
    authenticate(req, url, body);
    if (bucket !== opts.bucket) throw new S3Error(404, "NoSuchBucket", "The specified bucket does not exist.");
    const method = req.method ?? "GET";
    if (!key) {
      if (method === "GET" && url.searchParams.get("list-type") === "2") return list(res, url);
      throw new S3Error(501, "NotImplemented", `${method} on a bucket is not implemented here.`);
    }
    if (method === "PUT") {
      const etag = createHash("md5").update(body).digest("hex");
      objects.set(key, {
        bytes: body,
        contentType: header(req, "content-type") ?? null,
        cacheControl: header(req, "cache-control") ?? null,
        etag,
        payloadSigned: header(req, "x-amz-content-sha256") !== "UNSIGNED-PAYLOAD",
      });
      res.writeHead(200, { ETag: `"${etag}"` }).end();
      return;
    }
    if (method === "DELETE") {
      objects.delete(key);
      res.writeHead(204).end();
      return;
    }
    const object = objects.get(key);
    if (method === "HEAD") {
      if (!object) return void res.writeHead(404).end();
      res.writeHead(200, objectHeaders(object, object.bytes.length)).end();
      return;
    }
    if (method !== "GET") throw new S3Error(405, "MethodNotAllowed", `${method} is not allowed.`);
    if (!object) throw new S3Error(404, "NoSuchKey", "The specified key does not exist.");
    const range = parseRange(header(req, "range"), object.bytes.length);
    if (!range) {
      res.writeHead(200, objectHeaders(object, object.bytes.length)).end(object.bytes);
      return;
    }
    const part = object.bytes.subarray(range.start, range.end + 1);
    res
      .writeHead(206, {
        ...objectHeaders(object, part.length),
        "Content-Range": `bytes ${range.start}-${range.end}/${object.bytes.length}`,
      })
      .end(part);
  };

  const list = (res: ServerResponse, url: URL) => {
    const prefix = url.searchParams.get("prefix") ?? "";
    const maxKeys = Math.min(Number(url.searchParams.get("max-keys") ?? 1000) || 1000, 1000);
    const token = url.searchParams.get("continuation-token");
    const after = token ? Buffer.from(token, "base64url").toString("utf8") : "";
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, maxKeys);
    const truncated = keys.length > page.length;
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Name>${escapeXml(opts.bucket)}</Name><Prefix>${escapeXml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount>` +
      `<MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
      (truncated
        ? `<NextContinuationToken>${Buffer.from(page.at(-1) ?? "").toString("base64url")}</NextContinuationToken>`
        : "") +
      page
        .map((k) => `<Contents><Key>${escapeXml(k)}</Key><Size>${objects.get(k)?.bytes.length ?? 0}</Size></Contents>`)
        .join("") +
      "</ListBucketResult>";
    res.writeHead(200, { "Content-Type": "application/xml" }).end(xml);
  };

  const authenticate = (req: IncomingMessage, url: URL, body: Buffer) => {
    const auth = header(req, "authorization");
    const match = auth
      ? /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
          auth,
        )
      : null;
    if (!match) throw new S3Error(403, "AccessDenied", "Access Denied: a SigV4 Authorization header is required.");
    const [, accessKeyId, date = "", signedRegion = "", service = "", signed = "", signature = ""] = match;
    if (accessKeyId !== opts.accessKeyId) throw new S3Error(403, "InvalidAccessKeyId", "The access key is not known.");
    if (signedRegion !== region || service !== "s3") {
      throw new S3Error(400, "AuthorizationHeaderMalformed", `The region must be '${region}' and the service 's3'.`);
    }
    const amzDate = header(req, "x-amz-date") ?? "";
    const at = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"));
    if (!amzDate.startsWith(date) || !Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_SKEW_MS) {
      throw new S3Error(403, "RequestTimeTooSkewed", "The request time is too far from the server's.");
    }
    const signedHeaders = signed.split(";");
    if (!signedHeaders.includes("host") || !signedHeaders.includes("x-amz-date")) {
      throw new S3Error(403, "AccessDenied", "host and x-amz-date must be signed.");
    }
    const payloadHash = header(req, "x-amz-content-sha256") ?? "";
    if (payloadHash !== "UNSIGNED-PAYLOAD") {
      const actual = body.length ? createHash("sha256").update(body).digest("hex") : EMPTY_SHA256;
      if (payloadHash !== actual)
        throw new S3Error(400, "XAmzContentSHA256Mismatch", "The payload hash does not match.");
    }
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) headers[name] = header(req, name) ?? "";
    const query: [string, string][] = [];
    for (const part of url.search.slice(1).split("&").filter(Boolean)) {
      const at = part.indexOf("=");
      const k = at < 0 ? part : part.slice(0, at);
      const v = at < 0 ? "" : part.slice(at + 1);
      query.push([decodeURIComponent(k.replaceAll("+", " ")), decodeURIComponent(v.replaceAll("+", " "))]);
    }
    const expected = sigV4Signature(opts.secretAccessKey, {
      method: req.method ?? "GET",
      path: decodeURIComponent(url.pathname),
      query,
      headers,
      signedHeaders,
      payloadHash,
      amzDate,
      scope: { date, region: signedRegion, service },
    });
    if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
      throw new S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.");
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const e = error instanceof S3Error ? error : new S3Error(500, "InternalError", String(error));
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${e.code}</Code><Message>${escapeXml(e.message)}</Message></Error>`;
      if (req.method === "HEAD") res.writeHead(e.status).end();
      else res.writeHead(e.status, { "Content-Type": "application/xml" }).end(xml);
    });
  });
  await listen(server, opts.port, host);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    server,
    objects,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

function objectHeaders(object: StoredS3Object, length: number): Record<string, string> {
  return {
    "Content-Length": String(length),
    ETag: `"${object.etag}"`,
    "Accept-Ranges": "bytes",
    ...(object.contentType ? { "Content-Type": object.contentType } : {}),
    ...(object.cacheControl ? { "Cache-Control": object.cacheControl } : {}),
  };
}

function parseRange(value: string | undefined, size: number): { start: number; end: number } | null {
  const match = value ? /^bytes=(\d*)-(\d*)$/.exec(value) : null;
  if (!match) return null;
  const [, from = "", to = ""] = match;
  if (from === "") {
    const n = Number(to);
    return n > 0 ? { start: Math.max(0, size - n), end: size - 1 } : null;
  }
  const start = Number(from);
  if (start >= size) throw new S3Error(416, "InvalidRange", "The requested range is not satisfiable.");
  return { start, end: Math.min(to === "" ? size - 1 : Number(to), size - 1) };
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}
