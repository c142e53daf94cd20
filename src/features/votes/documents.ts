import type { VoteDoc } from "../../db";
import { newObjectId, type ObjectId } from "../../platform/ids";

export interface NewVote {
  postId: ObjectId;
  userId: ObjectId;
  postAuthorId: ObjectId;
  deviceId: string | null;
  ipHash: string | null;
  sessionId: string | null;
  fraudScore: number;
  flagged: boolean;
  shadow: boolean;
  createdAt: Date;
}

/** A vote as it is recorded: unsettled (no batch, no gems yet). */
export function newVoteDoc(vote: NewVote): VoteDoc {
  return { _id: newObjectId(), gemAwarded: false, gemBatchId: null, ...vote };
}
