/**
 * API-key check in constant time: both sides are hashed (SHA-256, so lengths never differ) and compared
 * byte by byte without early exit, against every configured key. Web Crypto only: runs on Node and Deno.
 */
export class ApiKeyVerifier {
  private readonly digests: Promise<Uint8Array[]>;

  constructor(keys: readonly string[]) {
    if (keys.length === 0 || keys.some((key) => key.length === 0)) {
      throw new Error("at least one non-empty API key is required");
    }
    this.digests = Promise.all(keys.map(sha256));
  }

  async verify(candidate: string | null | undefined): Promise<boolean> {
    if (!candidate) return false;
    const digest = await sha256(candidate);
    let matched = false;
    for (const known of await this.digests) matched = constantTimeEqual(known, digest) || matched;
    return matched;
  }
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}
