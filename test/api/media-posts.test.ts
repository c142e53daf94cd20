import { describe, expect, it } from "vitest";
import { eraseUser, exportSections } from "../../src/features/media/privacy";
import { ObjectId } from "../../src/platform/ids";
import { call, rawCall, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { bucket, keyOf, startUpload, storedKeys, uploaded } from "../support/media";
import { fixtures } from "../support/media-fixtures";
import { completedGeneration, publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd } from "../support/users";

const deps = testDeps();

interface PostBody {
  id: string;
  mediaType: "image" | "video";
  video: { url: string; durationSeconds: number; width: number; height: number; contentType: string } | null;
  imageUrl: string;
  thumbnailUrl: string;
  imageWidth: number;
  imageHeight: number;
  model: string;
  prompt: string;
  hasWatermark: boolean;
}
interface Page {
  items: PostBody[];
}

describe("POST /v1/posts with uploads (images and reels)", () => {
  it("publishes an uploaded image: its URL and size, mediaType image, no watermark", async () => {
    const [author] = await crowd(1);
    const image = await uploaded(author, "post", "webpLossless");
    const res = await call<PostBody>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { mediaId: image.id, prompt: "a fox in snow", tags: ["fox"] },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      mediaType: "image",
      video: null,
      imageUrl: image.url,
      thumbnailUrl: image.url,
      imageWidth: 17,
      imageHeight: 9,
      model: "upload",
      prompt: "a fox in snow",
      hasWatermark: false,
    });
    expect(waits(res.headers).mongo).toBeLessThanOrEqual(3);
  });

  it("keeps an uploaded image as a draft or schedules it, like a generation's post", async () => {
    const [author, viewer] = await crowd(2);
    const image = await uploaded(author, "post", "webpLossless");
    const draft = await call<PostBody & { status: string }>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { mediaId: image.id, status: "draft" },
    });
    expect(draft.status, draft.text).toBe(201);
    expect(draft.body.status).toBe("draft");
    expect((await call("GET", `/v1/posts/${draft.body.id}`, { token: viewer.accessToken })).status).toBe(404);
    const publishAt = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await call<PostBody & { status: string; publishAt: string }>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { mediaId: image.id, status: "scheduled", publishAt },
    });
    expect(scheduled.status, scheduled.text).toBe(201);
    expect(scheduled.body).toMatchObject({ status: "scheduled", publishAt });
    const profile = await call<{ totalPosts: number }>("GET", "/v1/me", { token: author.accessToken });
    expect(profile.body.totalPosts).toBe(0);
  });

  it("publishes a reel: the video with its duration for players, its poster for feeds", async () => {
    const [author] = await crowd(1);
    const [video, poster] = [await uploaded(author, "post", "mp4"), await uploaded(author, "post", "jpeg")];
    const res = await call<PostBody>("POST", "/v1/posts", {
      token: author.accessToken,
      body: { mediaId: video.id, posterMediaId: poster.id },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      mediaType: "video",
      imageUrl: poster.url,
      imageWidth: 64,
      imageHeight: 48,
      video: { url: video.url, contentType: "video/mp4", width: 32, height: 24 },
    });
    expect(res.body.video?.durationSeconds).toBeCloseTo(2, 1);
    const feed = await call<Page>("GET", `/v1/users/${author.id}/posts`);
    expect(feed.body.items.map((p) => [p.id, p.mediaType, p.video?.url])).toEqual([[res.body.id, "video", video.url]]);
    const played = await rawCall("GET", new URL(res.body.video?.url ?? "").pathname, { range: "bytes=0-7" });
    expect(played.status).toBe(206);
  });

  it("marks generated posts as images in feeds", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    expect(post).toMatchObject({ mediaType: "image", video: null });
    const feed = await call<Page>("GET", `/v1/users/${author.id}/posts`);
    expect(feed.body.items[0]).toMatchObject({ id: post.id, mediaType: "image" });
  });

  it("refuses what is not a ready post upload of the caller's, naming the field", async () => {
    const [author, other] = await crowd(2);
    const video = await uploaded(author, "post", "mp4");
    const otherVideo = await uploaded(author, "post", "mp4MoovAtEnd");
    const image = await uploaded(author, "post", "png");
    const avatar = await uploaded(author, "avatar", "png");
    const theirs = await uploaded(other, "post", "png");
    const pending = await startUpload(author, { purpose: "post", contentType: "image/png", size: fixtures.png.length });
    const generationId = await completedGeneration(author);
    const cases: [Record<string, unknown>, string][] = [
      [{ mediaId: video.id }, "posterMediaId"],
      [{ mediaId: video.id, posterMediaId: otherVideo.id }, "posterMediaId"],
      [{ mediaId: image.id, posterMediaId: image.id }, "posterMediaId"],
      [{ mediaId: theirs.id }, "mediaId"],
      [{ mediaId: avatar.id }, "mediaId"],
      [{ mediaId: pending.body.id }, "mediaId"],
      [{ mediaId: image.id, generationId }, "generationId"],
      [{}, "generationId"],
      [{ generationId, prompt: "mine" }, "posterMediaId"],
    ];
    for (const [body, field] of cases) {
      const res = await call("POST", "/v1/posts", { token: author.accessToken, body });
      expectProblem(res, 400, "validation_failed");
      expect(fieldPaths(res), JSON.stringify(body)).toEqual([field]);
    }
    expect(await deps.db.posts.find({ userId: new ObjectId(author.id) })).toEqual([]);
  });
});

describe("media export and erasure (features/media/privacy.ts)", () => {
  it("exports every upload record, and erasure deletes every object under the person's prefix in R2", async () => {
    const [owner, other] = await crowd(2);
    const avatar = await uploaded(owner, "avatar", "png");
    const reel = await uploaded(owner, "post", "mp4");
    const pending = await startUpload(owner, {
      purpose: "story",
      contentType: "image/jpeg",
      size: fixtures.jpeg.length,
    });
    // An object whose record never became ready (an attempt that lost a race, a crash after the put).
    await bucket.put(`${owner.id}/${pending.body.id}-orphanedattempt0000.jpg`, fixtures.jpeg);
    const kept = await uploaded(other, "post", "png");
    await call("PATCH", "/v1/me", { token: owner.accessToken, body: { avatarMediaId: avatar.id } });

    const sections: { section: string; items: unknown[] }[] = [];
    for await (const section of exportSections(deps, owner.id)) sections.push(section);
    expect(sections.map((s) => s.section)).toEqual(["media"]);
    expect(sections[0]?.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: avatar.id, url: avatar.url }),
        expect.objectContaining({ id: reel.id }),
      ]),
    );
    expect(JSON.stringify(sections)).not.toContain('"key"');
    expect(await storedKeys(`${owner.id}/`)).toHaveLength(3);

    await eraseUser(deps, owner.id);
    await eraseUser(deps, owner.id); // idempotent: a re-run after a crash finds nothing left to do
    expect(await storedKeys(`${owner.id}/`)).toEqual([]);
    expect(await bucket.head(keyOf(reel.url ?? ""))).toBeNull();
    expect(await deps.db.media.find({ userId: new ObjectId(owner.id) })).toEqual([]);
    expect((await rawCall("GET", new URL(avatar.url ?? "").pathname)).status).toBe(404);
    expect(await bucket.head(keyOf(kept.url ?? ""))).not.toBeNull();
  });
});
