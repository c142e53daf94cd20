import { BSONRegExp, Double, EJSON, Int32, Long } from "bson";

/**
 * EJSON in and out, "relaxed" like the hosted Data API (plain JSON numbers, `{$oid}`, `{$date}`), with one
 * difference: int64 values outside JavaScript's safe integer range stay `Long` both ways instead of being
 * rounded, so `{"$numberLong": "9007199254740993"}` survives a round trip. Inside the safe range a Long is
 * a plain number, exactly as `EJSON.parse(text, { relaxed: true })` gives.
 */

/** Parses a request body. Throws SyntaxError / BSONError on malformed input. */
export function parseEjson(text: string): unknown {
  return relax(EJSON.parse(text, { relaxed: false }));
}

/** Serializes a response body. */
export function stringifyEjson(value: unknown): string {
  return EJSON.stringify(protectUnsafeLongs(value) as Parameters<typeof EJSON.stringify>[0], { relaxed: true });
}

/** Canonical EJSON wrappers → native values, in place (the parsed tree is ours alone). */
function relax(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = relax(value[i]);
    return value;
  }
  if (value instanceof Int32 || value instanceof Double) return value.valueOf();
  if (value instanceof Long) return isSafe(value) ? value.toNumber() : value;
  if (value instanceof BSONRegExp) return toRegExp(value);
  if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = relax(record[key]);
  }
  return value;
}

/** Relaxed EJSON would print an unsafe Long as a rounded number; write it canonically instead. */
function protectUnsafeLongs(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Long) return isSafe(value) ? value : { $numberLong: value.toString() };
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = protectUnsafeLongs(value[i]);
      if (next !== value[i]) {
        copy ??= value.slice();
        copy[i] = next;
      }
    }
    return copy ?? value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const next = protectUnsafeLongs(record[key]);
    if (next !== record[key]) {
      copy ??= { ...record };
      copy[key] = next;
    }
  }
  return copy ?? value;
}

const MAX_SAFE_LONG = Long.fromNumber(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_LONG = Long.fromNumber(Number.MIN_SAFE_INTEGER);

function isSafe(value: Long): boolean {
  return value.lessThanOrEqual(MAX_SAFE_LONG) && value.greaterThanOrEqual(MIN_SAFE_LONG);
}

/** BSON regex flags that JavaScript also knows; `x` (extended) and `l` (locale) have no JS equivalent. */
function toRegExp(value: BSONRegExp): RegExp {
  const flags = [...value.options].filter((flag) => "imsu".includes(flag)).join("");
  return new RegExp(value.pattern, flags);
}
