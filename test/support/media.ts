import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type ApiResponse, call } from "./api";
import { type FixtureName, fixtures } from "./media-fixtures";
import type { TestUser } from "./users";

export interface MediaBody {
  id: string;
  purpose: string;
  url: string | null;
  contentType: string;
  size: number;
  width: number | null;
  height: number | null;
  durationSeconds: number | null;
  status: "pending" | "ready";
}

export interface StartedBody {
  id: string;
  uploadUrl: string | null;
  uploadPath: string;
  status: string;
  maxBytes: number;
  expiresAt: string;
}

/** The bucket the Worker writes to (Miniflare's R2), to check what is really stored. */
export const bucket = (env as unknown as { MEDIA_BUCKET: R2Bucket }).MEDIA_BUCKET;

export const TYPE_OF: Record<FixtureName, string> = {
  jpeg: "image/jpeg",
  jpegWithExif: "image/jpeg",
  png: "image/png",
  webpLossy: "image/webp",
  webpLossless: "image/webp",
  webpAlpha: "image/webp",
  pngTooWide: "image/png",
  mp4: "video/mp4",
  mp4MoovAtEnd: "video/mp4",
  mp4Portrait: "video/mp4",
  mp4TooLong: "video/mp4",
  quicktime: "video/mp4",
};

export function startUpload(
  user: TestUser,
  body: { purpose: string; contentType: string; size: number },
): Promise<ApiResponse<StartedBody>> {
  return call<StartedBody>("POST", "/v1/media", { token: user.accessToken, body });
}

/** PUT of raw bytes, with Content-Type and Content-Length as a client sends them unless overridden. */
export function putBytes(
  user: TestUser,
  id: string,
  bytes: Uint8Array,
  headers: Record<string, string>,
): Promise<ApiResponse<MediaBody>> {
  return call<MediaBody>("PUT", `/v1/media/${id}`, {
    token: user.accessToken,
    rawBody: bytes,
    headers: { "content-length": String(bytes.length), ...headers },
  });
}

/** Uploads a fixture for a purpose through both steps and returns the ready record. */
export async function uploaded(user: TestUser, purpose: string, name: FixtureName): Promise<MediaBody> {
  const bytes = fixtures[name];
  const contentType = TYPE_OF[name];
  const started = await startUpload(user, { purpose, contentType, size: bytes.length });
  expect(started.status, started.text).toBe(201);
  const done = await putBytes(user, started.body.id, bytes, { "content-type": contentType });
  expect(done.status, done.text).toBe(200);
  return done.body;
}

/** Every key the bucket holds under a prefix. */
export async function storedKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, ...(cursor ? { cursor } : {}) });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** The key of an object from its public URL. */
export function keyOf(url: string): string {
  return url.split("/").slice(-2).join("/");
}
