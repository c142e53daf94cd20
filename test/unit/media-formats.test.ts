import { describe, expect, it } from "vitest";
import {
  type InspectionLimits,
  type MediaContentType,
  MediaRejected,
  sniffType,
  UploadInspector,
} from "../../src/features/media/formats";
import { fixtures } from "../support/media-fixtures";

const limits: InspectionLimits = { maxBytes: 10_000_000, maxDimension: 8_192, maxDurationSeconds: 60 };

/** Feeds the bytes in chunks of `chunk` bytes, as a stream would, and returns the verdict. */
function inspect(declared: MediaContentType, bytes: Uint8Array, chunk = 7, own: Partial<InspectionLimits> = {}) {
  const inspector = new UploadInspector(declared, { ...limits, ...own });
  for (let at = 0; at < bytes.length; at += chunk) inspector.push(bytes.subarray(at, at + chunk));
  return inspector.finish();
}

function rejection(run: () => unknown): MediaRejected {
  try {
    run();
  } catch (error) {
    if (error instanceof MediaRejected) return error;
    throw error;
  }
  throw new Error("expected the bytes to be refused");
}

describe("media formats: what the bytes are", () => {
  it.each([
    ["jpeg", "image/jpeg", 64, 48],
    ["jpegWithExif", "image/jpeg", 64, 48],
    ["png", "image/png", 40, 30],
    ["webpLossy", "image/webp", 33, 21],
    ["webpLossless", "image/webp", 17, 9],
    ["webpAlpha", "image/webp", 20, 10],
  ] as const)("reads %s's size from its header", (name, type, width, height) => {
    for (const chunk of [1, 7, 4096]) {
      expect(inspect(type, fixtures[name], chunk)).toEqual({
        contentType: type,
        width,
        height,
        durationSeconds: null,
        bytes: fixtures[name].length,
      });
    }
  });

  it.each([
    ["mp4", 32, 24],
    ["mp4MoovAtEnd", 32, 24],
    ["mp4Portrait", 24, 32],
  ] as const)("reads %s's duration and display size from its moov box, wherever it is", (name, width, height) => {
    for (const chunk of [1, 13, 65_536]) {
      const seen = inspect("video/mp4", fixtures[name], chunk);
      expect(seen).toMatchObject({ contentType: "video/mp4", width, height });
      expect(seen.durationSeconds).toBeCloseTo(2, 1);
    }
  });

  it("refuses bytes of another type than declared, naming both", () => {
    expect(rejection(() => inspect("image/png", fixtures.jpeg))).toMatchObject({
      kind: "unsupported",
      message: "the bytes are image/jpeg, not the declared image/png",
    });
    expect(rejection(() => inspect("image/jpeg", fixtures.mp4)).kind).toBe("unsupported");
    expect(rejection(() => inspect("video/mp4", fixtures.webpLossy)).kind).toBe("unsupported");
    const text = new TextEncoder().encode("<svg xmlns='http://www.w3.org/2000/svg'></svg>");
    expect(rejection(() => inspect("image/png", text)).message).toContain("not image/png");
  });

  it("refuses as soon as the first bytes disagree, before the rest arrives", () => {
    const inspector = new UploadInspector("image/webp", limits);
    expect(() => inspector.push(fixtures.png.subarray(0, 16))).toThrow(MediaRejected);
  });

  it("refuses a QuickTime movie declared as MP4 (same boxes, not an MP4 brand)", () => {
    expect(sniffType(fixtures.quicktime)).toBe("video/mp4");
    expect(rejection(() => inspect("video/mp4", fixtures.quicktime))).toMatchObject({ kind: "unsupported" });
  });

  it("refuses a video longer than the limit, judged from its moov box", () => {
    expect(rejection(() => inspect("video/mp4", fixtures.mp4TooLong)).message).toMatch(/61\.0 s long; at most 60 s/);
    expect(inspect("video/mp4", fixtures.mp4TooLong, 4096, { maxDurationSeconds: 61 }).durationSeconds).toBeCloseTo(61);
  });

  it("refuses images larger than the pixel limit and bodies over the byte limit", () => {
    expect(rejection(() => inspect("image/png", fixtures.pngTooWide)).message).toContain("9000×10 px");
    expect(rejection(() => inspect("image/jpeg", fixtures.jpeg, 7, { maxBytes: 100 })).message).toBe(
      "more than 100 bytes",
    );
  });

  it("refuses truncated files: an image cut before its size, a video cut inside a box", () => {
    expect(rejection(() => inspect("image/png", fixtures.png.subarray(0, 20))).kind).toBe("invalid");
    expect(rejection(() => inspect("video/mp4", fixtures.mp4.subarray(0, 1_000))).message).toContain("ends inside");
    expect(rejection(() => inspect("video/mp4", fixtures.mp4MoovAtEnd.subarray(0, 1_500))).kind).toBe("invalid");
  });
});
