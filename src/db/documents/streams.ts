import type { ObjectId } from "../../platform/ids";
import type { RequestKey } from "./requests";

export const STREAM_STATUSES = ["scheduled", "live", "ended", "cancelled"] as const;
export type StreamStatus = (typeof STREAM_STATUSES)[number];

/** Why a stream ended or was cancelled: its streamer, the maintenance job, or the account going away. */
export const STREAM_END_REASONS = ["streamer", "abandoned", "schedule_lapsed", "streamer_unavailable"] as const;
export type StreamEndReason = (typeof STREAM_END_REASONS)[number];

export const COHOST_STATES = ["invited", "accepted"] as const;
export type CohostState = (typeof COHOST_STATES)[number];

/** A co-host (seed 003's `participants`): invited by the streamer, a co-host once they accept. */
export interface StreamParticipantDoc {
  userId: ObjectId;
  state: CohostState;
  invitedAt: Date;
  acceptedAt: Date | null;
}

/** A chat moderator the streamer appointed for this stream. */
export interface StreamModeratorDoc {
  userId: ObjectId;
  appointedAt: Date;
}

/**
 * The stream's live input at the video provider. The stream key is never stored: the streamer's reads ask the
 * provider for it. `deletedAt` stays null until the input is deleted after the stream ends (a job retries).
 */
export interface StreamVideoDoc {
  provider: "cloudflare_stream";
  liveInputId: string;
  playbackUrl: string;
  deletedAt: Date | null;
}

/**
 * Followers told "X is live", as an outbox on the stream: `pending` from the moment it goes live, with the last
 * follow edge already told (`after`), until every follower was; the maintenance job finishes what a crash left.
 */
export interface LiveNoticeDoc {
  state: "pending" | "done";
  after: ObjectId | null;
  told: number;
  updatedAt: Date;
}

/**
 * `live_streams` (seed 003). Viewer numbers live in Redis while the stream is live (a sorted set of viewers per
 * stream) and are frozen here when it ends; `giftTotal` moves with every gift, once per transfer (in the same
 * transaction as its `stream_gifts` record). `staffVersion` moves with every change of co-hosts and moderators,
 * whose chat roles are written with it.
 */
export interface StreamDoc {
  _id: ObjectId;
  userId: ObjectId;
  title: string;
  description: string | null;
  category: string | null;
  tags: string[];
  thumbnailUrl: string | null;
  status: StreamStatus;
  scheduledFor: Date | null;
  startedAt: Date | null;
  endedAt: Date | null;
  cancelledAt: Date | null;
  endReason: StreamEndReason | null;
  /** The live chat: a `stream` conversation (features/messaging). */
  conversationId: ObjectId;
  participants: StreamParticipantDoc[];
  moderators: StreamModeratorDoc[];
  staffVersion: number;
  video: StreamVideoDoc;
  /** Frozen at the end (0 before). */
  peakViewers: number;
  uniqueViewers: number;
  giftTotal: number;
  giftCount: number;
  liveNotice: LiveNoticeDoc | null;
  /** The create's Idempotency-Key (scoped to the streamer) and request fingerprint, when it came with one. */
  idempotency?: RequestKey;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * `stream_gifters`: what each person gave during one stream (unique per stream and sender), moved in the same
 * transaction as each gift's record, so the stream's top gifters are a sorted read of exact totals.
 */
export interface StreamGifterDoc {
  _id: ObjectId;
  streamId: ObjectId;
  senderId: ObjectId;
  amount: number;
  gifts: number;
  firstAt: Date;
  lastAt: Date;
}

/**
 * `stream_gifts`: one per gift sent during a stream (unique `transferId`, the ledger transfer it records), so a
 * stream's total and its top gifters come from what was really paid, once.
 */
export interface StreamGiftDoc {
  _id: ObjectId;
  streamId: ObjectId;
  senderId: ObjectId;
  /** The streamer who got the payout. */
  recipientId: ObjectId;
  transferId: string;
  amount: number;
  platformFee: number;
  payout: number;
  message: string | null;
  createdAt: Date;
}
