import { ObjectId } from "../object-id";
import type { Collection, Filter, Projection } from "./client";

/**
 * Keyset pagination, the one way every list pages: decode the cursor → a filter strictly after the last item
 * of the previous page → `limit + 1` documents → the cursor of the next page. Pages are ordered by one field
 * and `_id` (the tiebreak), so items inserted during a walk never make a page repeat or skip one.
 *
 * Cursors are opaque to clients: base64url JSON of `{ id, v? }`, the `_id` and sort value of the last item.
 * A cursor this API did not issue (wrong shape, a value out of range) is an `InvalidCursorError`, which the
 * HTTP layer answers with a 400 naming `cursor`.
 */

export class InvalidCursorError extends Error {
  override name = "InvalidCursorError";
  constructor() {
    super("not a cursor this API issued");
  }
}

/** How the sort field's value is kept in a cursor: a number, or a Date as epoch milliseconds. */
export type SortValueKind = "number" | "date";

export interface KeysetOrder {
  /** The field pages are ordered by besides `_id`; omit to order by `_id` alone. */
  field?: string;
  kind?: SortValueKind;
  direction: "asc" | "desc";
}

export interface Position {
  id: ObjectId;
  /** The sort field's value (a number or a Date), absent when ordering by `_id` alone. */
  value?: number | Date;
}

// Dates are valid from −8.64e15 to 8.64e15 ms; a larger "date" would make the query unserializable.
const MAX_DATE_MS = 8.64e15;

/** Every cursor of this API is its position's fields as base64url JSON. */
export function encodeCursorFields(fields: Record<string, unknown>): string {
  return btoa(JSON.stringify(fields)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The fields of a cursor's JSON object, or InvalidCursorError (a 400 naming `cursor`) for anything else. */
export function decodeCursorFields(cursor: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    throw new InvalidCursorError();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidCursorError();
  return parsed as Record<string, unknown>;
}

export function encodeCursor(position: Position): string {
  const raw: { id: string; v?: number } = { id: position.id.toHexString() };
  if (position.value !== undefined) {
    raw.v = position.value instanceof Date ? position.value.getTime() : position.value;
  }
  return encodeCursorFields(raw);
}

export function decodeCursor(cursor: string, kind?: SortValueKind): Position {
  const { id, v, ...rest } = decodeCursorFields(cursor);
  if (Object.keys(rest).length > 0) throw new InvalidCursorError();
  if (typeof id !== "string" || !/^[0-9a-f]{24}$/.test(id)) throw new InvalidCursorError();
  if (kind === undefined) {
    if (v !== undefined) throw new InvalidCursorError();
    return { id: new ObjectId(id) };
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new InvalidCursorError();
  if (kind === "date") {
    if (!Number.isInteger(v) || Math.abs(v) > MAX_DATE_MS) throw new InvalidCursorError();
    return { id: new ObjectId(id), value: new Date(v) };
  }
  return { id: new ObjectId(id), value: v };
}

/** The filter for "strictly after `position`" in `order`. */
export function afterPosition(order: KeysetOrder, position: Position): Filter {
  const op = order.direction === "desc" ? "$lt" : "$gt";
  if (!order.field) return { _id: { [op]: position.id } };
  return {
    $or: [{ [order.field]: { [op]: position.value } }, { [order.field]: position.value, _id: { [op]: position.id } }],
  };
}

export function sortOf(order: KeysetOrder): Record<string, 1 | -1> {
  const dir = order.direction === "desc" ? -1 : 1;
  return order.field ? { [order.field]: dir, _id: dir } : { _id: dir };
}

/** The position of a document in `order`, as the next page's cursor carries it. */
export function positionOf(doc: { _id: ObjectId } & Record<string, unknown>, order: KeysetOrder): Position {
  if (!order.field) return { id: doc._id };
  const raw = doc[order.field];
  const value = raw instanceof Date ? raw : typeof raw === "number" ? raw : order.kind === "date" ? new Date(0) : 0;
  return { id: doc._id, value };
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Splits `limit + 1` fetched documents into a page and the next page's cursor. */
export function pageFrom<T extends { _id: ObjectId }>(docs: T[], limit: number, order: KeysetOrder): Page<T> {
  const items = docs.slice(0, limit);
  const last = items.at(-1);
  const nextCursor =
    docs.length > limit && last ? encodeCursor(positionOf(last as T & Record<string, unknown>, order)) : null;
  return { items, nextCursor };
}

export interface PaginateOptions {
  filter: Filter;
  order: KeysetOrder;
  limit: number;
  cursor?: string | undefined;
  projection?: Projection;
}

/** One page of a collection in keyset order: one `find` round trip. */
export async function paginate<T extends { _id: ObjectId }>(
  collection: Collection<T>,
  opts: PaginateOptions,
): Promise<Page<T>> {
  const filter = opts.cursor
    ? {
        $and: [
          opts.filter,
          afterPosition(
            opts.order,
            decodeCursor(opts.cursor, opts.order.field ? (opts.order.kind ?? "number") : undefined),
          ),
        ],
      }
    : opts.filter;
  const docs = await collection.find(filter, {
    sort: sortOf(opts.order),
    limit: opts.limit + 1,
    ...(opts.projection ? { projection: opts.projection } : {}),
  });
  return pageFrom(docs, opts.limit, opts.order);
}

/**
 * Every page of a collection in keyset order, one `find` each, skipping none and yielding no empty page (an
 * export's walk). A filter given as a function is evaluated for each page (e.g. against the current time).
 */
export async function* everyPage<T extends { _id: ObjectId }>(
  collection: Collection<T>,
  opts: Omit<PaginateOptions, "cursor" | "filter"> & { filter: Filter | (() => Filter) },
): AsyncGenerator<T[]> {
  let cursor: string | undefined;
  do {
    const filter = typeof opts.filter === "function" ? opts.filter() : opts.filter;
    const page = await paginate(collection, { ...opts, filter, cursor });
    if (page.items.length === 0) return;
    yield page.items;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}
