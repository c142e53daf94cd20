import { ApiError } from "../../core/errors";
import type { Viewer } from "../../core/viewer";
import type { PostVideo, RequestKey } from "../../db";
import type { Deps } from "../../deps";
import { newObjectId, ObjectId } from "../../platform/ids";
import { readyMediaOf } from "../media/service";
import { insertNewPost, newPostDoc } from "./publish";
import type { CreatePostBody, Post } from "./schema";

/**
 * A post of the caller's own uploads (purpose `post`): an image, or a video (a reel, seed 003) with a poster
 * image that feeds show before playback. The uploads and the author are read in parallel (one MongoDB wait),
 * then the post is inserted (one more) as a draft, published or scheduled, as for a generation (publish.ts). An upload may be posted more than once, like any picture of one's own.
 */
export async function createUploadPost(
  deps: Deps,
  viewer: Viewer,
  body: CreatePostBody & { mediaId: string },
  requestKey: RequestKey | undefined,
): Promise<Post> {
  const me = new ObjectId(viewer.id);
  const wanted = body.posterMediaId ? [body.mediaId, body.posterMediaId] : [body.mediaId];
  const [media, author] = await Promise.all([
    readyMediaOf(deps, viewer.id, wanted, ["post"]),
    deps.db.users.findOne({ _id: me, deletedAt: null }),
  ]);
  if (!author) throw ApiError.notFound("Account not found.");
  const main = media.get(body.mediaId);
  if (!main?.url) throw ApiError.invalidField("mediaId", "not a ready post upload of yours");
  const isVideo = main.contentType.startsWith("video/");
  let image = main;
  let video: PostVideo | null = null;
  if (isVideo) {
    const poster = body.posterMediaId ? media.get(body.posterMediaId) : undefined;
    if (!poster?.url || poster.contentType.startsWith("video/")) {
      throw ApiError.invalidField("posterMediaId", "a video needs a ready post image upload of yours as its poster");
    }
    image = poster;
    video = {
      url: main.url,
      contentType: main.contentType,
      durationSeconds: main.durationSeconds ?? 0,
      width: main.width ?? 0,
      height: main.height ?? 0,
    };
  } else if (body.posterMediaId) {
    throw ApiError.invalidField("posterMediaId", "only a video takes a poster");
  }
  const draft = newPostDoc(
    deps,
    newObjectId(),
    author,
    body,
    {
      generationId: null,
      prompt: body.prompt ?? "",
      refinedPrompt: null,
      imageUrl: image.url ?? "",
      thumbnailUrl: image.url ?? "",
      imageWidth: image.width ?? 0,
      imageHeight: image.height ?? 0,
      blurhash: null,
      model: "upload",
      modelVersion: null,
      generationTimeMs: null,
      generationParams: { steps: null, cfgScale: null, seed: null, negativePrompt: null },
      // Uploads are the author's own pictures: the free tier's watermark marks generated images only.
      hasWatermark: false,
      nsfwScore: null,
      mediaType: isVideo ? "video" : "image",
      mediaIds: [...media.keys()].map((id) => new ObjectId(id)),
      video,
    },
    requestKey,
  );
  return insertNewPost(deps, viewer, author, draft, body, requestKey);
}
