import type { ObjectId } from "../../platform/ids";

/**
 * `votes` (seed 000) plus `shadow` (the voter was shadow-banned: recorded, but counted nowhere). A vote is
 * permanent (one per post and user, forever); its fraud signals — `ipHash`, `deviceId`, `sessionId` — are
 * dropped after VOTE_SIGNAL_RETENTION_DAYS by the `vote-signal-retention` job.
 */
export interface VoteDoc {
  _id: ObjectId;
  postId: ObjectId;
  userId: ObjectId;
  postAuthorId: ObjectId;
  deviceId: string | null;
  ipHash: string | null;
  sessionId: string | null;
  gemAwarded: boolean;
  gemBatchId: string | null;
  createdAt: Date;
  fraudScore: number;
  flagged: boolean;
  /** Why settlement's fraud review withheld the vote (see features/votes/fraud.ts), when it did. */
  fraudReasons?: ("linked_device" | "linked_ip" | "ip_cluster" | "single_author_ring")[];
  shadow: boolean;
}
