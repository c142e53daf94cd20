import { EJSON } from "bson";
import { duplicateKeyError, GatewayError, invalidParameter } from "../../errors";
import type {
  Document,
  Filter,
  FindOneAndDeleteCommand,
  FindOneAndUpdateCommand,
  FindQuery,
  IndexSpec,
  ReplaceCommand,
  SortSpec,
  UpdateCommand,
  UpdateResult,
} from "../types";
import {
  describeIndex,
  ID_INDEX,
  type IndexDefinition,
  IndexRuntime,
  normalizeIndexSpec,
  sameIndexShape,
} from "./indexes";
import {
  applyUpdate,
  buildUpsertDocument,
  buildUpsertReplacement,
  type CompiledFilter,
  compileFilter,
  plainSort,
  projectOwnedDocuments,
  sortDocuments,
  splitTextScoreMeta,
  translateMingoError,
} from "./matcher";
import { textScore } from "./text";
import { cloneValue, encodeValue, isOperatorObject, isPlainObject, withIdFirst } from "./values";

/** Checks the time budget of one operation (maxTimeMS) every few hundred documents. */
export class Deadline {
  private ticks = 0;
  constructor(private readonly at: number) {}

  static after(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  tick(): void {
    if ((++this.ticks & 255) === 0 && Date.now() > this.at) {
      throw new GatewayError("ExecutionTimeout", "operation exceeded time limit");
    }
  }
}

const TEXT_SCORE_FIELD = "\u0000textScore";

interface Selection {
  documents: Document[];
  scores: Map<Document, number> | undefined;
}

/**
 * One collection of the embedded engine. Every method is synchronous, so each operation — including the
 * read-check-write of an update or upsert — runs to completion before any other request is served: that is
 * what makes single-document operations atomic here. Stored documents are immutable: writes replace them.
 */
export class EmbeddedCollection {
  /** Encoded `_id` → stored document, in insertion order (MongoDB's natural order, roughly). */
  readonly documents = new Map<string, Document>();
  readonly indexes = new Map<string, IndexRuntime>();
  /** Documents the last read or write examined (like explain's totalDocsExamined), for tests and diagnosis. */
  lastDocsExamined = 0;
  /**
   * No document can expire under a TTL index before this time, so the sweeper skips the collection until
   * then instead of scanning it every tick. Lowered by every write, recomputed by every sweep.
   */
  private ttlDueAt = Number.POSITIVE_INFINITY;

  constructor(
    readonly database: string,
    readonly name: string,
  ) {}

  // ── reads ────────────────────────────────────────────────────────────────────────────────────────────────

  find(query: FindQuery, deadline: Deadline): Document[] {
    const filter = compileFilter(query.filter);
    const { rest: sortRest, metaKeys: sortMeta } = splitTextScoreMeta(query.sort);
    const { rest: projectionRest, metaKeys: projectionMeta } = splitTextScoreMeta(query.projection);
    if ((sortMeta.length > 0 || projectionMeta.length > 0) && !filter.text) {
      throw invalidParameter("$meta textScore requires a $text query");
    }
    const skip = query.skip ?? 0;
    const sort = plainSort(sortRest);
    const sorted = sort !== undefined || sortMeta.length > 0;
    const selection = this.select(filter, deadline, sorted ? Number.POSITIVE_INFINITY : skip + query.limit);
    let documents = selection.documents;
    if (sorted) documents = this.sortSelection(selection, query.sort ?? {}, sortMeta);
    const page = documents.slice(skip, skip + query.limit).map(cloneValue);
    const projected = projectionRest ? projectOwnedDocuments(page, projectionRest, filter.plain) : page;
    if (projectionMeta.length === 0) return projected;
    return projected.map((document, i) => {
      const score = selection.scores?.get(documents[skip + i] as Document) ?? 0;
      for (const key of projectionMeta) document[key] = score;
      return document;
    });
  }

  /** Sorts matched documents; a `{$meta: "textScore"}` key sorts by score, highest first. */
  private sortSelection(selection: Selection, sort: SortSpec, sortMeta: string[]): Document[] {
    if (sortMeta.length === 0) return sortDocuments(selection.documents, plainSort(sort) ?? {});
    const scores = selection.scores ?? new Map<Document, number>();
    const originals = new Map<Document, Document>();
    const wrapped = selection.documents.map((document) => {
      const wrapper = { ...document, [TEXT_SCORE_FIELD]: scores.get(document) ?? 0 };
      originals.set(wrapper, document);
      return wrapper;
    });
    const spec: Record<string, 1 | -1> = {};
    // A textScore sort key is always descending, whatever its position in the sort.
    for (const [key, direction] of Object.entries(sort)) {
      if (sortMeta.includes(key)) spec[TEXT_SCORE_FIELD] = -1;
      else spec[key] = direction === -1 ? -1 : 1;
    }
    return sortDocuments(wrapped, spec).map((wrapper) => originals.get(wrapper) as Document);
  }

  /** Matching stored documents (not copies: callers clone before handing out or mutating). */
  private select(filter: CompiledFilter, deadline: Deadline, stopAfter: number): Selection {
    const documents: Document[] = [];
    let scores: Map<Document, number> | undefined;
    let textIndex: IndexRuntime | undefined;
    if (filter.text) {
      textIndex = [...this.indexes.values()].find((index) => index.text !== undefined);
      if (!textIndex) throw invalidParameter("text index required for $text query");
      scores = new Map();
    }
    let examined = 0;
    if (stopAfter <= 0) return { documents, scores };
    try {
      for (const document of this.candidates(filter.plain)) {
        deadline.tick();
        examined++;
        if (!filter.matches(document)) continue;
        if (filter.text && textIndex?.text && scores) {
          const score = textScore(document, textIndex.text, filter.text);
          if (score <= 0) continue;
          scores.set(document, score);
        }
        documents.push(document);
        if (documents.length >= stopAfter) break;
      }
    } catch (error) {
      throw translateMingoError(error);
    } finally {
      this.lastDocsExamined = examined;
    }
    return { documents, scores };
  }

  /**
   * Documents that may match: an `_id` equality (or `$in`) or a unique index's full-key equality is a hash
   * lookup; anything else scans. The caller still applies the whole filter to each candidate.
   */
  private *candidates(filter: Filter): Iterable<Document> {
    const ids = equalityValues(filter._id);
    if (ids) {
      const seen = new Set<string>();
      for (const id of ids) {
        const key = encodeValue(id);
        const document = this.documents.get(key);
        if (document && !seen.has(key)) {
          seen.add(key);
          yield document;
        }
      }
      return;
    }
    for (const index of this.indexes.values()) {
      const owners = index.owners;
      if (!owners) continue;
      const values = index.fields.map((field) => equalityValues(filter[field]));
      if (values.some((list) => list?.length !== 1)) continue;
      const tuple = values.map((list) => (list as unknown[])[0]);
      if (!this.lookupIsExact(index, tuple)) continue;
      const owner = owners.get(index.encodeLookup(tuple));
      const document = owner === undefined ? undefined : this.documents.get(owner);
      if (document) yield document;
      return;
    }
    yield* this.documents.values();
  }

  /**
   * A unique index answers an equality query exactly only if every matching document is in it: always for a
   * plain index; for a partial one when the query fixes every field its filter reads and satisfies it.
   */
  private lookupIsExact(index: IndexRuntime, tuple: unknown[]): boolean {
    if (index.definition.sparse || index.definition.partialFilterExpression) {
      const seed: Document = {};
      index.fields.forEach((field, i) => {
        seed[field] = tuple[i];
      });
      const dotted = index.fields.some((field) => field.includes("."));
      if (dotted) return false;
      if (!index.partialFilterFields().every((field) => index.fields.includes(field))) return false;
      return index.coversSeed(seed);
    }
    return true;
  }

  aggregateSource(pipeline: Document[], deadline: Deadline): { input: Iterable<Document>; rest: Document[] } {
    const first = pipeline[0];
    if (first && isPlainObject(first.$match)) {
      const filter = compileFilter(first.$match);
      const { documents } = this.select(filter, deadline, Number.POSITIVE_INFINITY);
      return { input: documents.map(cloneValue), rest: pipeline.slice(1) };
    }
    const all = this.documents.values();
    const withDeadline = function* () {
      for (const document of all) {
        deadline.tick();
        yield cloneValue(document);
      }
    };
    return { input: withDeadline(), rest: pipeline };
  }

  /** Deep copies of every document (for `$lookup` / `$unionWith` into this collection). */
  snapshot(): Document[] {
    return Array.from(this.documents.values(), cloneValue);
  }

  // ── writes ───────────────────────────────────────────────────────────────────────────────────────────────

  insertOne(input: Document): unknown {
    const document = withIdFirst(cloneValue(input));
    validateId(document._id);
    this.store(document, undefined);
    return document._id;
  }

  updateOne(command: UpdateCommand, deadline: Deadline): UpdateResult {
    const filter = compileFilter(command.filter);
    const [target] = this.select(filter, deadline, 1).documents;
    if (target) return { matchedCount: 1, modifiedCount: this.update(target, command.update, filter.plain) ? 1 : 0 };
    if (!command.upsert) return { matchedCount: 0, modifiedCount: 0 };
    return { matchedCount: 0, modifiedCount: 0, upsertedId: this.upsert(command.filter, command.update) };
  }

  updateMany(command: UpdateCommand, deadline: Deadline): UpdateResult {
    const filter = compileFilter(command.filter);
    const { documents } = this.select(filter, deadline, Number.POSITIVE_INFINITY);
    if (documents.length === 0 && command.upsert) {
      return { matchedCount: 0, modifiedCount: 0, upsertedId: this.upsert(command.filter, command.update) };
    }
    let modifiedCount = 0;
    for (const document of documents) {
      deadline.tick();
      if (this.update(document, command.update, filter.plain)) modifiedCount++;
    }
    return { matchedCount: documents.length, modifiedCount };
  }

  replaceOne(command: ReplaceCommand, deadline: Deadline): UpdateResult {
    const filter = compileFilter(command.filter);
    const [target] = this.select(filter, deadline, 1).documents;
    if (target) {
      if (command.replacement._id !== undefined && encodeValue(command.replacement._id) !== encodeValue(target._id)) {
        throw immutableIdError();
      }
      const next = withIdFirst(cloneValue(command.replacement), target._id);
      const modified = encodeDocument(next) !== encodeDocument(target);
      if (modified) this.store(next, target);
      return { matchedCount: 1, modifiedCount: modified ? 1 : 0 };
    }
    if (!command.upsert) return { matchedCount: 0, modifiedCount: 0 };
    const document = buildUpsertReplacement(command.filter, command.replacement);
    validateId(document._id);
    this.store(document, undefined);
    return { matchedCount: 0, modifiedCount: 0, upsertedId: document._id };
  }

  deleteMatching(filter: Filter, deadline: Deadline, limit: number): number {
    const { documents } = this.select(compileFilter(filter), deadline, limit);
    for (const document of documents) this.remove(document);
    return documents.length;
  }

  findOneAndUpdate(command: FindOneAndUpdateCommand, deadline: Deadline): Document | null {
    const filter = compileFilter(command.filter);
    const target = this.first(filter, command.sort, deadline);
    let before: Document | null = null;
    let after: Document;
    if (target) {
      before = target;
      after = this.update(target, command.update, filter.plain) ?? target;
    } else {
      if (!command.upsert) return null;
      const id = this.upsert(command.filter, command.update);
      after = this.documents.get(encodeValue(id)) as Document;
    }
    const chosen = command.returnDocument === "before" ? before : after;
    // The updated document may no longer match the filter (e.g. `{ n: { $lt: 5 } }` with `$inc: { n: 1 }`);
    // MongoDB still returns it, so only the "before" document is projected under the filter.
    const projectionFilter = command.returnDocument === "before" ? filter.plain : {};
    return chosen ? this.projectOne(chosen, command.projection, projectionFilter) : null;
  }

  findOneAndDelete(command: FindOneAndDeleteCommand, deadline: Deadline): Document | null {
    const filter = compileFilter(command.filter);
    const target = this.first(filter, command.sort, deadline);
    if (!target) return null;
    this.remove(target);
    return this.projectOne(target, command.projection, filter.plain);
  }

  private first(filter: CompiledFilter, sort: SortSpec | undefined, deadline: Deadline): Document | undefined {
    const plain = plainSort(splitTextScoreMeta(sort).rest);
    if (!plain) return this.select(filter, deadline, 1).documents[0];
    return sortDocuments(this.select(filter, deadline, Number.POSITIVE_INFINITY).documents, plain)[0];
  }

  private projectOne(document: Document, projection: Document | undefined, filter: Filter): Document {
    const copy = cloneValue(document);
    if (!projection) return copy;
    const { rest } = splitTextScoreMeta(projection);
    return rest ? (projectOwnedDocuments([copy], rest, filter)[0] as Document) : copy;
  }

  /** Applies an update to one stored document; returns the new version, or undefined when nothing changed. */
  private update(stored: Document, update: Document | Document[], condition: Filter): Document | undefined {
    const next = applyUpdate(cloneValue(stored), update, condition, false);
    if (next._id === undefined) next._id = stored._id;
    if (encodeValue(next._id) !== encodeValue(stored._id)) throw immutableIdError();
    const ordered = Object.keys(next)[0] === "_id" ? next : withIdFirst(next);
    if (encodeDocument(ordered) === encodeDocument(stored)) return undefined;
    this.store(ordered, stored);
    return ordered;
  }

  private upsert(filter: Filter, update: Document | Document[]): unknown {
    const document = buildUpsertDocument(filter, update);
    validateId(document._id);
    this.store(document, undefined);
    return document._id;
  }

  /**
   * Writes `next` (replacing `previous` when given) after checking `_id` and every unique index. All checks
   * happen before any change, so a refused write leaves no trace.
   */
  private store(next: Document, previous: Document | undefined): void {
    const idKey = encodeValue(next._id);
    if (!previous && this.documents.has(idKey)) {
      throw this.duplicateKey("_id_", { _id: 1 }, { _id: next._id });
    }
    const planned: [IndexRuntime, string[]][] = [];
    for (const index of this.indexes.values()) {
      const owners = index.owners;
      if (!owners) continue;
      const entries = index.entriesFor(next);
      for (const entry of entries) {
        const owner = owners.get(entry.encoded);
        if (owner !== undefined && owner !== idKey) {
          const keyValue: Document = {};
          index.fields.forEach((field, i) => {
            keyValue[field] = entry.values[i];
          });
          throw this.duplicateKey(index.definition.name, index.keyPattern, keyValue);
        }
      }
      planned.push([index, entries.map((entry) => entry.encoded)]);
    }
    for (const [index, keys] of planned) {
      const owners = index.owners as Map<string, string>;
      if (previous)
        for (const entry of index.entriesFor(previous))
          if (owners.get(entry.encoded) === idKey) owners.delete(entry.encoded);
      for (const key of keys) owners.set(key, idKey);
    }
    this.documents.set(idKey, next);
    this.noteExpiry(next);
  }

  /** The TTL indexes, kept apart so that writes to collections without one pay nothing. */
  private ttlIndexList: IndexRuntime[] = [];

  private ttlIndexes(): IndexRuntime[] {
    return this.ttlIndexList;
  }

  private noteExpiry(document: Document, ttlIndexes: IndexRuntime[] = this.ttlIndexes()): void {
    for (const index of ttlIndexes) this.ttlDueAt = Math.min(this.ttlDueAt, index.expiresAt(document));
  }

  /** Deletes the documents expired at `now` under the TTL indexes (MongoDB's TTL monitor); returns how many. */
  expire(now: number): number {
    if (now < this.ttlDueAt) return 0;
    const ttlIndexes = this.ttlIndexes();
    const expired: Document[] = [];
    let nextDue = Number.POSITIVE_INFINITY;
    for (const document of this.documents.values()) {
      let due = Number.POSITIVE_INFINITY;
      for (const index of ttlIndexes) {
        const at = index.expiresAt(document);
        if (at <= now && index.covers(document)) {
          due = at;
          break;
        }
        if (at > now) due = Math.min(due, at);
      }
      if (due <= now) expired.push(document);
      else nextDue = Math.min(nextDue, due);
    }
    for (const document of expired) this.remove(document);
    this.ttlDueAt = nextDue;
    return expired.length;
  }

  private remove(document: Document): void {
    const idKey = encodeValue(document._id);
    for (const index of this.indexes.values()) {
      const owners = index.owners;
      if (!owners) continue;
      for (const entry of index.entriesFor(document))
        if (owners.get(entry.encoded) === idKey) owners.delete(entry.encoded);
    }
    this.documents.delete(idKey);
  }

  private duplicateKey(indexName: string, keyPattern: Document, keyValue: Document): GatewayError {
    const shown = Object.entries(keyValue)
      .map(([field, value]) => `${field}: ${EJSON.stringify({ v: value } as Document, { relaxed: true }).slice(5, -1)}`)
      .join(", ");
    return duplicateKeyError({
      message: `E11000 duplicate key error collection: ${this.database}.${this.name} index: ${indexName} dup key: { ${shown} }`,
      keyPattern,
      keyValue: cloneValue(keyValue),
    });
  }

  // ── indexes ──────────────────────────────────────────────────────────────────────────────────────────────

  /** Validates every spec first, then builds; returns the names that are new. All or nothing. */
  createIndexes(specs: IndexSpec[]): string[] {
    const definitions = specs.map(normalizeIndexSpec);
    const created: IndexDefinition[] = [];
    for (const definition of definitions) {
      if (definition.name === "_id_") {
        if (Object.keys(definition.key).join() !== "_id" || definition.unique || definition.sparse) {
          throw new GatewayError("IndexConflict", "the _id_ index cannot be changed");
        }
        continue;
      }
      const existing = this.indexes.get(definition.name) ?? created.find((d) => d.name === definition.name);
      if (existing) {
        if (!sameIndexShape(existing instanceof IndexRuntime ? existing.definition : existing, definition)) {
          throw new GatewayError(
            "IndexConflict",
            `An existing index has the same name as the requested index but different options: ${definition.name}`,
          );
        }
        continue;
      }
      const all = [...[...this.indexes.values()].map((index) => index.definition), ...created];
      const twin = all.find((other) => sameIndexShape(other, definition) || sameKeyAndFilter(other, definition));
      if (twin) {
        throw new GatewayError(
          "IndexConflict",
          `An equivalent index already exists with a different name or options: ${twin.name}`,
        );
      }
      if (definition.weights && all.some((other) => other.weights)) {
        throw new GatewayError("IndexConflict", "only one text index per collection is allowed");
      }
      created.push(definition);
    }
    const built = created.map((definition) => this.build(definition));
    for (const index of built) this.indexes.set(index.definition.name, index);
    this.noteExpiryOfAll();
    return created.map((definition) => definition.name);
  }

  /** Builds a new index over the current documents; a unique index over duplicates fails (error 11000). */
  private build(definition: IndexDefinition): IndexRuntime {
    const index = new IndexRuntime(definition);
    const owners = index.owners;
    if (!owners) return index;
    for (const [idKey, document] of this.documents) {
      for (const entry of index.entriesFor(document)) {
        const owner = owners.get(entry.encoded);
        if (owner !== undefined && owner !== idKey) {
          const keyValue: Document = {};
          index.fields.forEach((field, i) => {
            keyValue[field] = entry.values[i];
          });
          throw this.duplicateKey(definition.name, index.keyPattern, keyValue);
        }
        owners.set(entry.encoded, idKey);
      }
    }
    return index;
  }

  listIndexes(): Document[] {
    return [ID_INDEX, ...[...this.indexes.values()].map((index) => describeIndex(index.definition))].map(cloneValue);
  }

  /** Index definitions for persistence. */
  indexDefinitions(): IndexDefinition[] {
    return [...this.indexes.values()].map((index) => index.definition);
  }

  /** Loads persisted indexes and documents (no uniqueness re-check beyond what index building does). */
  restore(definitions: IndexDefinition[], documents: Document[]): void {
    for (const document of documents) this.documents.set(encodeValue(document._id), document);
    for (const definition of definitions) this.indexes.set(definition.name, this.build(definition));
    this.noteExpiryOfAll();
  }

  private noteExpiryOfAll(): void {
    this.ttlIndexList = [...this.indexes.values()].filter((index) => index.isTtl);
    const ttlIndexes = this.ttlIndexes();
    if (ttlIndexes.length === 0) return;
    for (const document of this.documents.values()) this.noteExpiry(document, ttlIndexes);
  }
}

function sameKeyAndFilter(a: IndexDefinition, b: IndexDefinition): boolean {
  const describe = (d: IndexDefinition) =>
    EJSON.stringify({ key: d.key, partial: d.partialFilterExpression ?? null } as Document, { relaxed: false });
  return describe(a) === describe(b);
}

/**
 * Equality values a filter entry pins a field to: `v`, `{$eq: v}` or `{$in: [..]}` of plain values. Null,
 * regular expressions and arrays are left to the scan (they match more than one key form).
 */
function equalityValues(condition: unknown): unknown[] | undefined {
  if (condition === undefined) return undefined;
  if (isOperatorObject(condition)) {
    const operators = Object.keys(condition);
    if (operators.length !== 1) return undefined;
    if (operators[0] === "$eq") return equalityValues(condition.$eq);
    if (operators[0] === "$in" && Array.isArray(condition.$in)) {
      return condition.$in.every(isLookupValue) ? condition.$in : undefined;
    }
    return undefined;
  }
  return isLookupValue(condition) ? [condition] : undefined;
}

function isLookupValue(value: unknown): boolean {
  if (value === null || value === undefined || Array.isArray(value) || value instanceof RegExp) return false;
  return !isOperatorObject(value);
}

function encodeDocument(document: Document): string {
  return encodeValue(document);
}

function validateId(id: unknown): void {
  if (Array.isArray(id)) throw invalidParameter("can't use an array for _id");
  if (id instanceof RegExp) throw invalidParameter("can't use a regex for _id");
  if (id === undefined) throw invalidParameter("_id is required");
}

function immutableIdError(): GatewayError {
  return invalidParameter("Performing an update on the path '_id' would modify the immutable field '_id'");
}
