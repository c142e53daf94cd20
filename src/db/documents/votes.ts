import type { ObjectId } from "../../platform/ids";

/** `votes` (seed 000) plus `shadow` (the voter was shadow-banned: recorded, but counted nowhere). */
export interface VoteDoc {
  _id: ObjectId;
  postId: ObjectId;
  userId: ObjectId;
  postAuthorId: ObjectId;
  deviceId: string | null;
  ipHash: string;
  sessionId: string;
  gemAwarded: boolean;
  gemBatchId: string | null;
  createdAt: Date;
  fraudScore: number;
  flagged: boolean;
  shadow: boolean;
}
