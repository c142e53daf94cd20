/**
 * What uploaded bytes really are, read from the bytes themselves as they stream past (never from the declared
 * type): the file signature, and the dimensions (and for video the duration) from the format's own header —
 * JPEG's SOF segment, PNG's IHDR, WebP's VP8/VP8L/VP8X header, MP4's `moov` (`mvhd` for the duration, the
 * video track's `tkhd` for the display size). Pure code: no store, no HTTP; unit-tested in test/unit.
 */

export const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp"] as const;
export const VIDEO_TYPES = ["video/mp4"] as const;
export const MEDIA_TYPES = [...IMAGE_TYPES, ...VIDEO_TYPES] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];
export type MediaContentType = (typeof MEDIA_TYPES)[number];

export const EXTENSIONS: Record<MediaContentType, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/webp": "webp",
  "video/mp4": "mp4",
};

export function isVideoType(type: MediaContentType): type is (typeof VIDEO_TYPES)[number] {
  return (VIDEO_TYPES as readonly string[]).includes(type);
}

/** Why bytes were refused: `unsupported` when they are not what was declared, `invalid` when malformed or over a limit. */
export class MediaRejected extends Error {
  override name = "MediaRejected";
  constructor(
    readonly kind: "unsupported" | "invalid",
    message: string,
  ) {
    super(message);
  }
}

export interface Inspection {
  contentType: MediaContentType;
  width: number;
  height: number;
  /** Videos only: `mvhd` duration / timescale, in seconds (fractional). */
  durationSeconds: number | null;
  bytes: number;
}

export interface InspectionLimits {
  maxBytes: number;
  maxDimension: number;
  /** Videos only. */
  maxDurationSeconds: number;
}

/** Bytes needed before the signature can be judged. */
export const SIGNATURE_BYTES = 16;
/** How far into an image its dimensions may lie (JPEG may put EXIF, ICC and XMP segments first). */
const IMAGE_HEADER_MAX_BYTES = 1_048_576;
/** The largest `moov` box read (its sample tables grow with length; 8 MiB covers hours of video). */
const MOOV_MAX_BYTES = 8 * 1_048_576;

// ISO base media brands that are MP4 video. QuickTime ('qt  ') and the HEIF/AVIF image brands share the box
// format but are not MP4, so a brand must be one of these (as the major brand or a compatible one).
const MP4_BRANDS = new Set([
  "isom",
  "iso2",
  "iso3",
  "iso4",
  "iso5",
  "iso6",
  "mp41",
  "mp42",
  "avc1",
  "M4V ",
  "dash",
  "mmp4",
]);
const IMAGE_BRANDS = new Set(["heic", "heix", "heim", "heis", "mif1", "msf1", "avif", "avis"]);

const ascii = (bytes: Uint8Array, start: number, length: number) =>
  String.fromCharCode(...bytes.subarray(start, start + length));

/** The type the first SIGNATURE_BYTES prove, or null when they are none of ours. */
export function sniffType(head: Uint8Array): MediaContentType | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (head.length >= 8 && png.every((b, i) => head[i] === b)) return "image/png";
  if (head.length >= 12 && ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 4) === "WEBP") return "image/webp";
  if (head.length >= 12 && ascii(head, 4, 4) === "ftyp") {
    const major = ascii(head, 8, 4);
    // The compatible brands are checked once the whole ftyp box has arrived (Mp4Reader).
    if (!IMAGE_BRANDS.has(major)) return "video/mp4";
  }
  return null;
}

/** Reads an upload chunk by chunk and judges it; `finish` answers what it is or throws MediaRejected. */
export class UploadInspector {
  private received = 0;
  private head: Uint8Array = new Uint8Array(0);
  private checkedSignature = false;
  /** Video chunks that arrived before the signature could be judged. */
  private readonly early: Uint8Array[] = [];
  private image: { width: number; height: number } | null = null;
  private readonly mp4: Mp4Reader | null;

  constructor(
    private readonly declared: MediaContentType,
    private readonly limits: InspectionLimits,
  ) {
    this.mp4 = isVideoType(declared) ? new Mp4Reader() : null;
  }

  /** Takes the next chunk; throws MediaRejected as soon as the bytes prove the upload wrong. */
  push(chunk: Uint8Array): void {
    this.received += chunk.length;
    if (this.received > this.limits.maxBytes) {
      throw new MediaRejected("invalid", `more than ${this.limits.maxBytes} bytes`);
    }
    const headLimit = this.mp4 ? SIGNATURE_BYTES : IMAGE_HEADER_MAX_BYTES;
    if (!this.image && this.head.length < headLimit) {
      this.head = concat(this.head, chunk.subarray(0, headLimit - this.head.length));
    }
    if (this.mp4) {
      // The box walk starts once the signature is proven, so a wrong type is refused as such.
      this.early.push(chunk);
      if (!this.checkedSignature && this.head.length >= SIGNATURE_BYTES) this.checkSignature();
      if (this.checkedSignature) for (const part of this.early.splice(0)) this.mp4.push(part);
      return;
    }
    if (!this.checkedSignature && this.head.length >= SIGNATURE_BYTES) this.checkSignature();
    if (this.checkedSignature && !this.image) {
      this.image = imageDimensions(this.declared as ImageType, this.head);
      if (this.image) this.checkDimensions(this.image);
      else if (this.head.length >= IMAGE_HEADER_MAX_BYTES) {
        throw new MediaRejected("invalid", "no image dimensions in the first MiB");
      }
    }
  }

  /** After the last chunk: the verdict. */
  finish(): Inspection {
    if (!this.checkedSignature) this.checkSignature();
    if (this.mp4) {
      for (const part of this.early.splice(0)) this.mp4.push(part);
      const video = this.mp4.finish();
      this.checkDimensions(video);
      if (video.durationSeconds > this.limits.maxDurationSeconds) {
        throw new MediaRejected(
          "invalid",
          `the video is ${video.durationSeconds.toFixed(1)} s long; at most ${this.limits.maxDurationSeconds} s`,
        );
      }
      return { contentType: this.declared, ...video, bytes: this.received };
    }
    const image = this.image ?? imageDimensions(this.declared as ImageType, this.head);
    if (!image) throw new MediaRejected("invalid", "the image header is incomplete");
    this.checkDimensions(image);
    return { contentType: this.declared, ...image, durationSeconds: null, bytes: this.received };
  }

  private checkSignature(): void {
    const actual = sniffType(this.head);
    if (actual !== this.declared) {
      throw new MediaRejected(
        "unsupported",
        actual
          ? `the bytes are ${actual}, not the declared ${this.declared}`
          : `the bytes are not ${this.declared} (nor any type accepted here)`,
      );
    }
    this.checkedSignature = true;
  }

  private checkDimensions(d: { width: number; height: number }): void {
    if (d.width < 1 || d.height < 1) throw new MediaRejected("invalid", "the header gives no width or height");
    const max = this.limits.maxDimension;
    if (d.width > max || d.height > max) {
      throw new MediaRejected("invalid", `${d.width}×${d.height} px is larger than ${max} px on a side`);
    }
  }
}

/** Width and height from an image's header, or null while the bytes so far do not reach them. */
export function imageDimensions(type: ImageType, b: Uint8Array): { width: number; height: number } | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (type === "image/png") {
    // Signature, then the IHDR chunk first: length (13), "IHDR", width, height (big-endian).
    if (b.length < 24) return null;
    if (ascii(b, 12, 4) !== "IHDR") throw new MediaRejected("invalid", "a PNG must start with its IHDR chunk");
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (type === "image/webp") return webpDimensions(b, view);
  return jpegDimensions(b, view);
}

function webpDimensions(b: Uint8Array, view: DataView): { width: number; height: number } | null {
  if (b.length < 30) return null;
  const chunk = ascii(b, 12, 4);
  if (chunk === "VP8 ") {
    // Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height (little-endian).
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw new MediaRejected("invalid", "bad VP8 start code");
    return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  }
  if (chunk === "VP8L") {
    // Lossless: signature 0x2f, then width−1 and height−1 in 14 bits each.
    if (b[20] !== 0x2f) throw new MediaRejected("invalid", "bad VP8L signature");
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") {
    // Extended: flags and reserved bytes, then canvas width−1 and height−1 in 24 bits each.
    const u24 = (at: number) => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16);
    return { width: u24(24) + 1, height: u24(27) + 1 };
  }
  throw new MediaRejected("invalid", `unknown WebP chunk ${JSON.stringify(chunk)}`);
}

// Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegDimensions(b: Uint8Array, view: DataView): { width: number; height: number } | null {
  let at = 2; // after SOI
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) throw new MediaRejected("invalid", "a JPEG segment does not start with a marker");
    const marker = b[at + 1] ?? 0;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // standalone markers have no length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) {
      throw new MediaRejected("invalid", "the JPEG's scan starts before its frame header");
    }
    const length = view.getUint16(at + 2);
    if (length < 2) throw new MediaRejected("invalid", "a JPEG segment has a bad length");
    if (SOF_MARKERS.has(marker)) {
      if (at + 9 > b.length) return null;
      return { height: view.getUint16(at + 5), width: view.getUint16(at + 7) };
    }
    at += 2 + length;
  }
  return null;
}

/**
 * Walks an MP4's top-level boxes as they stream past: the first must be `ftyp` with an MP4 brand; `mdat` and
 * other payloads are skipped without being kept; `moov` (wherever it is: before or after the media data) is
 * collected and read for the duration and the video track's display size.
 */
class Mp4Reader {
  /** Bytes of the current box header not yet complete. */
  private header: Uint8Array = new Uint8Array(0);
  private box: { type: string; remaining: number; keep: boolean; data: Uint8Array[] } | null = null;
  private sawFtyp = false;
  private moov: Uint8Array | null = null;
  private untilEnd = false;

  push(chunk: Uint8Array): void {
    let rest = chunk;
    while (rest.length > 0 && !this.untilEnd) {
      if (!this.box) {
        const take = Math.min(rest.length, this.headerSize() - this.header.length);
        this.header = concat(this.header, rest.subarray(0, take));
        rest = rest.subarray(take);
        if (this.header.length < this.headerSize()) continue;
        const parsed = this.parseHeader();
        this.header = new Uint8Array(0);
        this.openBox(parsed.type, parsed.size, parsed.headerSize);
        continue;
      }
      const take = Math.min(rest.length, this.box.remaining);
      if (this.box.keep) this.box.data.push(rest.slice(0, take));
      this.box.remaining -= take;
      rest = rest.subarray(take);
      if (this.box.remaining === 0) this.closeBox();
    }
  }

  finish(): { width: number; height: number; durationSeconds: number } {
    if (this.box && !this.untilEnd)
      throw new MediaRejected("invalid", `the MP4 ends inside its '${this.box.type}' box`);
    if (this.header.length > 0) throw new MediaRejected("invalid", "the MP4 ends inside a box header");
    if (!this.sawFtyp) throw new MediaRejected("invalid", "not an MP4 file");
    if (!this.moov) throw new MediaRejected("invalid", "the MP4 has no 'moov' box");
    return readMoov(this.moov);
  }

  /** 8 bytes, or 16 when the 32-bit size is 1 (a 64-bit size follows the type). */
  private headerSize(): number {
    const h = this.header;
    if (h.length < 8) return 8;
    return new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(0) === 1 ? 16 : 8;
  }

  private parseHeader(): { type: string; size: number; headerSize: number } {
    const h = this.header;
    const view = new DataView(h.buffer, h.byteOffset, h.byteLength);
    const size32 = view.getUint32(0);
    const type = ascii(h, 4, 4);
    if (size32 !== 1) return { type, size: size32, headerSize: 8 };
    const large = view.getBigUint64(8);
    if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw new MediaRejected("invalid", "an MP4 box is too large");
    return { type, size: Number(large), headerSize: 16 };
  }

  private openBox(type: string, size: number, headerSize: number): void {
    if (!/^[\x20-\x7e]{4}$/.test(type)) throw new MediaRejected("invalid", "not an MP4 box structure");
    if (!this.sawFtyp && type !== "ftyp") throw new MediaRejected("unsupported", "an MP4 must start with 'ftyp'");
    if (size === 0) {
      if (type === "moov") throw new MediaRejected("invalid", "the 'moov' box has no size");
      this.untilEnd = true;
      this.box = { type, remaining: Number.POSITIVE_INFINITY, keep: false, data: [] };
      return;
    }
    if (size < headerSize) throw new MediaRejected("invalid", `the '${type}' box has a bad size`);
    const payload = size - headerSize;
    const keep = type === "ftyp" || type === "moov";
    if (type === "moov" && (payload > MOOV_MAX_BYTES || this.moov)) {
      throw new MediaRejected("invalid", "the MP4's 'moov' box is too large or repeated");
    }
    if (type === "ftyp" && (this.sawFtyp || payload > 1024)) throw new MediaRejected("invalid", "bad 'ftyp' box");
    this.box = { type, remaining: payload, keep, data: [] };
    if (payload === 0) this.closeBox();
  }

  private closeBox(): void {
    const box = this.box;
    if (!box) return;
    this.box = null;
    if (box.type === "ftyp") {
      this.checkBrands(concat(...box.data));
      this.sawFtyp = true;
    } else if (box.type === "moov") {
      this.moov = concat(...box.data);
    }
  }

  private checkBrands(ftyp: Uint8Array): void {
    if (ftyp.length < 8) throw new MediaRejected("invalid", "bad 'ftyp' box");
    const brands = [ascii(ftyp, 0, 4)];
    for (let at = 8; at + 4 <= ftyp.length; at += 4) brands.push(ascii(ftyp, at, 4));
    if (IMAGE_BRANDS.has(brands[0] ?? "") || !brands.some((b) => MP4_BRANDS.has(b))) {
      throw new MediaRejected("unsupported", `the file's brands (${brands.join(", ").trim()}) are not MP4 video`);
    }
  }
}

interface Box {
  type: string;
  start: number;
  end: number;
}

function* children(b: Uint8Array, start: number, end: number): Generator<Box> {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = start;
  while (at + 8 <= end) {
    let size = view.getUint32(at);
    let headerSize = 8;
    if (size === 1) {
      if (at + 16 > end) break;
      size = Number(view.getBigUint64(at + 8));
      headerSize = 16;
    } else if (size === 0) size = end - at;
    if (size < headerSize || at + size > end) throw new MediaRejected("invalid", "a box inside 'moov' has a bad size");
    yield { type: ascii(b, at + 4, 4), start: at + headerSize, end: at + size };
    at += size;
  }
}

function readMoov(moov: Uint8Array): { width: number; height: number; durationSeconds: number } {
  const view = new DataView(moov.buffer, moov.byteOffset, moov.byteLength);
  let durationSeconds: number | null = null;
  let video: { width: number; height: number } | null = null;
  for (const box of children(moov, 0, moov.length)) {
    if (box.type === "mvhd") durationSeconds = mvhdDuration(view, box);
    if (box.type === "trak" && !video) video = videoTrackSize(moov, view, box);
  }
  if (durationSeconds === null || !(durationSeconds > 0)) {
    throw new MediaRejected("invalid", "the MP4 does not state its duration (fragmented or empty)");
  }
  if (!video) throw new MediaRejected("invalid", "the MP4 has no video track");
  return { ...video, durationSeconds };
}

function mvhdDuration(view: DataView, box: Box): number {
  const version = view.getUint8(box.start);
  const need = version === 1 ? 32 : 20;
  if (box.end - box.start < need) throw new MediaRejected("invalid", "bad 'mvhd' box");
  const timescale = view.getUint32(box.start + (version === 1 ? 20 : 12));
  const duration = version === 1 ? Number(view.getBigUint64(box.start + 24)) : view.getUint32(box.start + 16);
  if (timescale === 0) throw new MediaRejected("invalid", "the MP4's timescale is 0");
  return duration / timescale;
}

/** The display size of a track whose handler is video ('vide'), or null for other tracks. */
function videoTrackSize(b: Uint8Array, view: DataView, trak: Box): { width: number; height: number } | null {
  let tkhd: Box | null = null;
  let handler: string | null = null;
  for (const box of children(b, trak.start, trak.end)) {
    if (box.type === "tkhd") tkhd = box;
    if (box.type === "mdia") {
      for (const inner of children(b, box.start, box.end)) {
        if (inner.type === "hdlr" && inner.end - inner.start >= 12) handler = ascii(b, inner.start + 8, 4);
      }
    }
  }
  if (handler !== "vide" || !tkhd) return null;
  const version = view.getUint8(tkhd.start);
  // After the version-dependent times, track id and duration: 8 reserved, layer, group, volume, 2 reserved,
  // the 3×3 matrix (36 bytes), then width and height as 16.16 fixed point.
  const matrixAt = tkhd.start + (version === 1 ? 44 : 32) + 8;
  const sizeAt = matrixAt + 36;
  if (sizeAt + 8 > tkhd.end) throw new MediaRejected("invalid", "bad 'tkhd' box");
  const width = Math.round(view.getUint32(sizeAt) / 65536);
  const height = Math.round(view.getUint32(sizeAt + 4) / 65536);
  // A quarter turn in the matrix (a = d = 0: phones record portrait this way) swaps what players show.
  const a = view.getInt32(matrixAt);
  const d = view.getInt32(matrixAt + 16);
  return a === 0 && d === 0 ? { width: height, height: width } : { width, height };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
