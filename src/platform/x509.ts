/**
 * X.509 certificates (RFC 5280) read from DER and chains checked with WebCrypto alone, as a Worker must: no
 * certificate library, no node:crypto. Only what a path validator needs is read — names (compared as DER),
 * validity, the subject public key, the signature and its algorithm, and the extensions (basicConstraints,
 * keyUsage, any marker OIDs a caller requires) — and anything malformed is refused. ECDSA chains only (P-256,
 * P-384, P-521 with SHA-256/384/512), which is what the App Store signs with.
 */

export type Bytes = Uint8Array<ArrayBuffer>;

export type KeyUsage = "digitalSignature" | "keyCertSign" | "cRLSign";

export interface Extension {
  oid: string;
  critical: boolean;
  value: Bytes;
}

export interface Certificate {
  der: Bytes;
  /** The signed part (tbsCertificate), as bytes. */
  tbs: Bytes;
  signatureAlgorithm: string;
  /** DER ECDSA-Sig-Value { r, s }. */
  signature: Bytes;
  /** Issuer and subject Names as DER: a chain links by exact equality, as RFC 5280 §7.1 allows. */
  issuer: Bytes;
  subject: Bytes;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo as DER (what WebCrypto imports as "spki"). */
  spki: Bytes;
  namedCurve: "P-256" | "P-384" | "P-521" | null;
  extensions: Extension[];
  basicConstraints: { ca: boolean; pathLength: number | null } | null;
  keyUsage: Set<KeyUsage> | null;
}

/** Why a certificate or chain was refused (the message says which check). */
export class CertificateError extends Error {
  override name = "CertificateError";
}

export const OIDS = {
  ecPublicKey: "1.2.840.10045.2.1",
  p256: "1.2.840.10045.3.1.7",
  p384: "1.3.132.0.34",
  p521: "1.3.132.0.35",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
} as const;

const CURVES: Record<string, "P-256" | "P-384" | "P-521"> = {
  [OIDS.p256]: "P-256",
  [OIDS.p384]: "P-384",
  [OIDS.p521]: "P-521",
};
const COORDINATE_BYTES = { "P-256": 32, "P-384": 48, "P-521": 66 } as const;
const HASHES: Record<string, "SHA-256" | "SHA-384" | "SHA-512"> = {
  [OIDS.ecdsaWithSha256]: "SHA-256",
  [OIDS.ecdsaWithSha384]: "SHA-384",
  [OIDS.ecdsaWithSha512]: "SHA-512",
};
/** Critical extensions this validator understands; any other critical one makes a certificate unusable (§4.2). */
const UNDERSTOOD_CRITICAL = new Set<string>([OIDS.basicConstraints, OIDS.keyUsage]);

// ---- DER ----

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(der: Bytes, offset: number, limit = der.length): Tlv {
  if (offset + 2 > limit) throw new CertificateError("truncated DER");
  const tag = der[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new CertificateError("multi-byte DER tags are not used in certificates");
  const first = der[offset + 1] as number;
  let contentStart = offset + 2;
  let size = first;
  if (first === 0x80) throw new CertificateError("indefinite lengths are not DER");
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count > 4) throw new CertificateError("DER length too large");
    size = 0;
    for (let i = 0; i < count; i++) size = size * 256 + (der[offset + 2 + i] ?? 0);
    if (size < 0x80) throw new CertificateError("non-minimal DER length");
    contentStart += count;
  }
  const end = contentStart + size;
  if (end > limit) throw new CertificateError("truncated DER");
  return { tag, start: offset, contentStart, end };
}

function children(der: Bytes, parent: Tlv): Tlv[] {
  const list: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(der, at, parent.end);
    list.push(child);
    at = child.end;
  }
  return list;
}

function expectTag(node: Tlv | undefined, tag: number, what: string): Tlv {
  if (!node || node.tag !== tag) throw new CertificateError(`malformed certificate: ${what}`);
  return node;
}

const slice = (der: Bytes, from: number, to: number): Bytes => new Uint8Array(der.subarray(from, to));
const content = (der: Bytes, node: Tlv): Bytes => slice(der, node.contentStart, node.end);
const whole = (der: Bytes, node: Tlv): Bytes => slice(der, node.start, node.end);

function decodeOid(bytes: Bytes): string {
  if (bytes.length === 0) throw new CertificateError("empty OID");
  const first = bytes[0] as number;
  const parts = [Math.min(2, Math.floor(first / 40)), first >= 80 ? first - 80 : first % 40];
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

function oidOf(der: Bytes, node: Tlv | undefined, what: string): string {
  return decodeOid(content(der, expectTag(node, 0x06, what)));
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 §4.1.2.5 fixes. */
function decodeTime(der: Bytes, node: Tlv | undefined): Date {
  if (!node || (node.tag !== 0x17 && node.tag !== 0x18)) throw new CertificateError("malformed certificate: validity");
  const text = new TextDecoder().decode(content(der, node));
  const match = node.tag === 0x17 ? /^(\d{2})(\d{10})Z$/.exec(text) : /^(\d{4})(\d{10})Z$/.exec(text);
  if (!match?.[1] || !match[2]) throw new CertificateError("malformed certificate: validity");
  const year = node.tag === 0x17 ? (Number(match[1]) < 50 ? 2000 : 1900) + Number(match[1]) : Number(match[1]);
  const d = match[2];
  const ms = Date.UTC(
    year,
    Number(d.slice(0, 2)) - 1,
    Number(d.slice(2, 4)),
    Number(d.slice(4, 6)),
    Number(d.slice(6, 8)),
    Number(d.slice(8, 10)),
  );
  if (Number.isNaN(ms)) throw new CertificateError("malformed certificate: validity");
  return new Date(ms);
}

function bitStringBytes(der: Bytes, node: Tlv | undefined, what: string): { unused: number; bytes: Bytes } {
  const bits = expectTag(node, 0x03, what);
  const unused = der[bits.contentStart];
  if (unused === undefined || unused > 7) throw new CertificateError(`malformed certificate: ${what}`);
  return { unused, bytes: slice(der, bits.contentStart + 1, bits.end) };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- Certificates ----

/** Decodes standard (not URL-safe) base64, as x5c and Apple's published roots use. */
export function fromBase64(text: string): Bytes {
  let binary: string;
  try {
    binary = atob(text.replace(/\s+/g, ""));
  } catch {
    throw new CertificateError("certificate is not base64");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function parseCertificate(input: Uint8Array): Certificate {
  const der: Bytes = new Uint8Array(input);
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new CertificateError("not a DER certificate");
  const [tbsNode, algorithmNode, signatureNode, ...extra] = children(der, outer);
  if (extra.length > 0) throw new CertificateError("malformed certificate: trailing fields");
  const tbs = expectTag(tbsNode, 0x30, "tbsCertificate");
  const signatureAlgorithm = oidOf(
    der,
    children(der, expectTag(algorithmNode, 0x30, "signatureAlgorithm"))[0],
    "signatureAlgorithm",
  );
  const signature = bitStringBytes(der, signatureNode, "signature");
  if (signature.unused !== 0) throw new CertificateError("malformed certificate: signature");

  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i++; // [0] version (v3 expected when extensions are present)
  expectTag(fields[i++], 0x02, "serialNumber");
  const innerAlgorithm = oidOf(der, children(der, expectTag(fields[i++], 0x30, "signature"))[0], "signature");
  if (innerAlgorithm !== signatureAlgorithm) throw new CertificateError("signature algorithms disagree");
  const issuer = whole(der, expectTag(fields[i++], 0x30, "issuer"));
  const validity = children(der, expectTag(fields[i++], 0x30, "validity"));
  const subject = whole(der, expectTag(fields[i++], 0x30, "subject"));
  const spkiNode = expectTag(fields[i++], 0x30, "subjectPublicKeyInfo");
  const [keyAlgorithm] = children(der, spkiNode);
  const [keyAlgorithmOid, curveOid] = children(der, expectTag(keyAlgorithm, 0x30, "subjectPublicKeyInfo"));
  const keyType = oidOf(der, keyAlgorithmOid, "subjectPublicKeyInfo");
  const namedCurve =
    keyType === OIDS.ecPublicKey && curveOid?.tag === 0x06 ? (CURVES[oidOf(der, curveOid, "curve")] ?? null) : null;

  const extensions: Extension[] = [];
  for (const field of fields.slice(i)) {
    if (field.tag !== 0xa3) continue; // [1] issuerUniqueID, [2] subjectUniqueID carry nothing we check
    for (const ext of children(der, expectTag(children(der, field)[0], 0x30, "extensions"))) {
      const parts = children(der, expectTag(ext, 0x30, "extension"));
      const oid = oidOf(der, parts[0], "extension");
      let critical = false;
      if (parts.length === 3) {
        const flag = expectTag(parts[1], 0x01, "extension critical flag");
        critical = der[flag.contentStart] === 0xff;
      } else if (parts.length !== 2) {
        throw new CertificateError("malformed certificate: extension");
      }
      if (extensions.some((e) => e.oid === oid)) throw new CertificateError(`extension ${oid} appears twice`);
      extensions.push({
        oid,
        critical,
        value: content(der, expectTag(parts[parts.length - 1], 0x04, "extension value")),
      });
    }
  }

  return {
    der,
    tbs: whole(der, tbs),
    signatureAlgorithm,
    signature: signature.bytes,
    issuer,
    subject,
    notBefore: decodeTime(der, validity[0]),
    notAfter: decodeTime(der, validity[1]),
    spki: whole(der, spkiNode),
    namedCurve,
    extensions,
    basicConstraints: readBasicConstraints(extensions),
    keyUsage: readKeyUsage(extensions),
  };
}

function readBasicConstraints(extensions: Extension[]): Certificate["basicConstraints"] {
  const ext = extensions.find((e) => e.oid === OIDS.basicConstraints);
  if (!ext) return null;
  const der = ext.value;
  const parts = children(der, expectTag(readTlv(der, 0), 0x30, "basicConstraints"));
  let ca = false;
  let pathLength: number | null = null;
  for (const part of parts) {
    if (part.tag === 0x01) ca = der[part.contentStart] === 0xff;
    else if (part.tag === 0x02) {
      pathLength = 0;
      for (let at = part.contentStart; at < part.end; at++) pathLength = pathLength * 256 + (der[at] ?? 0);
    } else throw new CertificateError("malformed certificate: basicConstraints");
  }
  return { ca, pathLength };
}

const KEY_USAGE_BITS: [KeyUsage, number][] = [
  ["digitalSignature", 0],
  ["keyCertSign", 5],
  ["cRLSign", 6],
];

function readKeyUsage(extensions: Extension[]): Set<KeyUsage> | null {
  const ext = extensions.find((e) => e.oid === OIDS.keyUsage);
  if (!ext) return null;
  const { bytes } = bitStringBytes(ext.value, readTlv(ext.value, 0), "keyUsage");
  const usages = new Set<KeyUsage>();
  for (const [usage, bit] of KEY_USAGE_BITS) {
    if (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) usages.add(usage);
  }
  return usages;
}

// ---- Signatures ----

/** The certificate's public key for ECDSA verification (WebCrypto). */
export async function publicKeyOf(certificate: Certificate): Promise<CryptoKey> {
  if (!certificate.namedCurve) throw new CertificateError("only EC P-256/P-384/P-521 keys are supported");
  return crypto.subtle.importKey(
    "spki",
    certificate.spki,
    { name: "ECDSA", namedCurve: certificate.namedCurve },
    true,
    ["verify"],
  );
}

/** X.509 carries ECDSA signatures as DER SEQUENCE { r, s }; WebCrypto takes r ‖ s, each padded to the curve size. */
function rawEcdsaSignature(der: Bytes, size: number): Bytes {
  const sequence = readTlv(der, 0);
  if (sequence.tag !== 0x30 || sequence.end !== der.length) throw new CertificateError("malformed ECDSA signature");
  const parts = children(der, sequence);
  if (parts.length !== 2) throw new CertificateError("malformed ECDSA signature");
  const raw = new Uint8Array(size * 2);
  parts.forEach((part, index) => {
    let value = content(der, expectTag(part, 0x02, "ECDSA signature"));
    while (value.length > size && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw new CertificateError("malformed ECDSA signature");
    raw.set(value, size * (index + 1) - value.length);
  });
  return raw;
}

/** True when `issuer`'s key made `certificate`'s signature. */
export async function isSignedBy(certificate: Certificate, issuer: Certificate): Promise<boolean> {
  const hash = HASHES[certificate.signatureAlgorithm];
  if (!hash || !issuer.namedCurve) return false;
  let signature: Bytes;
  try {
    signature = rawEcdsaSignature(certificate.signature, COORDINATE_BYTES[issuer.namedCurve]);
  } catch {
    return false;
  }
  const key = await publicKeyOf(issuer);
  return crypto.subtle.verify({ name: "ECDSA", hash }, key, signature, certificate.tbs);
}

// ---- Chains ----

export interface ChainPolicy {
  /** When the chain must be valid (every certificate, the anchor included). */
  at: Date;
  /** Exactly how many certificates the chain must hold, when fixed (leaf first, anchor last). */
  length?: number;
  /** Extension OIDs the leaf and the intermediates must carry (e.g. a CA's marker OIDs). */
  leafOids?: string[];
  intermediateOids?: string[];
}

/**
 * Checks `chain` (leaf first) up to one of `anchors`: the last certificate must be an anchor byte for byte (an
 * anchor found in the chain is trusted only because it is configured, never because the chain says so); each
 * certificate is issued by the next (names and signature); all are valid at `policy.at`; every issuer is a CA
 * allowed to sign certificates, within its path length; the leaf is not a CA and may sign; no certificate has
 * a critical extension this validator does not understand; required marker OIDs are present. Returns the
 * leaf's public key.
 */
export async function verifyChain(
  chain: Certificate[],
  anchors: Certificate[],
  policy: ChainPolicy,
): Promise<CryptoKey> {
  if (chain.length < 2) throw new CertificateError("a chain needs a leaf and a trusted root");
  if (policy.length !== undefined && chain.length !== policy.length) {
    throw new CertificateError(`the chain must hold exactly ${policy.length} certificates`);
  }
  const root = chain[chain.length - 1] as Certificate;
  if (!anchors.some((anchor) => equalBytes(anchor.der, root.der))) {
    throw new CertificateError("the chain does not end at a trusted root");
  }
  const at = policy.at.getTime();
  for (const [index, certificate] of chain.entries()) {
    const label = index === 0 ? "leaf" : index === chain.length - 1 ? "root" : "intermediate";
    if (certificate.notBefore.getTime() > at || certificate.notAfter.getTime() < at) {
      throw new CertificateError(`the ${label} certificate is not valid at ${policy.at.toISOString()}`);
    }
    const unknown = certificate.extensions.find((e) => e.critical && !UNDERSTOOD_CRITICAL.has(e.oid));
    if (unknown)
      throw new CertificateError(`the ${label} certificate has an unknown critical extension ${unknown.oid}`);
    if (index === 0) continue;
    const issued = chain[index - 1] as Certificate;
    if (!equalBytes(issued.issuer, certificate.subject)) {
      throw new CertificateError(
        `the ${index === 1 ? "leaf" : "intermediate"} certificate is not issued by the next one`,
      );
    }
    const constraints = certificate.basicConstraints;
    if (!constraints?.ca) throw new CertificateError(`the ${label} certificate is not a CA`);
    if (certificate.keyUsage && !certificate.keyUsage.has("keyCertSign")) {
      throw new CertificateError(`the ${label} certificate may not sign certificates`);
    }
    // Intermediate CAs below this one (the leaf does not count; RFC 5280 §4.2.1.9).
    const below = index - 1;
    if (constraints.pathLength !== null && below > constraints.pathLength) {
      throw new CertificateError(`the ${label} certificate's path length does not allow this chain`);
    }
    if (!(await isSignedBy(issued, certificate))) {
      throw new CertificateError(
        `the ${index === 1 ? "leaf" : "intermediate"} certificate's signature does not verify`,
      );
    }
  }
  const leaf = chain[0] as Certificate;
  if (leaf.basicConstraints?.ca) throw new CertificateError("the leaf certificate is a CA");
  if (leaf.keyUsage && !leaf.keyUsage.has("digitalSignature")) {
    throw new CertificateError("the leaf certificate may not sign data");
  }
  const missing = (certificate: Certificate, oids: string[] | undefined) =>
    (oids ?? []).find((oid) => !certificate.extensions.some((e) => e.oid === oid));
  const leafMissing = missing(leaf, policy.leafOids);
  if (leafMissing) throw new CertificateError(`the leaf certificate lacks ${leafMissing}`);
  for (const intermediate of chain.slice(1, -1)) {
    const absent = missing(intermediate, policy.intermediateOids);
    if (absent) throw new CertificateError(`the intermediate certificate lacks ${absent}`);
  }
  return publicKeyOf(leaf);
}
