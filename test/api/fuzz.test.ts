import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CollectionKey, collections } from "../../src/db/collections";
import { ObjectId } from "../../src/platform/ids";
import type { Collection, Document } from "../../src/platform/mongo/client";
import { type ApiResponse, call } from "../support/api";
import { testConfig, testDeps } from "../support/deps";
import { throughWorkerEntry } from "../support/entry";
import { completedGeneration } from "../support/posts";
import type { Problem } from "../support/problems";
import { type JsonSchema, type Operation, operations, type Parameter } from "../support/spec";
import { crowd, type TestUser, userWithRole } from "../support/users";

// Generated from the served OpenAPI document, so a new route is fuzzed the day it lands. Every operation gets
// each class of bad input its contract has room for, one bad thing per request with everything else valid (real
// objects in the path, required query parameters and Idempotency-Keys present): a wrong Content-Type, malformed
// and non-object JSON, deep nesting, a wrong type or an EJSON- or operator-shaped object in each body field,
// unknown fields, a body over the size cap, bad values in path, query and header parameters, hand-made cursors
// and a correctly signed token whose `sub` is not an ObjectId. Every answer must be a 4xx problem+json, a 400
// naming the field wherever one is at fault, never a 5xx, and nothing may be written. Free-form JSON fields (event
// properties, flag variant configs, any field declared as an open object) then get operator- and EJSON-shaped
// objects, which they keep as plain data, and nesting of 17, 120 and 3,000 levels, which they refuse. The
// values come from a seeded generator, the same on every run.
const SEED = 0x5eed_2026;
const CONCURRENCY = 8;
/**
 * Within a class of generic values each operation gets a seeded sample (so the whole pool is covered across
 * operations). The classes item 8 of the hardening issue names (Content-Type, cursors, deep bodies, oversized
 * bodies, the token) are sent in full to every operation.
 */
const PER_CLASS = { malformed: 2, nonObject: 2, unknownFields: 2, perField: 3, perParam: 3 };
const deps = testDeps();
const config = testConfig();
const bindings = env as unknown as Record<string, string>;

/** mulberry32: a small, fast, seedable PRNG, so the chosen values are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const random = seeded(SEED);
const pick = <T>(values: T[], n: number): T[] => {
  const pool = [...values];
  const out: T[] = [];
  while (out.length < n && pool.length > 0) out.push(...pool.splice(Math.floor(random() * pool.length), 1));
  return out;
};
const hex = (length: number) => Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join("");

type Expectation =
  /** A 400 whose `errors` name this field (or one inside it). */
  | { status: 400 | 415; field: string }
  | { status: 400 | 401 | 413 }
  /** Any 4xx problem. */
  | { status: "4xx" }
  /** Input the contract allows (an upper-case id, an odd but well-formed cursor): anything but a 5xx. */
  | { status: "not 5xx" }
  /** Free-form data the field may keep: a success, or a 400 naming the field, never a 5xx. */
  | { status: "kept or refused"; field: string };

interface Case {
  what: string;
  method: string;
  path: string;
  body?: string;
  /** null: no Content-Type header at all. */
  contentType?: string | null;
  headers?: Record<string, string>;
  token?: string | null;
  expect: Expectation;
}

interface Fixtures {
  tokens: { user: string; admin: string; worker: string; badSubject: string };
  /** Real objects for `{id}` parameters, by the path segment before them (`users`, `posts`, …). */
  ids: Record<string, string>;
  /** The feature flag name every `/v1/admin/flags/{name}` case uses. */
  flagName: string;
}

const OBJECT_ID = "^[0-9a-fA-F]{24}$";
const BAD_IDS = [
  "0123456789abcdef0123456",
  "0123456789abcdef012345678",
  "zzzzzzzzzzzzzzzzzzzzzzzz",
  "%24gt",
  encodeURIComponent('{"$gt":""}'),
  "0123456789abcdef0123456%00",
  "x".repeat(300),
  "%ZZ",
];
const OPERATOR_VALUES: unknown[] = [
  { $gt: "" },
  { $ne: null },
  { $where: "sleep(100)" },
  { $date: "not-a-date" },
  { $oid: "5f0000000000000000000000" },
  { $numberLong: "NaN" },
  { $regularExpression: { pattern: ".*", options: "" } },
];
const nestedArrays = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
const nestedObjects = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;
/** A JSON text written out verbatim where a value goes (so deep nesting and odd numbers can be sent). */
const raw = (text: string) => ({ $raw: text });
const DEEP = raw(nestedArrays(3_000));
/** Longer than the field allows (or than any field allows, when it names no bound). */
const tooLong = (s: JsonSchema) => "x".repeat((s.maxLength ?? 99_999) + 1);

/** Hand-made cursors, none of which this API issued. */
const b64 = (text: string) => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const BAD_CURSORS = [
  b64("{}"),
  b64('{"v":1e300}'),
  b64(`{"id":"${hex(24).toUpperCase()}X"}`),
  b64('{"id":5}'),
  b64(`{"id":"${hex(24)}","v":"x"}`),
  b64(`{"id":"${hex(24)}","v":null}`),
  b64(`{"id":"${hex(24)}","v":1e999}`),
  b64('{"id":{"$gt":""}}'),
  b64(`{"id":"${hex(24)}","extra":1}`),
  b64(`{"id":"${hex(24)}","__proto__":{"v":1}}`),
  b64("not json"),
  b64("[1,2]"),
  b64("null"),
  "not base64 at all!",
  "%ZZ",
  "x".repeat(513),
];
/** Cursors that are well-formed: a list ordered by a number may serve them (an empty page), others refuse them. */
const ODD_BUT_WELL_FORMED_CURSORS = [
  b64(`{"id":"${hex(24)}","v":1e300}`),
  b64(`{"id":"${hex(24)}","v":-1e16}`),
  b64(`{"id":"${hex(24)}"}`),
];

// ---------------------------------------------------------------------------------------------------------------
// What a schema accepts: the parts of JSON Schema the generated document uses, enough to tell a valid value from
// an invalid one and to build a minimal valid body.

const types = (s: JsonSchema) => (Array.isArray(s.type) ? s.type : s.type ? [s.type] : []);
const nullable = (s: JsonSchema) => types(s).includes("null");
const isFreeForm = (s: JsonSchema) => s.type === "object" && s.additionalProperties === true && !s.properties;

function isCalendarDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return false;
  const [y, m, d] = match.slice(1).map(Number) as [number, number, number];
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}
const isDateTime = (value: string) =>
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
  isCalendarDate(value.slice(0, 10)) &&
  Number.isFinite(Date.parse(value));

/** Whether a parameter's value (as the server decodes it) breaks its schema. */
function violates(schema: JsonSchema, value: string): boolean {
  const t = types(schema)[0];
  if (t === "integer" || t === "number") {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (t === "integer" && !Number.isInteger(n))) return true;
    return (schema.minimum !== undefined && n < schema.minimum) || (schema.maximum !== undefined && n > schema.maximum);
  }
  if (schema.enum) return !schema.enum.includes(value);
  if (schema.minLength !== undefined && value.length < schema.minLength) return true;
  if (schema.maxLength !== undefined && value.length > schema.maxLength) return true;
  if (schema.pattern && !new RegExp(schema.pattern).test(value)) return true;
  if (schema.format === "date" && !isCalendarDate(value)) return true;
  if (schema.format === "date-time" && !isDateTime(value)) return true;
  return false;
}

/** The server's view of a raw path or query value: percent-decoded where that works, as sent otherwise. */
function decoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A random string a simple `^[class]{m,n}$` pattern accepts (the shape of every pattern in the document), or null. */
function fromPattern(pattern: string): string | null {
  const match = /^\^\[([^\]]+)\](?:\{(\d+)(?:,(\d*))?\}|(\+)|(\*))\$$/.exec(pattern);
  if (!match) return null;
  const klass = new RegExp(`^[${match[1]}]$`);
  const min = match[2] !== undefined ? Number(match[2]) : match[4] ? 1 : 0;
  const max = match[3] === undefined ? (match[2] !== undefined ? min : 64) : match[3] === "" ? 64 : Number(match[3]);
  const allowed = [..."fuzz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-."].filter((c) =>
    klass.test(c),
  );
  if (allowed.length === 0) return null;
  const length = Math.min(Math.max(min, 8), max);
  // Random, so an id the client picks (a message's clientMessageId) is new in every case and none replays another.
  return Array.from({ length }, () => allowed[Math.floor(Math.random() * allowed.length)]).join("");
}

/** A value the schema accepts, for everything around the one bad thing of a case. */
function validValue(schema: JsonSchema): unknown {
  if (schema.anyOf?.[0] || schema.oneOf?.[0]) return validValue((schema.anyOf ?? schema.oneOf ?? [])[0] as JsonSchema);
  if (schema.enum?.length) return schema.enum[0];
  const t = types(schema).filter((x) => x !== "null")[0];
  switch (t) {
    case "string": {
      if (schema.format === "date-time") return new Date().toISOString();
      if (schema.format === "date") return new Date().toISOString().slice(0, 10);
      if (schema.pattern) return fromPattern(schema.pattern) ?? schema.example;
      const text = typeof schema.example === "string" ? schema.example : "fuzz";
      return text.padEnd(schema.minLength ?? 0, "z").slice(0, schema.maxLength ?? text.length);
    }
    case "integer":
    case "number":
      return Math.max(schema.minimum ?? 0, Math.min(1, schema.maximum ?? 1));
    case "boolean":
      return false;
    case "array":
      return Array.from({ length: schema.minItems ?? 0 }, () => validValue(schema.items ?? {}));
    case "object": {
      if (isFreeForm(schema)) return {};
      const required = schema.required ?? [];
      return Object.fromEntries(required.map((name) => [name, validValue(schema.properties?.[name] ?? {})] as const));
    }
    default:
      return null;
  }
}

/** A minimal valid body of `schema` with `value` at `path` (a numeric segment is an index of the array before it). */
function validBodyWith(schema: JsonSchema, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [segment, ...rest] = path as [string, ...string[]];
  if (/^\d+$/.test(segment)) {
    const list = validValue(schema) as unknown[];
    const item = schema.items ?? {};
    while (list.length <= Number(segment)) list.push(validValue(item));
    list[Number(segment)] = validBodyWith(item, rest, value);
    return list;
  }
  const base = (validValue(schema) ?? {}) as Record<string, unknown>;
  return { ...base, [segment]: validBodyWith(schema.properties?.[segment] ?? {}, rest, value) };
}

/** Every field of a body schema with its path (`events.0.properties`), objects and arrays of objects included. */
function fieldsOf(schema: JsonSchema, prefix: string[] = []): { path: string[]; schema: JsonSchema }[] {
  const out: { path: string[]; schema: JsonSchema }[] = [];
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = [...prefix, name];
    out.push({ path, schema: field });
    if (field.properties) out.push(...fieldsOf(field, path));
    if (field.items?.properties) out.push(...fieldsOf(field.items, [...path, "0"]));
  }
  return out;
}

/** A body with only `value` at `path`: the other required fields are missing too, so the 400 must name this one. */
function bodyAt(path: string[], value: unknown): unknown {
  const build = (i: number): unknown => {
    if (i === path.length) return value;
    const segment = path[i] as string;
    const next = path[i + 1];
    if (next !== undefined && /^\d+$/.test(next)) return { [segment]: [build(i + 2)] };
    return { [segment]: build(i + 1) };
  };
  return build(0);
}

/** JSON text with `raw(...)` placeholders written out verbatim. */
function toJson(value: unknown): string {
  if (value !== null && typeof value === "object" && "$raw" in value) return (value as { $raw: string }).$raw;
  if (Array.isArray(value)) return `[${value.map(toJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The JSON type of a value as sent (`raw(...)` texts by their first character). */
function jsonType(value: unknown): string {
  if (value !== null && typeof value === "object" && "$raw" in value) {
    const text = (value as { $raw: string }).$raw;
    return text.startsWith("[") ? "array" : text.startsWith("{") ? "object" : "number";
  }
  if (value === null) return "null";
  return Array.isArray(value) ? "array" : typeof value;
}

/** Whether a schema's types (or any branch of a union) admit the value's JSON type. */
function typeAdmits(schema: JsonSchema, value: unknown): boolean {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) return branches.some((branch) => typeAdmits(branch, value));
  if (schema.enum) return schema.enum.includes(value);
  const allowed = types(schema);
  if (allowed.length === 0) return true;
  const t = jsonType(value);
  if (t === "number") return allowed.includes("number") || (allowed.includes("integer") && Number.isInteger(value));
  return allowed.includes(t);
}

/** Values no schema of this shape accepts (and no coercion turns into a valid one). */
function badValuesFor(schema: JsonSchema): unknown[] {
  if (schema.anyOf || schema.oneOf) {
    return [12_345, 1.5, true, "x", [], ...OPERATOR_VALUES, DEEP, null].filter((v) => !typeAdmits(schema, v));
  }
  if (isFreeForm(schema)) return [DEEP, raw(nestedObjects(200)), [], "x", 12, ...(nullable(schema) ? [] : [null])];
  const t = types(schema).filter((x) => x !== "null");
  const common = [...OPERATOR_VALUES, DEEP, ...(nullable(schema) ? [] : [null])];
  if (schema.enum) return ["NOPE", 12, [], ...common];
  switch (t[0]) {
    case "string": {
      const shaped = schema.pattern || schema.format ? ["bad value!\u0000"] : [];
      return [12_345, true, [], tooLong(schema), ...shaped, ...common];
    }
    case "integer":
      return ["abc", 1.5, raw("1e400"), [1], "NaN", ...common];
    case "number":
      return ["abc", raw("1e400"), [1], "NaN", ...common];
    case "boolean":
      return ["true", 1, [], ...common];
    case "array":
      return [{}, "x", raw(`[${Array((schema.maxItems ?? 100) + 1).fill('"a"')}]`), ...common];
    case "object":
      return [[], "x", 12, ...common];
    default:
      return [];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The cases of one operation.

const segmentBefore = (op: Operation, name: string) => {
  const segments = op.path.split("/");
  return segments[segments.indexOf(`{${name}}`) - 1] ?? "";
};

/** A valid value for each path parameter: a real object where the fixtures have one, else what the schema allows. */
function pathValue(op: Operation, param: Parameter, fixtures: Fixtures): string {
  const segment = segmentBefore(op, param.name);
  const value =
    segment === "flags" && param.name === "name"
      ? fixtures.flagName
      : param.schema.pattern === OBJECT_ID
        ? (fixtures.ids[segment] ?? hex(24))
        : String(validValue(param.schema));
  if (violates(param.schema, value)) throw new Error(`no valid value for ${op.path} {${param.name}}: ${value}`);
  return encodeURIComponent(value);
}

function concrete(op: Operation, fixtures: Fixtures, overrides: Record<string, string> = {}): string {
  return op.path.replace(/\{([^}]+)\}/g, (_all, name: string) => {
    if (name in overrides) return overrides[name] as string;
    const param = op.parameters.find((p) => p.in === "path" && p.name === name);
    return param ? pathValue(op, param, fixtures) : "fuzz";
  });
}

/** The query string every case of `op` carries: a valid value for each required parameter but `except`. */
function requiredQuery(op: Operation, except?: string, extra?: string): string {
  const parts = op.parameters
    .filter((p) => p.in === "query" && p.required && p.name !== except)
    .map((p) => `${p.name}=${encodeURIComponent(String(validValue(p.schema)))}`);
  if (extra) parts.push(extra);
  return parts.length ? `?${parts.join("&")}` : "";
}

/** Valid headers (a fresh Idempotency-Key per case, so none replays another) but `except`. */
function validHeaders(op: Operation, except?: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const p of op.parameters.filter((p) => p.in === "header" && p.name !== except)) {
    if (p.name.toLowerCase() === "idempotency-key") headers[p.name] = crypto.randomUUID();
    else if (p.required) headers[p.name] = String(validValue(p.schema));
  }
  return headers;
}

function tokenFor(op: Operation, fixtures: Fixtures): string | null {
  if (op.security?.scheme === "workerToken") return fixtures.tokens.worker;
  if (op.roles.length) return fixtures.tokens.admin;
  return op.security ? fixtures.tokens.user : null;
}

function queryValues(param: Parameter): [string, Expectation][] {
  const field = { status: 400 as const, field: param.name };
  if (param.name === "cursor") {
    return [
      ...BAD_CURSORS.map((c): [string, Expectation] => [c, field]),
      ...ODD_BUT_WELL_FORMED_CURSORS.map((c): [string, Expectation] => [c, { status: "not 5xx" }]),
    ];
  }
  const s = param.schema;
  const values: string[] = ["%ZZ", encodeURIComponent('{"$gt":""}'), "x".repeat((s.maxLength ?? 2_000) + 1)];
  if (s.type === "integer" || s.type === "number") {
    values.push("abc", "1.5", "NaN", "Infinity", "1e400", "-1", String((s.maximum ?? 100) + 1));
  } else if (s.enum) values.push("NOPE", "");
  else if (s.pattern === OBJECT_ID) values.push(...BAD_IDS);
  else if (s.format === "date") values.push("2026-13-45", "yesterday", "2026-02-30");
  else if (s.format === "date-time") values.push("not-a-date", "2026-13-45T00:00:00Z");
  else if ((s.minLength ?? 0) > 0) values.push("");
  // A value the schema allows may still be refused (an unknown job name) but must never break anything.
  return values.map((v): [string, Expectation] => [v, violates(s, decoded(v)) ? field : { status: "not 5xx" }]);
}

function casesFor(op: Operation, fixtures: Fixtures): Case[] {
  const token = tokenFor(op, fixtures);
  const cases: Case[] = [];
  const path = concrete(op, fixtures);
  const query = requiredQuery(op);
  /** A case with everything valid but what it sets (an empty JSON object as the body, where there is one). */
  const add = (c: Omit<Case, "method" | "token"> & { token?: string | null }) =>
    cases.push({
      method: op.method,
      token,
      ...(op.body ? { body: "{}", contentType: "application/json" } : {}),
      ...c,
      headers: { ...validHeaders(op), ...c.headers },
    });

  if (op.security?.scheme === "bearer") {
    add({
      what: "a signed token whose sub is not an ObjectId",
      path: path + query,
      token: fixtures.tokens.badSubject,
      expect: { status: 401 },
    });
  }

  for (const param of op.parameters.filter((p) => p.in === "path")) {
    const values =
      param.schema.pattern === OBJECT_ID ? BAD_IDS : ["bad value!", "x".repeat(300), "%24where", "%ZZ", "%00"];
    for (const bad of pick(values, PER_CLASS.perParam)) {
      add({
        what: `path ${param.name}=${bad.slice(0, 30)}`,
        path: concrete(op, fixtures, { [param.name]: bad }) + query,
        expect: violates(param.schema, decoded(bad)) ? { status: 400, field: param.name } : { status: "not 5xx" },
      });
    }
    if (param.schema.pattern === OBJECT_ID) {
      // Valid (ids are normalised), so it must not reach a real object: a fresh id is nobody's.
      add({
        what: `path ${param.name} in upper case`,
        path: concrete(op, fixtures, { [param.name]: hex(24).toUpperCase() }) + query,
        expect: { status: "not 5xx" },
      });
    }
  }

  for (const param of op.parameters.filter((p) => p.in === "query")) {
    // A list under an object (`/v1/posts/{id}/comments`) reads its cursor once the object is found.
    const parent = op.parameters.find((p) => p.in === "path" && p.schema.pattern === OBJECT_ID);
    if (param.name === "cursor" && parent && !fixtures.ids[segmentBefore(op, parent.name)]) {
      throw new Error(`${op.path}: add a real ${segmentBefore(op, parent.name)} to the fixtures (setUp)`);
    }
    const values = queryValues(param);
    for (const [bad, expectation] of param.name === "cursor" ? values : pick(values, PER_CLASS.perParam)) {
      add({
        what: `query ${param.name}=${bad.slice(0, 30)}`,
        path: path + requiredQuery(op, param.name, `${param.name}=${bad}`),
        expect: expectation,
      });
    }
  }
  if (op.parameters.some((p) => p.in === "query" && p.name === "limit")) {
    add({
      what: "a repeated query parameter",
      path: path + requiredQuery(op, undefined, "limit=1&limit=2"),
      expect: { status: "not 5xx" },
    });
  }

  if (op.method === "GET" && (!op.security || op.security.optional)) {
    // Signed-out callers are told apart by it (flags bucketing, view counting): any value is plain data.
    for (const deviceId of pick(["x".repeat(300), '{"$gt":""}', "$where", "a.b.$c", "%00"], 1)) {
      add({
        what: `X-Device-Id ${JSON.stringify(deviceId.slice(0, 20))}`,
        path: path + query,
        headers: { "x-device-id": deviceId },
        token: null,
        expect: { status: "not 5xx" },
      });
    }
  }

  for (const param of op.parameters.filter((p) => p.in === "header")) {
    for (const bad of ["x".repeat(256), "tab\tkey", "line\u000bfeed"]) {
      add({
        what: `header ${param.name}=${JSON.stringify(bad.slice(0, 20))}`,
        path: path + query,
        headers: { ...validHeaders(op, param.name), [param.name]: bad },
        expect: violates(param.schema, bad) ? { status: 400, field: param.name } : { status: "not 5xx" },
      });
    }
  }

  if (op.body) {
    const at = path + query;
    for (const contentType of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=fz",
      "application/xml",
      "text/json",
      null,
    ]) {
      add({
        what: `Content-Type ${contentType}`,
        path: at,
        body: "{}",
        contentType,
        expect: { status: 415, field: "content-type" },
      });
    }
    const json = (what: string, body: string, expectation: Expectation) =>
      add({ what, path: at, body, contentType: "application/json", expect: expectation });
    for (const text of pick(
      ["{", '{"a":', "nul", "[1,]", '{"a" 1}', "{}garbage", '"open', '{"a":1}}', "\uFEFF", ""],
      PER_CLASS.malformed,
    )) {
      json(`malformed JSON ${JSON.stringify(text)}`, text, { status: 400 });
    }
    for (const text of pick(["[]", "1", '"s"', "null", "true", "[{}]"], PER_CLASS.nonObject)) {
      json(`a JSON ${text} instead of an object`, text, { status: 400 });
    }
    json("a body of 120 nested objects", nestedObjects(120), { status: 400 });
    json("a body of 3,000 nested arrays", nestedArrays(3_000), { status: 400 });
    json("a body of 3,000 nested objects", nestedObjects(3_000), { status: 400 });
    json("a body over the size cap", `{"pad":"${"x".repeat(config.http.maxBodyBytes)}"}`, { status: 413 });
    const union = Boolean(op.body.anyOf || op.body.oneOf);
    for (const key of pick(
      ["__proto__", "constructor", "$where", "$set", "a.b", "unexpectedField"],
      PER_CLASS.unknownFields,
    )) {
      json(
        `unknown field ${key}`,
        `{${JSON.stringify(key)}:{"x":1}}`,
        union ? { status: 400 } : { status: 400, field: key },
      );
    }
    const fields = union ? (op.body.anyOf ?? op.body.oneOf ?? []).flatMap((s) => fieldsOf(s)) : fieldsOf(op.body);
    for (const field of fields) {
      const name = field.path.join(".");
      for (const bad of pick(badValuesFor(field.schema), PER_CLASS.perField)) {
        json(
          `${name} = ${toJson(bad).slice(0, 40)}`,
          toJson(bodyAt(field.path, bad)),
          union ? { status: 400 } : { status: 400, field: name },
        );
      }
    }
  }
  // A webhook checks its sender's signature before it reads anything: every unsigned case is refused (a 4xx,
  // whichever comes first), never a 5xx, and changes nothing.
  if (op.signedBy) return cases.map((c) => ({ ...c, expect: { status: "4xx" } }));
  return cases;
}

// ---------------------------------------------------------------------------------------------------------------
// Sending and judging.

/** What is wrong with an answer to a case, or null. */
function violation(c: Case, res: ApiResponse): string | null {
  if (res.status >= 500) return `answered ${res.status}: ${res.text.slice(0, 160)}`;
  if (c.expect.status === "not 5xx") return null;
  if (c.expect.status === "kept or refused" && res.status < 300) return null;
  if (res.status < 400) return `accepted it (${res.status})`;
  if (!res.headers.get("content-type")?.includes("application/problem+json")) return `not problem+json (${res.status})`;
  const problem = res.body as Problem;
  if (problem.status !== res.status || !problem.code || !problem.requestId)
    return `a malformed problem: ${res.text.slice(0, 120)}`;
  if (c.expect.status === "4xx") return null;
  const expected = c.expect.status === "kept or refused" ? 400 : c.expect.status;
  if (res.status !== expected) {
    return `answered ${res.status} ${problem.code} instead of ${expected}: ${problem.detail ?? ""}`;
  }
  if ("field" in c.expect) {
    const field = c.expect.field.toLowerCase();
    const named = (problem.errors ?? []).map((e) => e.path.toLowerCase());
    if (!named.some((p) => p === field || p.startsWith(`${field}.`))) {
      return `a ${res.status} naming ${named.join(", ") || "nothing"} instead of ${c.expect.field}`;
    }
  }
  return null;
}

async function inPool<T, R>(items: T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(size, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await run(items[index] as T);
      }
    }),
  );
  return results;
}

async function send(c: Case): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.contentType) headers["content-type"] = c.contentType;
  try {
    return await call(
      c.method,
      c.path,
      { ...(c.body === undefined ? {} : { rawBody: c.body }), headers, ...(c.token ? { token: c.token } : {}) },
      throughWorkerEntry,
    );
  } catch (error) {
    return { status: 599, headers: new Headers(), body: undefined, text: `the request failed: ${String(error)}` };
  }
}

/** Sends the cases (CONCURRENCY at a time) and lists each one answered against its expectation. */
async function wrongAnswers(cases: Case[]): Promise<string[]> {
  const answers = await inPool(cases, CONCURRENCY, send);
  return cases.flatMap((c, i) => {
    const problem = violation(c, answers[i] as ApiResponse);
    return problem ? [`${c.what}: ${problem}`] : [];
  });
}

/** The fields by which a document names the account it belongs to or is about (ids or their hex). */
const OWNER_FIELDS = [
  "userId",
  "viewerId",
  "senderId",
  "ownerId",
  "reporterId",
  "followerId",
  "followingId",
  "targetId",
  "targetUserId",
  "referrerId",
  "referredUserId",
  "actorId",
  "performedBy",
  "memberIds",
  "members.userId",
];

/**
 * Everything the fuzzing accounts own or touch, in every collection (a new one is covered the day it lands),
 * and the flags it names: what the API stores must be byte-for-byte the same before and after.
 */
async function footprint(actors: TestUser[], flagNames: string[]): Promise<Record<string, string>> {
  const ids: unknown[] = actors.flatMap((a) => [new ObjectId(a.id), a.id]);
  const mine = { $or: OWNER_FIELDS.map((field) => ({ [field]: { $in: ids } })) };
  const entries = await Promise.all(
    (Object.keys(collections) as CollectionKey[]).map(async (key) => {
      const filter =
        key === "users" ? { _id: { $in: ids } } : key === "featureFlags" ? { name: { $in: flagNames } } : mine;
      const docs = await (deps.db[key] as unknown as Collection<Document>).find(filter, {
        sort: { _id: 1 },
        limit: 10_000,
      });
      return [key, JSON.stringify(docs)] as const;
    }),
  );
  return Object.fromEntries(entries);
}

async function setUp(): Promise<{ fixtures: Fixtures; actors: TestUser[] }> {
  const [user] = (await crowd(1)) as [TestUser];
  const admin = await userWithRole("admin");
  const generationId = await completedGeneration(user);
  const post = await call<{ id: string }>("POST", "/v1/posts", { token: user.accessToken, body: { generationId } });
  if (post.status !== 201) throw new Error(`post failed: ${post.status} ${post.text}`);
  const comment = await call<{ id: string }>("POST", `/v1/posts/${post.body.id}/comments`, {
    token: user.accessToken,
    body: { content: "a comment to fuzz around" },
  });
  if (comment.status !== 201) throw new Error(`comment failed: ${comment.status} ${comment.text}`);
  const [story, entry] = await Promise.all([
    completedGeneration(user).then((id) =>
      call<{ id: string }>("POST", "/v1/stories", { token: user.accessToken, body: { generationId: id } }),
    ),
    call<{ id: string }>("POST", "/v1/journal/entries", {
      token: user.accessToken,
      body: { date: new Date().toISOString().slice(0, 10), title: "fuzz", content: "an entry to fuzz around" },
    }),
  ]);
  for (const made of [story, entry]) {
    if (made.status !== 201) throw new Error(`fixture failed: ${made.status} ${made.text}`);
  }
  const badSubject = await new SignJWT({ sid: new ObjectId().toHexString(), role: "admin", tier: "premium" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("not-an-object-id")
    .setIssuer(bindings.JWT_ISSUER ?? "circle-api")
    .setAudience(bindings.JWT_AUDIENCE ?? "circle-app")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(bindings.JWT_SECRET));
  const fixtures: Fixtures = {
    tokens: { user: user.accessToken, admin: admin.accessToken, worker: bindings.GPU_WORKER_TOKEN ?? "", badSubject },
    ids: {
      users: user.id,
      posts: post.body.id,
      comments: comment.body.id,
      generations: generationId,
      stories: story.body.id,
      entries: entry.body.id,
    },
    flagName: `fuzz-${hex(12)}`,
  };
  return { fixtures, actors: [user, admin] };
}

// ---------------------------------------------------------------------------------------------------------------

const ops = await operations();
let fixtures: Fixtures;
let actors: TestUser[] = [];

beforeAll(async () => {
  ({ fixtures, actors } = await setUp());
});

describe("fuzzing every operation in /openapi.json", () => {
  let before: Record<string, string>;
  const sent = { requests: 0, cursors: 0, contentTypes: 0 };

  beforeAll(async () => {
    before = await footprint(actors, [fixtures.flagName]);
  });

  it("covers the API's operations", () => {
    expect(ops.length).toBeGreaterThan(80);
    expect(ops.filter((op) => op.body).length).toBeGreaterThan(25);
  });

  it("finds values to refuse for every body field (a field that takes anything is not fuzzed)", () => {
    const unconstrained = ops.flatMap((op) =>
      (op.body ? [op.body, ...(op.body.anyOf ?? op.body.oneOf ?? [])] : []).flatMap((body) =>
        fieldsOf(body)
          .filter((f) => badValuesFor(f.schema).length === 0)
          .map((f) => `${op.method} ${op.path} ${f.path.join(".")}`),
      ),
    );
    expect(unconstrained).toEqual([]);
  });

  for (const op of ops) {
    it(`${op.method} ${op.path} answers bad input with a 4xx problem`, async () => {
      const cases = casesFor(op, fixtures);
      sent.requests += cases.length;
      sent.cursors += cases.filter((c) => c.what.startsWith("query cursor=")).length;
      sent.contentTypes += cases.filter((c) => c.what.startsWith("Content-Type")).length;
      expect(await wrongAnswers(cases)).toEqual([]);
    });
  }

  it("wrote nothing anywhere", async () => {
    const paginated = ops.filter((op) => op.parameters.some((p) => p.in === "query" && p.name === "cursor"));
    expect(sent.cursors).toBe(paginated.length * (BAD_CURSORS.length + ODD_BUT_WELL_FORMED_CURSORS.length));
    expect(sent.contentTypes).toBe(ops.filter((op) => op.body).length * 6);
    expect(sent.requests).toBeGreaterThan(1_000);
    expect(await footprint(actors, [fixtures.flagName])).toEqual(before);
  });
});

/** Every free-form JSON field of an operation's body (an object with any keys), with its path. */
function freeFormFields(schema: JsonSchema, prefix: string[] = []): string[][] {
  const here = isFreeForm(schema) ? [prefix] : [];
  const inside = Object.entries(schema.properties ?? {}).flatMap(([name, field]) =>
    freeFormFields(field, [...prefix, name]),
  );
  const items = schema.items ? freeFormFields(schema.items, [...prefix, "0"]) : [];
  return [...here, ...inside, ...items];
}

/** Objects a free-form field keeps as the JSON it was sent: nothing in them is an operator or a BSON type. */
const PLAIN_DATA: [string, string][] = [
  ["a $where key", '{"$where":"sleep(1000)"}'],
  ["{$numberLong: NaN}", '{"$numberLong":"NaN"}'],
  ["an invalid $date", '{"d":{"$date":"not-a-date"}}'],
  ["$oid, $binary, $code and $regularExpression", EJSON_WRAPPERS()],
  ["operators and dotted keys", '{"$set":{"role":"admin"},"a.b":{"$inc":{"n":1}},"$":1}'],
  ["a __proto__ key", '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}'],
  ["extreme numbers", '{"big":1e308,"tiny":5e-324,"negZero":-0,"long":123456789012345678901234567890}'],
  ["16 levels of nesting", nestedObjects(16)],
];
/** Objects no free-form field may take: 400 naming the field, nothing written. */
const REFUSED: [string, string][] = [
  ["17 levels of nesting", nestedObjects(17)],
  ["120 levels of objects", nestedObjects(120)],
  ["120 levels of arrays", `{"a":${nestedArrays(119)}}`],
  ["3,000 levels of arrays", `{"a":${nestedArrays(2_999)}}`],
  ["3,000 levels of objects", nestedObjects(3_000)],
  ["an array", "[1,2]"],
  ["a string", '"x"'],
  ["null", "null"],
];

function EJSON_WRAPPERS(): string {
  return JSON.stringify({
    o: { $oid: "not-an-oid" },
    b: { $binary: { base64: "!!", subType: "zz" } },
    c: { $code: "while(true){}" },
    r: { $regularExpression: { pattern: "(", options: "zz" } },
    n: { $numberDecimal: "NaN" },
  });
}

describe("free-form JSON fields", () => {
  afterAll(async () => {
    const admin = fixtures.tokens.admin;
    await Promise.all(flagNames.map((name) => call("DELETE", `/v1/admin/flags/${name}`, { token: admin })));
  });
  const targets = ops.flatMap((op) =>
    op.body ? freeFormFields(op.body).map((path) => ({ op, path, name: path.join(".") })) : [],
  );
  const flagNames: string[] = [];

  it("are found in the document: event properties and flag variant configs at least", () => {
    expect(targets.map((t) => `${t.op.method} ${t.op.path} ${t.name}`)).toEqual(
      expect.arrayContaining(["POST /v1/events events.0.properties", "PUT /v1/admin/flags/{name} variants.0.config"]),
    );
  });

  for (const { op, path, name } of targets) {
    /** A valid request with `value` (JSON text) in the free-form field; a flag gets a name of its own. */
    const request = (what: string, value: string, expectation: Expectation): Case => {
      const flagName = `fuzz-${hex(12)}`;
      flagNames.push(flagName);
      const fixturesHere = { ...fixtures, flagName };
      return {
        what,
        method: op.method,
        path: concrete(op, fixturesHere) + requiredQuery(op),
        body: toJson(validBodyWith(op.body as JsonSchema, path, raw(value))),
        contentType: "application/json",
        headers: validHeaders(op),
        token: tokenFor(op, fixtures),
        expect: expectation,
      };
    };

    it(`${op.method} ${op.path} ${name}: refuses nesting past its limit and non-objects, writing nothing`, async () => {
      const valid = request("a valid request", '{"ok":true}', { status: "not 5xx" });
      const before = await footprint(actors, flagNames);
      const answer = await send(valid);
      expect(answer.status, `a valid ${op.method} ${op.path} (see validBodyWith): ${answer.text}`).toBeLessThan(300);
      const written = await footprint(actors, flagNames);
      // The footprint sees what this operation writes, so the check below can fail.
      expect(written).not.toEqual(before);
      const cases = REFUSED.map(([what, value]) => request(what, value, { status: 400, field: name }));
      expect(await wrongAnswers(cases)).toEqual([]);
      expect(await footprint(actors, flagNames)).toEqual(written);
    });

    it(`${op.method} ${op.path} ${name}: keeps operator- and EJSON-shaped objects as plain data`, async () => {
      const cases = PLAIN_DATA.map(([what, value]) => request(what, value, { status: "kept or refused", field: name }));
      expect(await wrongAnswers(cases)).toEqual([]);
    });
  }
});
