import { calculateObjectSize, EJSON } from "bson";
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
import type { Deadline } from "./deadline";
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
import {
  type Bucket,
  IdOrder,
  IndexTree,
  idKeyOfHex,
  idRange,
  objectIdHex,
  pinnedValues,
  rangePositions,
} from "./planner";
import { TEXT_SCORE_FIELD, textScore } from "./text";
import { cloneValue, encodeValue, isOperatorObject, isPlainObject, withIdFirst } from "./values";

interface Selection {
  documents: Document[];
  scores: Map<Document, number> | undefined;
}

/** Which stored documents a query looks at (see planner.ts); every kind is a superset of the matches. */
type Plan =
  | { kind: "scan"; estimate: number }
  | { kind: "keys"; keys: string[]; estimate: number; satisfied?: string }
  | { kind: "buckets"; buckets: Bucket[]; estimate: number }
  | { kind: "range"; hexes: string[]; from: number; to: number; estimate: number };

/**
 * Told of every change to a collection's stored state, after it happened (the engine's journal, dirty
 * tracking and transaction rollback).
 */
export interface CollectionObserver {
  stored(collection: EmbeddedCollection, next: Document, previous: Document | undefined): void;
  removed(collection: EmbeddedCollection, document: Document): void;
  indexesChanged(collection: EmbeddedCollection): void;
}

export interface EmbeddedCollectionOptions {
  /**
   * Use secondary indexes, `_id` ranges and `_id` order to choose candidates (default). Off, every query
   * other than an `_id` or unique-key equality scans: tests compare both ways.
   */
  planner?: boolean;
}

/** More unique-key lookups than this (an `$in` product) are not worth planning. */
const MAX_KEY_LOOKUPS = 100_000;

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
  /** Insertion sequence of each document (its position in `documents`), to hand candidates out in scan order. */
  private readonly seqs = new Map<string, number>();
  private lastSeq = 0;
  private readonly idOrder = new IdOrder();
  /** Secondary indexes as bucket trees, built the first time a query can use them (see planner.ts). */
  private readonly trees = new Map<string, IndexTree>();
  private readonly planner: boolean;
  observer: CollectionObserver | undefined;

  constructor(
    readonly database: string,
    readonly name: string,
    options: EmbeddedCollectionOptions = {},
  ) {
    this.planner = options.planner ?? true;
  }

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
    const idDirection = sort && sortMeta.length === 0 && !filter.text ? idOnlySort(sort) : undefined;
    if (idDirection !== undefined && this.planner && this.idOrder.usable) {
      const documents = this.selectById(filter, deadline, idDirection, skip + query.limit);
      const page = documents.slice(skip, skip + query.limit).map(cloneValue);
      return projectionRest ? projectOwnedDocuments(page, projectionRest, filter.plain) : page;
    }
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
      assertTextPrefixEquality(textIndex, filter.plain);
      scores = new Map();
    }
    let examined = 0;
    if (stopAfter <= 0) return { documents, scores };
    try {
      const { documents: candidates, satisfied } = this.candidates(filter.plain);
      const matches = residualMatcher(filter, satisfied);
      for (const document of candidates) {
        deadline.tick();
        examined++;
        if (!matches(document)) continue;
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
   * lookup; with the planner, secondary indexes and `_id` ranges narrow the rest (see `plan`); anything else
   * scans. The caller still applies the filter to each candidate, except for `satisfied`: a top-level field
   * the lookup pinned to strings or ObjectIds, which every candidate is known to hold.
   */
  private candidates(filter: Filter): { documents: Iterable<Document>; satisfied?: string } {
    const ids = equalityValues(filter._id);
    if (ids) {
      const documents: Document[] = [];
      const seen = new Set<string>();
      for (const id of ids) {
        const key = encodeValue(id);
        const document = this.documents.get(key);
        if (document && !seen.has(key)) {
          seen.add(key);
          documents.push(document);
        }
      }
      return { documents, ...(ids.every(isKeyScalar) ? { satisfied: "_id" } : {}) };
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
      return { documents: document ? [document] : [] };
    }
    if (!this.planner) return { documents: this.documents.values() };
    const plan = this.plan(filter);
    return { documents: this.inScanOrder(plan), ...(plan.kind === "keys" ? { satisfied: plan.satisfied } : {}) };
  }

  /**
   * The cheapest way to find every document that may match: unique-key lookups for `$in`s, a secondary
   * index's buckets, an `_id` range, or the whole collection (by estimated number of documents to examine).
   */
  private plan(filter: Filter): Plan {
    const total = this.documents.size;
    let best: Plan = { kind: "scan", estimate: total };
    for (const index of this.indexes.values()) {
      const owners = index.owners;
      if (!owners) continue;
      const values = index.fields.map((field) => equalityValues(filter[field]));
      let product = 1;
      for (const list of values) product *= list ? list.length : Number.POSITIVE_INFINITY;
      if (product > MAX_KEY_LOOKUPS || product >= best.estimate) continue;
      const tuples = cartesian(values as unknown[][]);
      if (!tuples.every((tuple) => this.lookupIsExact(index, tuple))) continue;
      const keys: string[] = [];
      for (const tuple of tuples) {
        const owner = owners.get(index.encodeLookup(tuple));
        if (owner !== undefined) keys.push(owner);
      }
      const field = index.fields[0] as string;
      const pinned = index.fields.length === 1 && !field.includes(".") && (values[0] as unknown[]).every(isKeyScalar);
      best = { kind: "keys", keys, estimate: product, ...(pinned ? { satisfied: field } : {}) };
    }
    // A tree is built for at most one index per query: the one whose leading fields the filter pins most
    // (as MongoDB would pick one index), and only when no tree built already pins as many.
    let builtPinned = 0;
    let unbuilt: { index: IndexRuntime; pinned: number } | undefined;
    const usable: IndexTree[] = [];
    for (const index of this.indexes.values()) {
      if (!IndexTree.eligible(index) || (index.owners && index.fields.length === 1)) continue;
      if (filter[index.fields[0] as string] === undefined) continue;
      const tree = this.trees.get(index.definition.name);
      let pinned = 0;
      while (pinned < index.fields.length && pinnedValues(filter[index.fields[pinned] as string])) pinned++;
      if (tree) {
        usable.push(tree);
        builtPinned = Math.max(builtPinned, pinned);
      } else if (pinned > (unbuilt?.pinned ?? 0)) unbuilt = { index, pinned };
    }
    if (unbuilt && unbuilt.pinned > builtPinned) usable.push(this.buildTree(unbuilt.index));
    for (const tree of usable) {
      const buckets = tree.lookup(filter, total);
      if (!buckets) continue;
      let estimate = 0;
      for (const bucket of buckets) estimate += bucket.ids.size;
      if (estimate < best.estimate) best = { kind: "buckets", buckets, estimate };
    }
    const range = this.idOrder.usable ? idRange(filter._id) : undefined;
    if (range) {
      const hexes = this.idOrder.sorted(this.documents);
      const [from, to] = rangePositions(hexes, range);
      if (to - from < best.estimate) best = { kind: "range", hexes, from, to, estimate: to - from };
    }
    return best;
  }

  /** A plan's documents in the order a scan visits them (insertion order), lazily when they already are. */
  private *inScanOrder(plan: Plan): Iterable<Document> {
    if (plan.kind === "scan") {
      yield* this.documents.values();
      return;
    }
    if (plan.kind === "buckets" && plan.buckets.length === 1 && (plan.buckets[0] as Bucket).seqSorted) {
      yield* this.lookupAll((plan.buckets[0] as Bucket).ids);
      return;
    }
    if (plan.kind === "range" && this.idOrder.monotonic) {
      for (let i = plan.from; i < plan.to; i++) {
        const document = this.documents.get(idKeyOfHex(plan.hexes[i] as string));
        if (document) yield document;
      }
      return;
    }
    const keys = [...this.planKeys(plan)];
    const seqs = this.seqs;
    keys.sort((a, b) => (seqs.get(a) as number) - (seqs.get(b) as number));
    yield* this.lookupAll(keys);
  }

  /** The plan's distinct `_id` keys of live documents, in no particular order. */
  private planKeys(plan: Exclude<Plan, { kind: "scan" }>): Set<string> {
    const keys = new Set<string>();
    if (plan.kind === "keys") for (const key of plan.keys) keys.add(key);
    else if (plan.kind === "buckets") for (const bucket of plan.buckets) for (const key of bucket.ids) keys.add(key);
    else
      for (let i = plan.from; i < plan.to; i++) {
        const key = idKeyOfHex(plan.hexes[i] as string);
        if (this.documents.has(key)) keys.add(key);
      }
    return keys;
  }

  private *lookupAll(keys: Iterable<string>): Iterable<Document> {
    for (const key of keys) {
      const document = this.documents.get(key);
      if (document) yield document;
    }
  }

  /**
   * `sort: {_id: ±1}` when every `_id` is an ObjectId: candidates in `_id` order, stopping at `wanted`
   * matches (MongoDB's order: `_id`s are unique, so there are no ties to break).
   */
  private selectById(filter: CompiledFilter, deadline: Deadline, direction: 1 | -1, wanted: number): Document[] {
    const documents: Document[] = [];
    let examined = 0;
    if (wanted <= 0) return documents;
    try {
      const plan = this.idCandidates(filter.plain);
      const matches = residualMatcher(filter, plan.kind === "keys" ? plan.satisfied : undefined);
      for (const document of this.inIdOrder(plan, direction)) {
        deadline.tick();
        examined++;
        if (!matches(document)) continue;
        documents.push(document);
        if (documents.length >= wanted) break;
      }
    } catch (error) {
      throw translateMingoError(error);
    } finally {
      this.lastDocsExamined = examined;
    }
    return documents;
  }

  private idCandidates(filter: Filter): Plan {
    const ids = equalityValues(filter._id);
    if (ids) {
      const keys = ids.map(encodeValue).filter((key) => this.documents.has(key));
      return { kind: "keys", keys, estimate: keys.length, ...(ids.every(isKeyScalar) ? { satisfied: "_id" } : {}) };
    }
    return this.plan(filter);
  }

  private *inIdOrder(plan: Plan, direction: 1 | -1): Iterable<Document> {
    let hexes: string[];
    let from: number;
    let to: number;
    if (plan.kind === "scan" || plan.kind === "range") {
      hexes = plan.kind === "range" ? plan.hexes : this.idOrder.sorted(this.documents);
      from = plan.kind === "range" ? plan.from : 0;
      to = plan.kind === "range" ? plan.to : hexes.length;
      if (direction === 1) {
        for (let i = from; i < to; i++) {
          const document = this.documents.get(idKeyOfHex(hexes[i] as string));
          if (document) yield document;
        }
      } else {
        for (let i = to - 1; i >= from; i--) {
          const document = this.documents.get(idKeyOfHex(hexes[i] as string));
          if (document) yield document;
        }
      }
      return;
    }
    let keys: string[];
    if (plan.kind === "buckets" && plan.buckets.length === 1) {
      const bucket = plan.buckets[0] as Bucket;
      if (!bucket.idSorted) sortBucketById(bucket, this.seqs);
      if (direction === 1) {
        yield* this.lookupAll(bucket.ids);
        return;
      }
      keys = [...bucket.ids];
    } else {
      // Every key is `["o","<hex>"]`: string order is `_id` order.
      keys = [...this.planKeys(plan)].sort();
    }
    if (direction === -1) keys.reverse();
    yield* this.lookupAll(keys);
  }

  private buildTree(index: IndexRuntime): IndexTree {
    const tree = new IndexTree(index);
    for (const [idKey, document] of this.documents) {
      tree.apply(
        tree.plan(undefined, document),
        idKey,
        document,
        this.seqs.get(idKey) as number,
        objectIdHex(document._id),
      );
    }
    this.trees.set(index.definition.name, tree);
    return tree;
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

  /**
   * The documents an aggregation starts from: a leading `$match` is answered like a find (indexes, `$text`),
   * and with `$text` each document carries its score for `{$meta: "textScore"}` (`textScores`).
   */
  aggregateSource(
    pipeline: Document[],
    deadline: Deadline,
  ): { input: Iterable<Document>; rest: Document[]; textScores: boolean } {
    const first = pipeline[0];
    if (first && isPlainObject(first.$match)) {
      const filter = compileFilter(first.$match);
      const { documents, scores } = this.select(filter, deadline, Number.POSITIVE_INFINITY);
      const input = scores
        ? documents.map((document) => ({ ...cloneValue(document), [TEXT_SCORE_FIELD]: scores.get(document) ?? 0 }))
        : documents.map(cloneValue);
      return { input, rest: pipeline.slice(1), textScores: scores !== undefined };
    }
    const all = this.documents.values();
    const withDeadline = function* () {
      for (const document of all) {
        deadline.tick();
        yield cloneValue(document);
      }
    };
    return { input: withDeadline(), rest: pipeline, textScores: false };
  }

  /** Deep copies of every document (for `$lookup` / `$unionWith` into this collection). */
  snapshot(deadline: Deadline): Document[] {
    const copies: Document[] = [];
    for (const document of this.documents.values()) {
      deadline.tick();
      copies.push(cloneValue(document));
    }
    return copies;
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
    assertDocumentSize(next);
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
    const treeChanges = [...this.trees.values()].map((tree) => [tree, tree.plan(previous, next)] as const);
    for (const [index, keys] of planned) {
      const owners = index.owners as Map<string, string>;
      if (previous)
        for (const entry of index.entriesFor(previous))
          if (owners.get(entry.encoded) === idKey) owners.delete(entry.encoded);
      for (const key of keys) owners.set(key, idKey);
    }
    this.documents.set(idKey, next);
    let seq = this.seqs.get(idKey);
    if (previous === undefined || seq === undefined) {
      seq = ++this.lastSeq;
      this.seqs.set(idKey, seq);
      this.idOrder.added(next._id);
    }
    if (treeChanges.length > 0) {
      const hex = objectIdHex(next._id);
      for (const [tree, change] of treeChanges) tree.apply(change, idKey, next, seq, hex);
    }
    this.noteExpiry(next);
    this.observer?.stored(this, next, previous);
  }

  /** Rollback of a `store`: `previous` back in place of `current`, or `current` gone if it was new. */
  revertStore(current: Document, previous: Document | undefined): void {
    if (previous) this.store(previous, current);
    else this.remove(current);
  }

  /** Rollback of a removal. */
  revertRemove(document: Document): void {
    this.store(document, undefined);
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
    for (const tree of this.trees.values()) tree.apply(tree.plan(document, undefined), idKey, undefined, 0, undefined);
    this.documents.delete(idKey);
    this.seqs.delete(idKey);
    this.idOrder.removed(document._id);
    this.observer?.removed(this, document);
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

  /** Drops an index by name (never `_id_`); true when it existed. */
  dropIndex(name: string): boolean {
    if (name === "_id_" || !this.indexes.delete(name)) return false;
    this.noteExpiryOfAll();
    this.observer?.indexesChanged(this);
    return true;
  }

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
    if (built.length > 0) this.observer?.indexesChanged(this);
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
    for (const document of documents) {
      const idKey = encodeValue(document._id);
      this.documents.set(idKey, document);
      this.seqs.set(idKey, ++this.lastSeq);
      this.idOrder.added(document._id);
    }
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

/** Strings and ObjectIds: a hash lookup by one of them finds exactly the documents equal to it (or holding it). */
function isKeyScalar(value: unknown): boolean {
  return typeof value === "string" || objectIdHex(value) !== undefined;
}

/**
 * The filter's test without the condition on `satisfied` (see `candidates`): mingo's `$in` compares each
 * document with every listed value, which a lookup of thousands of keys would pay once per candidate.
 */
function residualMatcher(filter: CompiledFilter, satisfied: string | undefined): (document: Document) => boolean {
  if (satisfied === undefined || !(satisfied in filter.plain)) return filter.matches;
  const { [satisfied]: _pinned, ...rest } = filter.plain;
  return compileFilter(rest).matches;
}

/** `{_id: 1}` or `{_id: -1}` alone: the direction; any other sort: undefined. */
function idOnlySort(sort: Record<string, 1 | -1>): 1 | -1 | undefined {
  const keys = Object.keys(sort);
  return keys.length === 1 && keys[0] === "_id" ? sort._id : undefined;
}

/** Every combination of one value per field (unique-key lookups for `$in`s). */
function cartesian(lists: unknown[][]): unknown[][] {
  let tuples: unknown[][] = [[]];
  for (const list of lists) tuples = tuples.flatMap((tuple) => list.map((value) => [...tuple, value]));
  return tuples;
}

/** Re-orders a bucket's members by `_id` (keys `["o","<hex>"]` sort as their `_id`s); scan order is lost. */
function sortBucketById(bucket: Bucket, seqs: Map<string, number>): void {
  const keys = [...bucket.ids].sort();
  bucket.ids = new Set(keys);
  bucket.idSorted = true;
  bucket.maxHex = keys.length > 0 ? (keys[keys.length - 1] as string).slice(6, 30) : "";
  let seqSorted = true;
  let maxSeq = -1;
  for (const key of keys) {
    const seq = seqs.get(key) as number;
    if (seq < maxSeq) seqSorted = false;
    else maxSeq = seq;
  }
  bucket.seqSorted = seqSorted;
  bucket.maxSeq = Math.max(bucket.maxSeq, maxSeq);
}

function encodeDocument(document: Document): string {
  return encodeValue(document);
}

/** MongoDB's largest document (BSON bytes): a larger insert or update result is refused. */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

export function assertDocumentSize(document: Document): void {
  const bytes = calculateObjectSize(document);
  if (bytes > MAX_DOCUMENT_BYTES) {
    throw invalidParameter(`BSONObjectTooLarge: document of ${bytes} bytes is larger than ${MAX_DOCUMENT_BYTES}`);
  }
}

function validateId(id: unknown): void {
  if (Array.isArray(id)) throw invalidParameter("can't use an array for _id");
  if (id instanceof RegExp) throw invalidParameter("can't use a regex for _id");
  if (id === undefined) throw invalidParameter("_id is required");
}

function immutableIdError(): GatewayError {
  return invalidParameter("Performing an update on the path '_id' would modify the immutable field '_id'");
}

/**
 * MongoDB answers a `$text` query on a compound text index only with an equality on every field before the text
 * keys (the index is partitioned by them): "are equality predicates given for all prefix fields?". The same
 * refusal here, so a query the embedded engine runs is one MongoDB runs too.
 */
function assertTextPrefixEquality(index: IndexRuntime, plain: Filter): void {
  const key = Object.entries(index.definition.key);
  const firstText = key.findIndex(([, direction]) => direction === "text");
  const prefix = key.slice(0, firstText).map(([field]) => field);
  if (prefix.length === 0) return;
  const clauses: Filter[] = [plain, ...(Array.isArray(plain.$and) ? (plain.$and as Filter[]) : [])];
  const isEquality = (value: unknown) =>
    value !== undefined &&
    (!isOperatorObject(value) || (Object.keys(value as Document).length === 1 && "$eq" in (value as Document)));
  for (const field of prefix) {
    if (!clauses.some((clause) => isPlainObject(clause) && isEquality(clause[field]))) {
      throw invalidParameter(
        "failed to use text index to satisfy $text query, if text index is compound, are equality predicates " +
          `given for all prefix fields? (missing: ${field})`,
      );
    }
  }
}
