import { createHash, type KeyObject, randomBytes, sign, X509Certificate } from "node:crypto";

/**
 * A minimal DER writer for X.509 v3 certificates (RFC 5280) signed with ECDSA through node:crypto, so the
 * stand-ins can mint a test PKI without a certificate library. Only what a chain validator looks at is
 * written: names, validity, SPKI, basicConstraints, keyUsage, key identifiers and arbitrary marker
 * extensions. Plus a small reader to list a certificate's extensions (X509Certificate does not expose them).
 */

export type KeyUsage = "digitalSignature" | "keyCertSign" | "cRLSign";

export interface NameAttributes {
  commonName: string;
  organizationalUnit?: string;
  organization?: string;
  country?: string;
}

export interface ExtraExtension {
  oid: string;
  critical?: boolean;
  /** DER of the extension value (what goes inside the OCTET STRING). */
  value: Buffer;
}

export interface CertificateSpec {
  subject: NameAttributes;
  issuer: NameAttributes;
  publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed root). */
  signingKey: KeyObject;
  /** Public key of the issuer, for the authorityKeyIdentifier. */
  issuerPublicKey: KeyObject;
  hash: "sha256" | "sha384";
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  pathLength?: number;
  keyUsage: KeyUsage[];
  extensions?: ExtraExtension[];
  serialNumber?: Buffer;
}

export interface IssuedCertificate {
  der: Buffer;
  pem: string;
  x509: X509Certificate;
}

export const OID = {
  commonName: "2.5.4.3",
  country: "2.5.4.6",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
} as const;

/** DER NULL, the value Apple's marker extensions carry. */
export const DER_NULL = Buffer.from([0x05, 0x00]);

export function createCertificate(spec: CertificateSpec): IssuedCertificate {
  const signatureAlgorithm = seq(oid(spec.hash === "sha384" ? OID.ecdsaWithSha384 : OID.ecdsaWithSha256));
  const extensions: Buffer[] = [
    extension(OID.basicConstraints, true, basicConstraints(spec.ca, spec.pathLength)),
    extension(OID.keyUsage, true, keyUsage(spec.keyUsage)),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spec.publicKey))),
    extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, keyIdentifier(spec.issuerPublicKey)))),
    ...(spec.extensions ?? []).map((e) => extension(e.oid, e.critical ?? false, e.value)),
  ];
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(spec.serialNumber ?? serial()),
    signatureAlgorithm,
    name(spec.issuer),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    spec.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, seq(...extensions)),
  );
  // X.509 carries ECDSA signatures DER-encoded (node's default dsaEncoding).
  const signature = sign(spec.hash, tbs, { key: spec.signingKey, dsaEncoding: "der" });
  const der = seq(tbs, signatureAlgorithm, bitString(signature));
  return { der, pem: toPem(der), x509: new X509Certificate(der) };
}

export function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** OIDs of a certificate's v3 extensions with their criticality, read from its DER. */
export function certificateExtensions(der: Buffer): { oid: string; critical: boolean; value: Buffer }[] {
  const certificate = readTlv(der, 0);
  const tbs = readTlv(der, certificate.contentStart);
  const found: { oid: string; critical: boolean; value: Buffer }[] = [];
  for (const field of children(der, tbs)) {
    if (field.tag !== 0xa3) continue;
    const list = readTlv(der, field.contentStart);
    for (const ext of children(der, list)) {
      const parts = children(der, ext);
      const oidPart = parts[0];
      if (!oidPart) continue;
      const critical = parts.length === 3 && der[parts[1]?.contentStart ?? 0] === 0xff;
      const valuePart = parts[parts.length - 1];
      found.push({
        oid: decodeOid(der.subarray(oidPart.contentStart, oidPart.end)),
        critical,
        value: valuePart ? der.subarray(valuePart.contentStart, valuePart.end) : Buffer.alloc(0),
      });
    }
  }
  return found;
}

/** The signed bytes, the signature algorithm and the (DER-encoded ECDSA) signature of a certificate. */
export function certificateParts(der: Buffer): { tbs: Buffer; signatureAlgorithm: string; signature: Buffer } {
  const certificate = readTlv(der, 0);
  const [tbs, algorithm, signature] = children(der, certificate);
  if (!tbs || !algorithm || !signature) throw new Error("not a certificate");
  const algorithmOid = children(der, algorithm)[0];
  if (!algorithmOid) throw new Error("not a certificate");
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    signatureAlgorithm: decodeOid(der.subarray(algorithmOid.contentStart, algorithmOid.end)),
    signature: der.subarray(signature.contentStart + 1, signature.end), // skip the unused-bits byte
  };
}

// ---- DER primitives ----

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function set(...items: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(items));
}

function explicit(tagNumber: number, content: Buffer): Buffer {
  return tlv(0xa0 + tagNumber, content);
}

/** A non-negative INTEGER: minimal bytes, with a leading zero when the high bit is set. */
function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let body = bytes.subarray(start);
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(0x02, body);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const [first = 0, second = 0, ...rest] = parts;
  const bytes: number[] = [first * 40 + second];
  for (const part of rest) {
    const chunk: number[] = [part & 0x7f];
    for (let value = part >> 7; value > 0; value >>= 7) chunk.unshift((value & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function decodeOid(bytes: Buffer): string {
  const first = bytes[0] ?? 0;
  const parts = [Math.floor(first / 40), first % 40];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

function octetString(bytes: Buffer): Buffer {
  return tlv(0x04, bytes);
}

function boolean(value: boolean): Buffer {
  return tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 4.1.2.5 requires. */
function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2024-01-02T03:04:05.000Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), "ascii"))
    : tlv(0x18, Buffer.from(digits, "ascii"));
}

function name(attributes: NameAttributes): Buffer {
  const rdn = (type: string, value: Buffer) => set(seq(oid(type), value));
  const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, "utf8"));
  const parts: Buffer[] = [rdn(OID.commonName, utf8(attributes.commonName))];
  if (attributes.organizationalUnit) parts.push(rdn(OID.organizationalUnit, utf8(attributes.organizationalUnit)));
  if (attributes.organization) parts.push(rdn(OID.organization, utf8(attributes.organization)));
  // countryName is a PrintableString (RFC 5280 appendix A).
  if (attributes.country) parts.push(rdn(OID.country, tlv(0x13, Buffer.from(attributes.country, "ascii"))));
  return seq(...parts);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolean(true), octetString(value)) : seq(oid(id), octetString(value));
}

function basicConstraints(ca: boolean, pathLength?: number): Buffer {
  if (!ca) return seq(); // cA defaults to FALSE and DER omits defaults
  return pathLength === undefined ? seq(boolean(true)) : seq(boolean(true), integer(Buffer.from([pathLength])));
}

const KEY_USAGE_BIT: Record<KeyUsage, number> = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 };

function keyUsage(usages: KeyUsage[]): Buffer {
  let bits = 0;
  for (const usage of usages) bits |= 0x80 >> KEY_USAGE_BIT[usage];
  // DER: trailing zero bits are counted as unused.
  let unused = 0;
  while (unused < 8 && bits !== 0 && !(bits & (1 << unused))) unused++;
  return bitString(Buffer.from([bits]), bits === 0 ? 0 : unused);
}

/** RFC 5280 4.2.1.2 allows any method; SHA-1 of the whole SPKI is unique enough for a test PKI. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash("sha1")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

function serial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return bytes;
}

// ---- DER reader (just enough to walk to the extensions) ----

interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(der: Buffer, offset: number): Tlv {
  const tag = der[offset] ?? 0;
  let lengthByte = der[offset + 1] ?? 0;
  let contentStart = offset + 2;
  let size = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    size = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = der[offset + 2 + i] ?? 0;
      size = size * 256 + lengthByte;
    }
    contentStart += count;
  }
  const end = contentStart + size;
  if (end > der.length) throw new Error("truncated DER");
  return { tag, start: offset, contentStart, end };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const list: Tlv[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readTlv(der, offset);
    list.push(child);
    offset = child.end;
  }
  return list;
}
