import { ObjectId } from "./object-id";

export { ObjectId };

const OBJECT_ID = /^[0-9a-f]{24}$/i;

export function isObjectIdHex(value: string): boolean {
  return OBJECT_ID.test(value);
}

export function newObjectId(): ObjectId {
  return new ObjectId();
}

export function newUuid(): string {
  return crypto.randomUUID();
}

/** A new unique ObjectId whose timestamp is `at` (the injected clock's time), for ids compared with that clock. */
export function newObjectIdAt(at: Date): ObjectId {
  const seconds = (Math.floor(at.getTime() / 1000) >>> 0).toString(16).padStart(8, "0");
  return new ObjectId(seconds + newObjectId().toHexString().slice(8));
}
