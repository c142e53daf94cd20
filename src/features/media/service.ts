import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { MediaDoc, MediaPurpose } from "../../db";
import type { Deps } from "../../deps";
import { randomToken } from "../../platform/crypto";
import { StoreUnavailableError } from "../../platform/errors";
import { newObjectId, ObjectId } from "../../platform/ids";
import type { StoredObject } from "../../platform/objects";
import { runOp, slidingWindow } from "../../platform/redis-ops";
import { HOUR_MS } from "../../platform/time";
import {
  EXTENSIONS,
  IMAGE_TYPES,
  type Inspection,
  isVideoType,
  MEDIA_TYPES,
  type MediaContentType,
  MediaRejected,
  UploadInspector,
} from "./formats";
import { type Media, type StartUploadBody, toMedia, type UploadStarted } from "./schema";

/**
 * Uploads (seed 001's media_files) into the media bucket. Two steps, as API.md has them:
 * 1. `POST /v1/media` declares purpose, type and exact size; a `pending` record is written (one Redis wait for
 *    the per-account upload window, one MongoDB write) and the answer says where the bytes go.
 * 2. `PUT /v1/media/{id}` streams the bytes through the Worker into R2 (platform/objects.ts says why the
 *    binding and not presigned URLs): the first bytes must prove the declared type before the put starts, the
 *    header must give sane dimensions (and a video its duration), and the length must be the declared one; any
 *    failure aborts the put, so nothing unchecked is ever stored. Then the record becomes `ready` with one
 *    conditional update. Waits: MongoDB 2 (read, update), R2 1.
 * Each attempt writes a fresh key (`{userId}/{mediaId}-{random}.{ext}`): keys are unguessable, never rewritten
 * (caches keep them forever), all of a user's objects share a prefix (erasure lists it), and of two racing
 * attempts only the one whose update lands counts — the other's object is deleted and it gets a 409.
 */

const KINDS: Record<MediaPurpose, readonly MediaContentType[]> = {
  avatar: IMAGE_TYPES,
  post: MEDIA_TYPES,
  // Stories show an image (reels are posts).
  story: IMAGE_TYPES,
  message: IMAGE_TYPES,
  journal: IMAGE_TYPES,
};

/** The largest upload of this purpose and type (config). */
export function maxBytesFor(deps: Deps, purpose: MediaPurpose, type: MediaContentType): number {
  const m = deps.config.media;
  if (isVideoType(type)) return m.videoMaxBytes;
  return purpose === "avatar" ? m.avatarMaxBytes : m.imageMaxBytes;
}

export async function startUpload(deps: Deps, viewer: Viewer, body: StartUploadBody): Promise<UploadStarted> {
  const allowed = KINDS[body.purpose];
  if (!allowed.includes(body.contentType)) {
    throw ApiError.invalidField("contentType", `a ${body.purpose} upload is one of ${allowed.join(", ")}`);
  }
  const maxBytes = maxBytesFor(deps, body.purpose, body.contentType);
  if (body.size > maxBytes) throw ApiError.invalidField("size", `at most ${maxBytes} bytes for this upload`);
  const m = deps.config.media;
  const decision = await runOp(
    deps.redis,
    slidingWindow(deps.keys.rateMedia(viewer.id), m.uploadsPerWindow, m.uploadWindowSeconds),
  );
  if (!decision.allowed) throw ApiError.rateLimited(decision, "uploads");
  const now = deps.clock.now();
  const expiresAt = new Date(now.getTime() + m.pendingTtlHours * HOUR_MS);
  const doc: MediaDoc = {
    _id: newObjectId(),
    userId: new ObjectId(viewer.id),
    purpose: body.purpose,
    contentType: body.contentType,
    size: body.size,
    status: "pending",
    key: null,
    url: null,
    width: null,
    height: null,
    durationSeconds: null,
    createdAt: now,
    readyAt: null,
    pendingExpiresAt: expiresAt,
  };
  await deps.db.media.insertOne(doc);
  const id = doc._id.toHexString();
  return {
    id,
    uploadUrl: null,
    uploadPath: `/v1/media/${id}`,
    status: "pending",
    maxBytes,
    expiresAt: expiresAt.toISOString(),
  };
}

/** What the PUT carries besides its bytes. */
export interface IncomingUpload {
  contentType: string | null;
  contentLength: string | null;
  body: ReadableStream<Uint8Array> | null;
}

export async function receiveUpload(
  deps: Deps,
  viewer: Viewer,
  mediaId: string,
  upload: IncomingUpload,
): Promise<Media> {
  const media = await ownMedia(deps, viewer.id, mediaId);
  if (media.status === "ready") {
    // A retry of an upload that already landed (its answer was lost): the same answer, the bytes unread.
    await upload.body?.cancel();
    return toMedia(media);
  }
  const declared = media.contentType as MediaContentType;
  const sent = upload.contentType?.split(";")[0]?.trim().toLowerCase();
  if (sent !== declared) {
    await upload.body?.cancel();
    throw new ApiError("unsupported_media_type", `This upload was declared as ${declared}.`, {
      errors: [{ path: "Content-Type", message: `must be ${declared}, as declared` }],
    });
  }
  if (!upload.body || upload.contentLength === null || Number(upload.contentLength) !== media.size) {
    await upload.body?.cancel();
    throw ApiError.invalidField("Content-Length", `must be ${media.size}, the declared size`);
  }
  const ext = EXTENSIONS[declared];
  const key = `${viewer.id}/${media._id.toHexString()}-${randomToken(16)}.${ext}`;
  const inspection = await storeChecked(deps, key, media, upload.body);
  const now = deps.clock.now();
  const ready = await deps.db.media.findOneAndUpdate(
    { _id: media._id, status: "pending" },
    {
      $set: {
        status: "ready",
        key,
        url: `${deps.config.media.publicBaseUrl}/${key}`,
        width: inspection.width,
        height: inspection.height,
        durationSeconds: inspection.durationSeconds === null ? null : round3(inspection.durationSeconds),
        readyAt: now,
      },
      $unset: { pendingExpiresAt: "" },
    },
    { returnDocument: "after" },
  );
  if (!ready) {
    // Another attempt landed first (or the record expired): this attempt's object must not linger.
    await deps.objects.delete([key]).catch((error: unknown) => {
      deps.log.warn("orphaned upload not deleted", { key, error: String(error) });
    });
    throw ApiError.conflict("already_uploaded", "Another upload of this media finished first.");
  }
  return toMedia(ready);
}

/** Streams the body into the bucket through the inspector; a refusal anywhere aborts the put (nothing stored). */
async function storeChecked(
  deps: Deps,
  key: string,
  media: MediaDoc,
  body: ReadableStream<Uint8Array>,
): Promise<Inspection> {
  const declared = media.contentType as MediaContentType;
  const m = deps.config.media;
  const inspector = new UploadInspector(declared, {
    maxBytes: media.size,
    maxDimension: m.maxDimension,
    maxDurationSeconds: m.videoMaxSeconds,
  });
  let inspection: Inspection | undefined;
  // The newest chunk is held back until the next one arrives, and the last until the verdict: the store has
  // every byte it expects only once the whole file passed (an MP4's moov may come last), never before.
  let held: Uint8Array | null = null;
  const checked = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        inspector.push(chunk);
        if (held) controller.enqueue(held);
        held = chunk;
      },
      flush(controller) {
        inspection = inspector.finish();
        if (inspection.bytes !== media.size) {
          throw new MediaRejected("invalid", `the body has ${inspection.bytes} bytes, not the declared ${media.size}`);
        }
        if (held) controller.enqueue(held);
      },
    }),
  );
  // The signature is judged before the put starts: a wrong type never reaches the store at all.
  const reader = checked.getReader();
  const first: Uint8Array[] = [];
  let seen = 0;
  try {
    while (seen < 16) {
      const { done, value } = await reader.read();
      if (done) break;
      first.push(value);
      seen += value.length;
    }
  } catch (error) {
    throw asApiError(error);
  }
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of first) controller.enqueue(part);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  try {
    await deps.objects.put(key, rest, { length: media.size, contentType: declared });
  } catch (error) {
    throw asApiError(error);
  }
  if (!inspection) throw ApiError.invalidField("body", "the upload ended early");
  return inspection;
}

/** A refusal of the bytes as its problem; a body that broke off (the client went away, a short body) as a 400. */
function asApiError(error: unknown): unknown {
  if (error instanceof ApiError || error instanceof StoreUnavailableError) return error;
  if (!(error instanceof MediaRejected)) {
    return ApiError.invalidField("body", "the upload ended before the declared size arrived");
  }
  if (error.kind === "unsupported") {
    return new ApiError("unsupported_media_type", `The bytes are not what was declared: ${error.message}.`, {
      errors: [{ path: "body", message: error.message }],
    });
  }
  return ApiError.invalidField("body", error.message);
}

/** The caller's own media record (anyone else's is a 404, like a missing one). */
async function ownMedia(deps: Deps, userId: string, mediaId: string): Promise<MediaDoc> {
  const media = await deps.db.media.findOne({ _id: new ObjectId(mediaId), userId: new ObjectId(userId) });
  if (!media) throw ApiError.notFound("No such media.");
  return media;
}

export async function getMedia(deps: Deps, viewer: Viewer, mediaId: string): Promise<Media> {
  return toMedia(await ownMedia(deps, viewer.id, mediaId));
}

/**
 * For features that attach uploads (avatars, posts, stories, messages, journal): the owner's ready media with
 * these ids and one of these purposes, in one read. Missing, foreign, pending or other-purpose ids are absent.
 */
export async function readyMediaOf(
  deps: Deps,
  ownerId: string,
  ids: string[],
  purposes: readonly MediaPurpose[],
): Promise<Map<string, MediaDoc>> {
  if (ids.length === 0) return new Map();
  const docs = await deps.db.media.find(
    {
      _id: { $in: ids.map((id) => new ObjectId(id)) },
      userId: new ObjectId(ownerId),
      status: "ready",
      purpose: { $in: [...purposes] },
    },
    { limit: ids.length },
  );
  return new Map(docs.map((d) => [d._id.toHexString(), d]));
}

/** One ready upload of the owner's for `field`, or a 400 naming the field (never whose it is). */
export async function requireReadyMedia(
  deps: Deps,
  ownerId: string,
  mediaId: string,
  purposes: readonly MediaPurpose[],
  field: string,
): Promise<MediaDoc> {
  const media = (await readyMediaOf(deps, ownerId, [mediaId], purposes)).get(mediaId);
  if (!media) throw ApiError.invalidField(field, `not a ready ${purposes.join(" or ")} upload of yours`);
  return media;
}

/**
 * An object from the bucket as the public base URL serves it (the Worker's own `GET /media/...`). A single
 * byte range costs one more R2 round trip (its size first); a range outside the object is ignored (RFC 9110
 * lets a server answer the whole representation).
 */
export async function readObject(deps: Deps, key: string, rangeHeader: string | undefined): Promise<StoredObject> {
  const wanted = parseByteRange(rangeHeader);
  let range: { offset: number; length: number } | null = null;
  if (wanted) {
    const head = await deps.objects.head(key);
    if (!head) throw ApiError.notFound("No such object.");
    range = byteRangeWithin(wanted, head.size);
  }
  const object = await deps.objects.get(key, range ?? undefined);
  if (!object) throw ApiError.notFound("No such object.");
  return object;
}

type WantedRange = { start: number; end: number | null } | { suffix: number };

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range; anything else is no range). */
export function parseByteRange(header: string | undefined): WantedRange | null {
  const match = header ? /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim()) : null;
  if (!match) return null;
  const [, from = "", to = ""] = match;
  if (from === "" && to === "") return null;
  if (from === "") return { suffix: Number(to) };
  const start = Number(from);
  const end = to === "" ? null : Number(to);
  return end !== null && end < start ? null : { start, end };
}

export function byteRangeWithin(wanted: WantedRange, size: number): { offset: number; length: number } | null {
  if ("suffix" in wanted) {
    if (wanted.suffix === 0 || size === 0) return null;
    const length = Math.min(wanted.suffix, size);
    return { offset: size - length, length };
  }
  if (wanted.start >= size) return null;
  const last = Math.min(wanted.end ?? size - 1, size - 1);
  return { offset: wanted.start, length: last - wanted.start + 1 };
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
