import type { ObjectId } from "../../platform/ids";

export const RELATION_KINDS = ["block", "mute"] as const;
export type RelationKind = (typeof RELATION_KINDS)[number];

/** `blocks`: one per (user, target, kind). A block works both ways; a mute only for `userId`. */
export interface BlockDoc {
  _id: ObjectId;
  userId: ObjectId;
  targetId: ObjectId;
  kind: RelationKind;
  createdAt: Date;
}
