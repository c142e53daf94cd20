import { z } from "zod";
import { IdParam } from "../../core/schemas";
import { json, jsonBody, problems, router } from "../../http/openapi";
import { authedRoute, publicRoute } from "../../http/routes";
import { MEDIA_TYPES } from "./formats";
import { Media, ObjectParams, StartUploadBody, UploadStarted } from "./schema";
import { getMedia, readObject, receiveUpload, startUpload } from "./service";

const tags = ["media"];
const Binary = z.string().meta({ format: "binary" });

const startRoute = authedRoute({
  method: "post",
  path: "/v1/media",
  tags,
  summary: "Start an upload",
  description:
    "Declare what is coming: purpose, type and exact size. Avatars, messages and journal attachments are JPEG, " +
    "PNG or WebP; posts and stories may also be MP4 video (reels). Sizes are capped per kind " +
    "(MEDIA_AVATAR_MAX_BYTES, MEDIA_IMAGE_MAX_BYTES, MEDIA_VIDEO_MAX_BYTES): a larger `size` is a 400 naming it. " +
    "At most MEDIA_UPLOADS_PER_WINDOW uploads per account per window (429). Then send the bytes with " +
    "`PUT /v1/media/{id}` before `expiresAt`.",
  request: jsonBody(StartUploadBody),
  responses: { 201: json(UploadStarted, "Waiting for the bytes") },
});

const uploadRoute = authedRoute({
  method: "put",
  path: "/v1/media/{id}",
  tags,
  streamsBody: true,
  summary: "Send an upload's bytes",
  description:
    "The raw file as the body, with the declared `Content-Type` (else 415) and `Content-Length` equal to the " +
    "declared size (else 400). The bytes themselves must prove the type — the file signature, then the " +
    "header: width and height (at most MEDIA_MAX_DIMENSION_PX a side), and for MP4 a video track and a " +
    "duration of at most MEDIA_VIDEO_MAX_SECONDS. Bytes of another type are a 415, a malformed or over-limit " +
    "file a 400 naming `body`; either way nothing is stored. Repeating a finished upload answers the same " +
    "record; of two uploads racing for one id, the later gets a 409 `already_uploaded`.",
  request: {
    params: IdParam,
    body: {
      required: true,
      content: Object.fromEntries(MEDIA_TYPES.map((t) => [t, { schema: Binary }])),
    },
  },
  responses: { 200: json(Media, "Stored and ready"), ...problems(404, 409) },
});

const getRoute = authedRoute({
  method: "get",
  path: "/v1/media/{id}",
  tags,
  summary: "One of the caller's uploads",
  description: "Owner only: anyone else's upload is a 404.",
  request: { params: IdParam },
  responses: { 200: json(Media, "The upload"), ...problems(404) },
});

const objectRoute = publicRoute({
  method: "get",
  path: "/media/{owner}/{file}",
  tags,
  summary: "A stored media object",
  description:
    "What MEDIA_PUBLIC_BASE_URL serves when it points at the Worker (local development, or without an R2 custom " +
    "domain). Objects never change, so they are cached for a year. A single `Range: bytes=a-b` is answered with " +
    "206 (video players need it); a range past the end is ignored.",
  request: { params: ObjectParams },
  responses: {
    200: { description: "The object", content: Object.fromEntries(MEDIA_TYPES.map((t) => [t, { schema: Binary }])) },
    206: { description: "Part of it", content: Object.fromEntries(MEDIA_TYPES.map((t) => [t, { schema: Binary }])) },
    ...problems(404),
  },
});

export const mediaRoutes = router()
  .openapi(startRoute, async (c) => c.json(await startUpload(c.var.deps, c.var.viewer, c.req.valid("json")), 201))
  .openapi(uploadRoute, async (c) => {
    const upload = {
      contentType: c.req.header("content-type") ?? null,
      contentLength: c.req.header("content-length") ?? null,
      body: c.req.raw.body,
    };
    return c.json(await receiveUpload(c.var.deps, c.var.viewer, c.req.valid("param").id, upload), 200);
  })
  .openapi(getRoute, async (c) => c.json(await getMedia(c.var.deps, c.var.viewer, c.req.valid("param").id), 200))
  .openapi(objectRoute, async (c) => {
    const { owner, file } = c.req.valid("param");
    const object = await readObject(c.var.deps, `${owner}/${file}`, c.req.header("range"));
    const headers: Record<string, string> = {
      "content-type": object.contentType ?? "application/octet-stream",
      "cache-control": "public, max-age=31536000, immutable",
      "accept-ranges": "bytes",
      "x-content-type-options": "nosniff",
      etag: `"${object.etag}"`,
    };
    if (!object.range) {
      headers["content-length"] = String(object.size);
      return c.body(object.body, 200, headers);
    }
    const { offset, length } = object.range;
    headers["content-length"] = String(length);
    headers["content-range"] = `bytes ${offset}-${offset + length - 1}/${object.size}`;
    return c.body(object.body, 206, headers);
  });
