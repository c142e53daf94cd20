/**
 * Free-form JSON a client sent (analytics event properties, a flag variant's config) as the store keeps it: its
 * JSON text, in a string field. The Data API speaks EJSON, where an object key is never just a key: `{"$date":
 * "…"}` becomes a date (an invalid one poisons every later read), `{"$oid": …}`, `{"$binary": …}`,
 * `{"$numberLong": "NaN"}` become BSON values or refusals, `$where` is refused, dotted and `$`-prefixed keys mean
 * paths and operators, and nesting counts against MongoDB's 100 levels. As a string none of that applies, on
 * either backend, for any wrapper EJSON adds later: what is read back is exactly the JSON that was stored.
 * Nothing queries inside these objects, so nothing is lost by keeping them opaque.
 */

declare const storedJsonBrand: unique symbol;

/** A client's JSON value as stored: its JSON text (build it with `toStoredJson`). */
export type StoredJson = string & { readonly [storedJsonBrand]: true };

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The stored form of a JSON value (a value JSON.parse produced, so JSON.stringify reproduces it). */
export function toStoredJson(value: unknown): StoredJson {
  return JSON.stringify(value) as StoredJson;
}

/** The JSON value back from its stored form. */
export function fromStoredJson(stored: StoredJson): JsonValue {
  return JSON.parse(stored) as JsonValue;
}

/** True when `value` is stored JSON text (a string that parses as JSON). */
export function isStoredJson(value: unknown): value is StoredJson {
  if (typeof value !== "string") return false;
  try {
    JSON.parse(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `value` is plain JSON data: null, booleans, finite numbers, strings, arrays and plain objects only
 * (no Date, ObjectId, Long or other class an EJSON reader makes). Iterative, so any depth is safe.
 */
export function isPlainJsonValue(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node === "string" || typeof node === "boolean") continue;
    if (typeof node === "number") {
      if (!Number.isFinite(node)) return false;
      continue;
    }
    if (Array.isArray(node)) {
      stack.push(...node);
      continue;
    }
    if (typeof node !== "object") return false;
    const proto = Object.getPrototypeOf(node);
    if (proto !== Object.prototype && proto !== null) return false;
    stack.push(...Object.values(node));
  }
  return true;
}
