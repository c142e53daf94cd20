import { z } from "zod";
import { MEDIA_PURPOSES, MEDIA_STATUSES, type MediaDoc } from "../../db";
import { MEDIA_TYPES } from "./formats";

export const StartUploadBody = z
  .object({
    purpose: z.enum(MEDIA_PURPOSES).meta({ description: "What the upload is for; decides the types and size allowed" }),
    contentType: z.enum(MEDIA_TYPES).meta({ description: "The file's type; its bytes must prove it" }),
    size: z.number().int().min(1).meta({ description: "Exact byte length of the file (the PUT's Content-Length)" }),
  })
  .strict()
  .meta({ id: "StartUpload" });
export type StartUploadBody = z.infer<typeof StartUploadBody>;

export const UploadStarted = z
  .object({
    id: z.string(),
    uploadUrl: z
      .string()
      .nullable()
      .meta({ description: "Always null: the bytes go to `PUT /v1/media/{id}` (the API checks them on the way in)" }),
    uploadPath: z.string().meta({ example: "/v1/media/66f0c0ffee0000000000beef" }),
    status: z.enum(MEDIA_STATUSES),
    maxBytes: z.number().int(),
    expiresAt: z.string().meta({ description: "The upload must arrive before this" }),
  })
  .meta({ id: "UploadStarted" });
export type UploadStarted = z.infer<typeof UploadStarted>;

export const Media = z
  .object({
    id: z.string(),
    purpose: z.enum(MEDIA_PURPOSES),
    url: z.string().nullable().meta({ description: "Public URL once ready (MEDIA_PUBLIC_BASE_URL + key)" }),
    contentType: z.string(),
    size: z.number().int(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    durationSeconds: z.number().nullable().meta({ description: "Videos: from the file's own header" }),
    status: z.enum(MEDIA_STATUSES),
    createdAt: z.string(),
  })
  .meta({ id: "Media" });
export type Media = z.infer<typeof Media>;

export function toMedia(m: MediaDoc): Media {
  return {
    id: m._id.toHexString(),
    purpose: m.purpose,
    url: m.url,
    contentType: m.contentType,
    size: m.size,
    width: m.width,
    height: m.height,
    durationSeconds: m.durationSeconds,
    status: m.status,
    createdAt: m.createdAt.toISOString(),
  };
}

/** `GET /media/{owner}/{file}`: an object's name as keys are made (`{mediaId}-{random}.{ext}`). */
export const ObjectParams = z.object({
  owner: z
    .string()
    .regex(/^[0-9a-f]{24}$/, "a 24-hex id")
    .meta({ example: "66f0c0ffee0000000000beef" }),
  file: z
    .string()
    .regex(/^[0-9a-f]{24}-[A-Za-z0-9_-]{16,64}\.(jpg|png|webp|mp4)$/, "an object name")
    .meta({ example: "66f0c0ffee0000000000bee5-Gv1tIYw0x1Qk3Zr9YdR3aQ.jpg" }),
});
