/**
 * Unleash-compatible bucketing, so a flag's rollout matches what Unleash SDKs would decide for the same ids:
 * normalizedValue(id, groupId, normalizer, seed) = murmur3_x86_32("{groupId}:{id}", seed) % normalizer + 1.
 * Gradual rollout enables when normalizedValue(…, 100, 0) ≤ rollout; variants use seed 86028157 over the
 * total weight.
 */
export const VARIANT_SEED = 86028157;

export function murmur3x86_32(text: string, seed = 0): number {
  const data = new TextEncoder().encode(text);
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = data.length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  let k = 0;
  switch (data.length & 3) {
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: murmur3's tail deliberately falls through
    case 3:
      k ^= data[blocks + 2]! << 16;
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: see above
    case 2:
      k ^= data[blocks + 1]! << 8;
    case 1:
      k ^= data[blocks]!;
      k = Math.imul(k, c1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, c2);
      h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function normalizedValue(id: string, groupId: string, normalizer = 100, seed = 0): number {
  return (murmur3x86_32(`${groupId}:${id}`, seed) % normalizer) + 1;
}

/** Gradual rollout: is this id within the first `percentage` percent of the flag's buckets? */
export function inRollout(id: string, flagName: string, percentage: number): boolean {
  if (percentage <= 0) return false;
  if (percentage >= 100) return true;
  return normalizedValue(id, flagName) <= percentage;
}

export interface WeightedVariant<T> {
  name: string;
  weight: number;
  config: T;
}

/** Picks a variant by weight, deterministically per id (Unleash's variant seed, total weight as normalizer). */
export function pickVariant<T>(
  id: string,
  flagName: string,
  variants: WeightedVariant<T>[],
): WeightedVariant<T> | null {
  const total = variants.reduce((sum, v) => sum + Math.max(0, v.weight), 0);
  if (total <= 0) return null;
  const target = normalizedValue(id, flagName, total, VARIANT_SEED);
  let acc = 0;
  for (const v of variants) {
    acc += Math.max(0, v.weight);
    if (target <= acc) return v;
  }
  return null;
}
