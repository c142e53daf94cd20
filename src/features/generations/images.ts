import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";

/** A completed generation's image, as stories, messages and journal entries copy it (generations expire). */
export interface GeneratedImage {
  generationId: ObjectId;
  url: string;
  thumbnailUrl: string | null;
  width: number | null;
  height: number | null;
  blurhash: string | null;
}

/**
 * The owner's completed generations among `ids` that have an image, by id (hex); one MongoDB read. Ids that are
 * someone else's, unfinished or unknown are missing from the map: the caller says which field was wrong.
 */
export async function ownGeneratedImages(
  deps: Deps,
  ownerId: string,
  ids: string[],
): Promise<Map<string, GeneratedImage>> {
  if (ids.length === 0) return new Map();
  const jobs = await deps.db.generationJobs.find(
    { _id: { $in: ids.map((id) => new ObjectId(id)) }, userId: new ObjectId(ownerId), status: "completed" },
    {
      projection: { imageUrl: 1, thumbnailUrl: 1, imageWidth: 1, imageHeight: 1, blurhash: 1 },
      limit: ids.length,
    },
  );
  const images = new Map<string, GeneratedImage>();
  for (const job of jobs) {
    if (!job.imageUrl) continue;
    images.set(job._id.toHexString(), {
      generationId: job._id,
      url: job.imageUrl,
      thumbnailUrl: job.thumbnailUrl ?? null,
      width: job.imageWidth ?? null,
      height: job.imageHeight ?? null,
      blurhash: job.blurhash ?? null,
    });
  }
  return images;
}
