import { ObjectId } from "bson";
import type { Document } from "./backends/types";

/** Document helpers shared by the protocol layer and both backends. */

/** Plain `{}` objects (documents), as opposed to arrays, Dates and BSON value classes. */
export function isPlainObject(value: unknown): value is Document {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `{ $gt: 1 }`-style operator objects, as opposed to embedded documents. */
export function isOperatorObject(value: unknown): value is Document {
  if (!isPlainObject(value)) return false;
  const first = Object.keys(value)[0];
  return first?.startsWith("$") === true;
}

/** Returns the document with `_id` first (as MongoDB stores it), assigning an ObjectId when missing. */
export function withIdFirst(document: Document, id: unknown = document._id): Document {
  const { _id: _ignored, ...rest } = document;
  return { _id: id === undefined ? new ObjectId() : id, ...rest };
}
