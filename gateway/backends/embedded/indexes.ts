import { EJSON } from "bson";
import { GatewayError, invalidParameter } from "../../errors";
import type { Document, IndexSpec } from "../types";
import { compileFilter, withMingo } from "./matcher";
import type { TextIndexFields } from "./text";
import { encodeTuple, encodeValue, indexValuesAtPath } from "./values";

/** A validated index definition, as persisted and as compared for idempotent re-creation. */
export interface IndexDefinition {
  name: string;
  /** Key pattern in declaration order, e.g. `{ postId: 1, userId: 1 }` or `{ prompt: "text" }`. */
  key: Record<string, 1 | -1 | "text">;
  unique: boolean;
  sparse: boolean;
  expireAfterSeconds?: number;
  partialFilterExpression?: Document;
  /** Text indexes: field → weight. */
  weights?: Record<string, number>;
  defaultLanguage?: string;
}

/** MongoDB's default index name: `field_1_other_-1`. */
export function defaultIndexName(key: IndexSpec["key"]): string {
  return Object.entries(key)
    .map(([field, direction]) => `${field}_${direction}`)
    .join("_");
}

export function normalizeIndexSpec(spec: IndexSpec): IndexDefinition {
  const fields = Object.entries(spec.key);
  if (fields.length === 0) throw invalidParameter("index key must have at least one field");
  const textFields = fields.filter(([, direction]) => direction === "text").map(([field]) => field);
  if (spec.unique && textFields.length > 0) throw invalidParameter("a text index cannot be unique");
  if (spec.expireAfterSeconds !== undefined && textFields.length > 0) {
    throw invalidParameter("a text index cannot have expireAfterSeconds");
  }
  const definition: IndexDefinition = {
    name: spec.name ?? defaultIndexName(spec.key),
    key: { ...spec.key },
    unique: spec.unique === true,
    sparse: spec.sparse === true,
  };
  if (spec.expireAfterSeconds !== undefined) definition.expireAfterSeconds = spec.expireAfterSeconds;
  if (spec.partialFilterExpression !== undefined) {
    if (spec.sparse) throw invalidParameter("cannot mix partialFilterExpression and sparse");
    definition.partialFilterExpression = spec.partialFilterExpression;
  }
  if (textFields.length > 0) {
    const weights: Record<string, number> = {};
    for (const field of textFields) weights[field] = spec.weights?.[field] ?? 1;
    for (const [field, weight] of Object.entries(spec.weights ?? {})) weights[field] = weight;
    definition.weights = weights;
    definition.defaultLanguage = spec.default_language ?? "english";
  }
  return definition;
}

/** Same index apart from its name (MongoDB refuses a second name for an identical index). */
export function sameIndexShape(a: IndexDefinition, b: IndexDefinition): boolean {
  const shape = (d: IndexDefinition) =>
    EJSON.stringify(
      {
        key: d.weights ? { text: Object.keys(d.weights).sort() } : d.key,
        unique: d.unique,
        sparse: d.sparse,
        ttl: d.expireAfterSeconds ?? null,
        partial: d.partialFilterExpression ?? null,
        weights: d.weights ?? null,
        language: d.defaultLanguage ?? null,
      },
      { relaxed: false },
    );
  return shape(a) === shape(b);
}

/** The `listIndexes` entry, in MongoDB's format (text indexes use its `_fts`/`_ftsx` key form). */
export function describeIndex(definition: IndexDefinition): Document {
  const out: Document = { v: 2 };
  if (definition.weights) {
    const key: Document = {};
    let textPlaced = false;
    for (const [field, direction] of Object.entries(definition.key)) {
      if (direction !== "text") key[field] = direction;
      else if (!textPlaced) {
        key._fts = "text";
        key._ftsx = 1;
        textPlaced = true;
      }
    }
    out.key = key;
  } else out.key = { ...definition.key };
  out.name = definition.name;
  if (definition.unique) out.unique = true;
  if (definition.sparse) out.sparse = true;
  if (definition.expireAfterSeconds !== undefined) out.expireAfterSeconds = definition.expireAfterSeconds;
  if (definition.partialFilterExpression) out.partialFilterExpression = definition.partialFilterExpression;
  if (definition.weights) {
    out.weights = definition.weights;
    out.default_language = definition.defaultLanguage;
    out.language_override = "language";
    out.textIndexVersion = 3;
  }
  return out;
}

export const ID_INDEX: Document = { v: 2, key: { _id: 1 }, name: "_id_" };

/** One key a document contributes to a unique index: the encoded tuple and the values behind it. */
export interface IndexEntry {
  readonly encoded: string;
  readonly values: readonly unknown[];
}

const MAX_KEYS_PER_DOCUMENT = 10_000;

/** An index at run time: its definition plus, for unique indexes, the hash map key → owner `_id` key. */
export class IndexRuntime {
  readonly paths: string[][];
  readonly fields: string[];
  /** Unique indexes only: encoded key tuple → encoded `_id` of the document holding it. */
  readonly owners: Map<string, string> | undefined;
  readonly text: TextIndexFields | undefined;
  private readonly partial: ((document: Document) => boolean) | undefined;

  constructor(readonly definition: IndexDefinition) {
    this.fields = Object.keys(definition.key).filter((field) => definition.key[field] !== "text");
    this.paths = this.fields.map((field) => field.split("."));
    this.owners = definition.unique ? new Map() : undefined;
    this.text = definition.weights ? { weights: new Map(Object.entries(definition.weights)) } : undefined;
    if (definition.partialFilterExpression) {
      const compiled = compileFilter(definition.partialFilterExpression);
      this.partial = (document) => withMingo(() => compiled.matches(document));
    }
  }

  get keyPattern(): Document {
    return { ...this.definition.key };
  }

  /** Whether the document is in the index at all (partial filter, sparse). */
  covers(document: Document): boolean {
    if (this.partial && !this.partial(document)) return false;
    if (this.definition.sparse) {
      return this.paths.some((path) => indexValuesAtPath(document, path).some((value) => value !== undefined));
    }
    return true;
  }

  /** Every key the document holds in this index (several when a field is an array), deduplicated. */
  entriesFor(document: Document): IndexEntry[] {
    if (!this.covers(document)) return [];
    let tuples: unknown[][] = [[]];
    for (const path of this.paths) {
      const values = indexValuesAtPath(document, path).map((value) => (value === undefined ? null : value));
      const next: unknown[][] = [];
      for (const tuple of tuples) for (const value of values) next.push([...tuple, value]);
      tuples = next;
      if (tuples.length > MAX_KEYS_PER_DOCUMENT) {
        throw new GatewayError("InvalidParameter", `document has too many keys for index ${this.definition.name}`);
      }
    }
    const seen = new Map<string, IndexEntry>();
    for (const values of tuples) {
      const encoded = this.paths.length === 1 ? encodeValue(values[0]) : encodeTuple(values);
      if (!seen.has(encoded)) seen.set(encoded, { encoded, values });
    }
    return [...seen.values()];
  }

  /** The encoded key for a lookup by exact field values (same encoding as `entriesFor`). */
  encodeLookup(values: readonly unknown[]): string {
    return this.paths.length === 1 ? encodeValue(values[0]) : encodeTuple(values);
  }

  /** Top-level fields the partial filter reads (a lookup through a partial index needs them all fixed). */
  partialFilterFields(): string[] {
    const fields = new Set<string>();
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
        for (const [key, inner] of Object.entries(value)) {
          if (key.startsWith("$")) walk(inner);
          else fields.add(key);
        }
      }
    };
    walk(this.definition.partialFilterExpression);
    return [...fields];
  }

  /** TTL indexes (single field, not text) only: when the document expires, or Infinity if it never does. */
  expiresAt(document: Document): number {
    const seconds = this.definition.expireAfterSeconds;
    if (seconds === undefined || this.paths.length !== 1 || this.text) return Number.POSITIVE_INFINITY;
    let earliest = Number.POSITIVE_INFINITY;
    // Like MongoDB: only Date values count, and an array expires with its earliest Date.
    for (const value of indexValuesAtPath(document, this.paths[0] as string[])) {
      if (value instanceof Date) earliest = Math.min(earliest, value.getTime());
    }
    return earliest + seconds * 1000;
  }

  get isTtl(): boolean {
    return this.definition.expireAfterSeconds !== undefined && this.paths.length === 1 && !this.text;
  }

  /** Whether a document built from equality values alone would be in the index. */
  coversSeed(seed: Document): boolean {
    return this.covers(seed);
  }
}
