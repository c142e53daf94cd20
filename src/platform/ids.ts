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
