/**
 * Password hashing that runs in production Workers: PBKDF2-HMAC-SHA-256 through WebCrypto. Production
 * workerd refuses more than 100,000 iterations (local workerd does not), so the cap is enforced here, in
 * every environment, and tests see exactly what production would do.
 *
 * Stored form (PHC string format): `$pbkdf2-sha256$i=<iterations>$<salt b64>$<hash b64>`. It names its own
 * parameters, so they can be raised later: a login whose hash was made with other parameters re-hashes
 * the password with the current ones (`needsRehash`).
 */
export const WORKERS_PBKDF2_MAX_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const encoder = new TextEncoder();

export interface PasswordPolicy {
  iterations: number;
}

export class PasswordHashError extends Error {
  override name = "PasswordHashError";
}

export async function hashPassword(password: string, policy: PasswordPolicy): Promise<string> {
  assertIterations(policy.iterations);
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, policy.iterations);
  return `$pbkdf2-sha256$i=${policy.iterations}$${b64(salt)}$${b64(hash)}`;
}

export async function verifyPassword(
  password: string,
  stored: string,
  policy: PasswordPolicy,
): Promise<{ ok: boolean; needsRehash: boolean }> {
  const parsed = parse(stored);
  if (!parsed) return { ok: false, needsRehash: false };
  const candidate = await derive(password, parsed.salt, parsed.iterations, parsed.hash.length);
  const ok = equalBytes(candidate, parsed.hash);
  return { ok, needsRehash: ok && parsed.iterations !== policy.iterations };
}

/**
 * A hash to compare against when the account does not exist, so a wrong username costs the same time as a
 * wrong password and response timing does not reveal which accounts exist.
 */
export async function burnPasswordCheck(password: string, policy: PasswordPolicy): Promise<void> {
  await derive(password, new Uint8Array(SALT_BYTES), policy.iterations);
}

function allowedIterations(iterations: number): boolean {
  return Number.isInteger(iterations) && iterations >= 10_000 && iterations <= WORKERS_PBKDF2_MAX_ITERATIONS;
}

function assertIterations(iterations: number): void {
  if (!allowedIterations(iterations)) {
    throw new PasswordHashError(
      `PBKDF2 iterations must be between 10,000 and ${WORKERS_PBKDF2_MAX_ITERATIONS} (the production Workers limit)`,
    );
  }
}

async function derive(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
  bytes = HASH_BYTES,
): Promise<Uint8Array> {
  assertIterations(iterations);
  const key = await crypto.subtle.importKey("raw", encoder.encode(password.normalize("NFKC")), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, bytes * 8);
  return new Uint8Array(bits);
}

function parse(stored: string): { iterations: number; salt: Uint8Array<ArrayBuffer>; hash: Uint8Array } | null {
  const match = /^\$pbkdf2-sha256\$i=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/.exec(stored);
  if (!match) return null;
  const iterations = Number(match[1]);
  // A stored hash outside the allowed range does not verify (rather than failing the login with an error).
  if (!allowedIterations(iterations)) return null;
  return { iterations, salt: unb64(match[2]!), hash: unb64(match[3]!) };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function unb64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
