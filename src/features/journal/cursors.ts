import { ObjectId } from "../../platform/ids";
import { decodeCursorFields, encodeCursorFields, InvalidCursorError } from "../../platform/mongo/paginate";
import { isCalendarDay } from "../../platform/time";

/**
 * Opaque cursors of the journal's lists (base64url JSON, like every cursor of this API): by date and id for
 * entries, by relevance score and id for search results. A cursor the API did not issue is a 400 naming `cursor`.
 */

const encode = encodeCursorFields;
const decode = decodeCursorFields;

function idOf(raw: unknown): ObjectId {
  if (typeof raw !== "string" || !/^[0-9a-f]{24}$/.test(raw)) throw new InvalidCursorError();
  return new ObjectId(raw);
}

export function encodeDateCursor(position: { date: string; id: ObjectId }): string {
  return encode({ d: position.date, id: position.id.toHexString() });
}

export function decodeDateCursor(cursor: string): { date: string; id: ObjectId } {
  const { d, id, ...rest } = decode(cursor);
  if (Object.keys(rest).length > 0 || typeof d !== "string" || !isCalendarDay(d)) throw new InvalidCursorError();
  return { date: d, id: idOf(id) };
}

export function encodeScoreCursor(position: { score: number; id: ObjectId }): string {
  return encode({ s: position.score, id: position.id.toHexString() });
}

export function decodeScoreCursor(cursor: string): { score: number; id: ObjectId } {
  const { s, id, ...rest } = decode(cursor);
  if (Object.keys(rest).length > 0 || typeof s !== "number" || !Number.isFinite(s)) throw new InvalidCursorError();
  return { score: s, id: idOf(id) };
}
