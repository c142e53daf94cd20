import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, rawCall, roundTrips, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { bucket, keyOf, type MediaBody, putBytes, startUpload, storedKeys, TYPE_OF, uploaded } from "../support/media";
import { fixtures } from "../support/media-fixtures";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd } from "../support/users";

const deps = testDeps();
const limits = deps.config.media;

describe("POST /v1/media, PUT /v1/media/{id}", () => {
  it("stores a checked image in R2 and serves it from the public base URL, with its size read from the bytes", async () => {
    const [owner] = await crowd(1);
    const bytes = fixtures.jpeg;
    const started = await startUpload(owner, { purpose: "post", contentType: "image/jpeg", size: bytes.length });
    expect(started.status, started.text).toBe(201);
    expect(started.body).toMatchObject({
      uploadUrl: null,
      status: "pending",
      uploadPath: `/v1/media/${started.body.id}`,
    });
    expect(roundTrips(started.headers)).toMatchObject({ mongo: 1, r2: 0 });
    expect(waits(started.headers)).toMatchObject({ redis: 2, mongo: 1 });

    const put = await putBytes(owner, started.body.id, bytes, { "content-type": "image/jpeg" });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({
      status: "ready",
      contentType: "image/jpeg",
      size: bytes.length,
      width: 64,
      height: 48,
    });
    expect(waits(put.headers)).toMatchObject({ mongo: 2, r2: 1 });
    const url = put.body.url ?? "";
    expect(url.startsWith(`${limits.publicBaseUrl}/${owner.id}/${started.body.id}-`)).toBe(true);

    const stored = await bucket.get(keyOf(url));
    expect(stored?.httpMetadata?.contentType).toBe("image/jpeg");
    expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);

    const served = await fetchObject(url);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/jpeg");
    expect(served.headers.get("cache-control")).toContain("immutable");
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(bytes);

    const again = await call("GET", `/v1/media/${started.body.id}`, { token: owner.accessToken });
    expect(again.body).toEqual(put.body);
  });

  it("refuses bytes that are not the declared type (415 naming body) and stores nothing", async () => {
    const [owner] = await crowd(1);
    for (const [declared, actual] of [
      ["image/png", fixtures.jpeg],
      ["image/webp", fixtures.png],
      ["image/jpeg", new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>")],
      ["video/mp4", fixtures.quicktime],
    ] as const) {
      const started = await startUpload(owner, { purpose: "post", contentType: declared, size: actual.length });
      const put = await putBytes(owner, started.body.id, actual, { "content-type": declared });
      expectProblem(put, 415, "unsupported_media_type");
      expect(fieldPaths(put)).toEqual(["body"]);
      const record = await deps.db.media.findOne({ _id: new ObjectId(started.body.id) });
      expect(record).toMatchObject({ status: "pending", key: null });
    }
    expect(await storedKeys(`${owner.id}/`)).toEqual([]);
  });

  it("refuses a Content-Type other than the declared one before reading the bytes", async () => {
    const [owner] = await crowd(1);
    const started = await startUpload(owner, { purpose: "post", contentType: "image/png", size: fixtures.jpeg.length });
    const put = await putBytes(owner, started.body.id, fixtures.jpeg, { "content-type": "image/jpeg" });
    expectProblem(put, 415, "unsupported_media_type");
    expect(fieldPaths(put)).toEqual(["Content-Type"]);
    expect(roundTrips(put.headers).r2).toBe(0);
  });

  it("enforces the size limits: declared size per kind, Content-Length equal to it, never more bytes", async () => {
    const [owner] = await crowd(1);
    const avatarTooBig = await startUpload(owner, {
      purpose: "avatar",
      contentType: "image/png",
      size: limits.avatarMaxBytes + 1,
    });
    expectProblem(avatarTooBig, 400, "validation_failed");
    expect(fieldPaths(avatarTooBig)).toEqual(["size"]);
    const postImage = await startUpload(owner, {
      purpose: "post",
      contentType: "image/png",
      size: limits.avatarMaxBytes + 1,
    });
    expect(postImage.status).toBe(201);
    const videoTooBig = await startUpload(owner, {
      purpose: "post",
      contentType: "video/mp4",
      size: limits.videoMaxBytes + 1,
    });
    expect(fieldPaths(videoTooBig)).toEqual(["size"]);
    const videoAvatar = await startUpload(owner, { purpose: "avatar", contentType: "video/mp4", size: 1_000 });
    expect(fieldPaths(videoAvatar)).toEqual(["contentType"]);

    // Declared one byte short: the Content-Length does not match, then bytes beyond the declared size.
    const short = await startUpload(owner, {
      purpose: "post",
      contentType: "image/png",
      size: fixtures.png.length - 1,
    });
    const mismatch = await putBytes(owner, short.body.id, fixtures.png, { "content-type": "image/png" });
    expectProblem(mismatch, 400, "validation_failed");
    expect(fieldPaths(mismatch)).toEqual(["Content-Length"]);
    const lying = await putBytes(owner, short.body.id, fixtures.png, {
      "content-type": "image/png",
      "content-length": String(fixtures.png.length - 1),
    });
    expect(lying.status).toBe(400);
    expect(await storedKeys(`${owner.id}/`)).toEqual([]);
  });

  it("streams uploads past the 1 MiB JSON body cap, and refuses a body of unknown length without reading it", async () => {
    const [owner] = await crowd(1);
    // A JPEG followed by 1.5 MiB (decoders stop at its end-of-image marker), in many chunks.
    const big = new Uint8Array(fixtures.jpeg.length + 1_572_864);
    big.set(fixtures.jpeg);
    const started = await startUpload(owner, { purpose: "post", contentType: "image/jpeg", size: big.length });
    const put = await putBytes(owner, started.body.id, big, { "content-type": "image/jpeg" });
    expect(put.status, put.text).toBe(200);
    expect((await bucket.head(keyOf(put.body.url ?? "")))?.size).toBe(big.length);

    const unknown = await startUpload(owner, { purpose: "post", contentType: "image/png", size: fixtures.png.length });
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(fixtures.png);
        controller.close();
      },
    });
    const res = await rawCall(
      "PUT",
      `/v1/media/${unknown.body.id}`,
      { authorization: `Bearer ${owner.accessToken}`, "content-type": "image/png" },
      chunked,
    );
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("Content-Length");

    // A body that stops short of its Content-Length (the client went away): a 400, nothing stored.
    const cut = await startUpload(owner, { purpose: "post", contentType: "image/png", size: fixtures.png.length + 10 });
    const short = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(fixtures.png);
        controller.close();
      },
    });
    const broken = await rawCall(
      "PUT",
      `/v1/media/${cut.body.id}`,
      {
        authorization: `Bearer ${owner.accessToken}`,
        "content-type": "image/png",
        "content-length": String(fixtures.png.length + 10),
      },
      short,
    );
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(["body"]);
    expect(await storedKeys(`${owner.id}/${cut.body.id}-`)).toEqual([]);
  });

  it("refuses images over the pixel limit, read from their header", async () => {
    const [owner] = await crowd(1);
    const started = await startUpload(owner, {
      purpose: "post",
      contentType: "image/png",
      size: fixtures.pngTooWide.length,
    });
    const put = await putBytes(owner, started.body.id, fixtures.pngTooWide, { "content-type": "image/png" });
    expectProblem(put, 400, "validation_failed");
    expect(put.text).toContain("9000×10 px");
  });

  it("reads width, height and duration of every accepted kind", async () => {
    const [owner] = await crowd(1);
    for (const [name, width, height] of [
      ["png", 40, 30],
      ["webpLossy", 33, 21],
      ["webpLossless", 17, 9],
      ["webpAlpha", 20, 10],
      ["jpegWithExif", 64, 48],
    ] as const) {
      expect(await uploaded(owner, "message", name)).toMatchObject({ width, height, durationSeconds: null });
    }
    const reel = await uploaded(owner, "post", "mp4MoovAtEnd");
    expect(reel).toMatchObject({ contentType: "video/mp4", width: 32, height: 24 });
    expect(reel.durationSeconds).toBeCloseTo(2, 1);
    expect((await uploaded(owner, "post", "mp4Portrait")).width).toBe(24);
  });

  it("refuses a video over MEDIA_VIDEO_MAX_SECONDS even when its moov comes last, and stores nothing", async () => {
    const [owner] = await crowd(1);
    const bytes = fixtures.mp4TooLong;
    const started = await startUpload(owner, { purpose: "post", contentType: "video/mp4", size: bytes.length });
    const put = await putBytes(owner, started.body.id, bytes, { "content-type": "video/mp4" });
    expectProblem(put, 400, "validation_failed");
    expect(put.text).toContain(`at most ${limits.videoMaxSeconds} s`);
    expect(await storedKeys(`${owner.id}/`)).toEqual([]);
  });

  it("keeps uploads private to their owner: anyone else's is a 404 to read or to fill", async () => {
    const [owner, other] = await crowd(2);
    const started = await startUpload(owner, { purpose: "post", contentType: "image/png", size: fixtures.png.length });
    expectProblem(await call("GET", `/v1/media/${started.body.id}`, { token: other.accessToken }), 404, "not_found");
    const put = await putBytes(other, started.body.id, fixtures.png, { "content-type": "image/png" });
    expectProblem(put, 404, "not_found");
    expect(await storedKeys(`${other.id}/`)).toEqual([]);
  });

  it("stores one object when the same upload is sent twice at once; a repeat afterwards answers the record", async () => {
    const [owner] = await crowd(1);
    const bytes = fixtures.mp4;
    const started = await startUpload(owner, { purpose: "post", contentType: "video/mp4", size: bytes.length });
    // Each body is held until both requests are reading theirs, and a second more (workerd may start pumping a
    // body before the handler reads it): by then both handlers have found the upload pending.
    let reading = 0;
    let bothReading: () => void = () => {};
    const barrier = new Promise<void>((resolve) => {
      bothReading = resolve;
    });
    const heldBody = () =>
      new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            if (++reading === 2) bothReading();
            await barrier;
            await new Promise((r) => setTimeout(r, 1_000));
            controller.enqueue(bytes);
            controller.close();
          },
        },
        { highWaterMark: 0 },
      );
    const headers = {
      authorization: `Bearer ${owner.accessToken}`,
      "content-type": "video/mp4",
      "content-length": String(bytes.length),
    };
    const both = await Promise.all(
      [1, 2].map(() => rawCall("PUT", `/v1/media/${started.body.id}`, headers, heldBody())),
    );
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    const [winner] = (await Promise.all(both.map((r) => r.json()))).filter(
      (b) => (b as MediaBody).status === "ready",
    ) as MediaBody[];
    expect(await storedKeys(`${owner.id}/${started.body.id}-`)).toEqual([keyOf(winner?.url ?? "")]);
    const repeat = await putBytes(owner, started.body.id, bytes, { "content-type": "video/mp4" });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(winner);
    expect(await storedKeys(`${owner.id}/${started.body.id}-`)).toHaveLength(1);
  });

  it("serves byte ranges of a video to players (206)", async () => {
    const [owner] = await crowd(1);
    const reel = await uploaded(owner, "post", "mp4");
    const part = await fetchObject(reel.url ?? "", { range: "bytes=10-19" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 10-19/${fixtures.mp4.length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(fixtures.mp4.subarray(10, 20));
    const tail = await fetchObject(reel.url ?? "", { range: "bytes=-4" });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(fixtures.mp4.subarray(-4));
    const past = await fetchObject(reel.url ?? "", { range: `bytes=${fixtures.mp4.length}-` });
    expect(past.status).toBe(200);
    expect(TYPE_OF.mp4).toBe(past.headers.get("content-type"));
  });
});

/** Fetches a public media URL through the Worker (the test base URL points at its GET /media route). */
function fetchObject(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return rawCall("GET", new URL(url).pathname, headers);
}
