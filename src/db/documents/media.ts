import type { ObjectId } from "../../platform/ids";

export const MEDIA_PURPOSES = ["avatar", "post", "story", "message", "journal"] as const;
export type MediaPurpose = (typeof MEDIA_PURPOSES)[number];
export const MEDIA_STATUSES = ["pending", "ready"] as const;
export type MediaStatus = (typeof MEDIA_STATUSES)[number];

/**
 * `media` (seed 001's `media_files`): one upload. Created `pending` with what the client declared; becomes
 * `ready` once bytes that prove the declared type (signature and header, features/media/formats.ts) are in
 * the bucket under `key`. A pending record that never gets its bytes expires (`pendingExpiresAt`, TTL).
 */
export interface MediaDoc {
  _id: ObjectId;
  userId: ObjectId;
  purpose: MediaPurpose;
  /** As declared when the upload was started, and as proven by the bytes when ready. */
  contentType: string;
  size: number;
  status: MediaStatus;
  /** The object's key in the bucket (`{userId}/{mediaId}-{random}.{ext}`), set when ready. */
  key: string | null;
  /** The public URL (MEDIA_PUBLIC_BASE_URL + key), set when ready. */
  url: string | null;
  width: number | null;
  height: number | null;
  /** Videos: seconds, from the file's own header. */
  durationSeconds: number | null;
  createdAt: Date;
  readyAt: Date | null;
  /** Pending records only: when the TTL index removes an upload that never arrived. */
  pendingExpiresAt?: Date | null;
}
