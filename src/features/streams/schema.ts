import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import { COHOST_STATES, STREAM_END_REASONS, STREAM_STATUSES } from "../../db";
import { GemTransaction } from "../gems/schema";
import { PublicUser } from "../users/schema";

export const StreamIdParam = z.object({ id: ObjectIdString });
export const StreamUserParams = z.object({ id: ObjectIdString, userId: ObjectIdString });
export const UserIdParam = z.object({ id: ObjectIdString });

const Tag = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[\p{L}\p{N}_-]{1,30}$/u, "1–30 letters, digits, '_' or '-'");

export const CreateStreamBody = z
  .object({
    title: z.string().trim().min(1).max(100),
    description: z.string().trim().max(500).optional(),
    scheduledFor: z.iso
      .datetime({ offset: true })
      .optional()
      .meta({ description: "Later: the stream is `scheduled` until the streamer starts it. Omitted: live now." }),
    category: z.string().trim().min(1).max(40).optional(),
    tags: z.array(Tag).max(50).optional().meta({ description: "At most STREAM_MAX_TAGS" }),
    coverGenerationId: ObjectIdString.optional().meta({
      description: "One of the streamer's completed generations as the stream's thumbnail",
    }),
  })
  .strict()
  .meta({ id: "CreateStream" });
export type CreateStreamBody = z.infer<typeof CreateStreamBody>;

export const StreamParticipant = z
  .object({
    user: PublicUser,
    state: z.enum(COHOST_STATES).meta({ description: "`invited` until the co-host accepts" }),
    invitedAt: z.string(),
    acceptedAt: z.string().nullable(),
  })
  .meta({ id: "StreamParticipant" });

export const VIEWER_ROLES = ["streamer", "cohost", "moderator", "viewer"] as const;

export const Stream = z
  .object({
    id: z.string(),
    userId: z.string().meta({ description: "The streamer" }),
    user: PublicUser,
    title: z.string(),
    description: z.string().nullable(),
    category: z.string().nullable(),
    tags: z.array(z.string()),
    status: z.enum(STREAM_STATUSES),
    playbackUrl: z
      .string()
      .nullable()
      .meta({ description: "HLS manifest (answers 204 until the streamer's encoder connects); null once over" }),
    thumbnailUrl: z.string().nullable(),
    viewerCount: z.number().int().meta({ description: "Distinct viewers with a live heartbeat (0 unless live)" }),
    peakViewers: z.number().int(),
    uniqueViewers: z.number().int().meta({ description: "Everyone who watched (once across devices)" }),
    giftTotal: z.number().int().meta({ description: "Gems gifted during the stream" }),
    giftCount: z.number().int(),
    startedAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    scheduledFor: z.string().nullable(),
    cancelledAt: z.string().nullable(),
    endReason: z.enum(STREAM_END_REASONS).nullable(),
    conversationId: z.string().meta({ description: "The live chat: a conversation of kind `stream`" }),
    participants: z.array(StreamParticipant).meta({
      description: "Co-hosts: accepted ones for everyone; invitations too for the streamer and the invitee",
    }),
    createdAt: z.string(),
    viewer: z
      .object({ role: z.enum(VIEWER_ROLES) })
      .optional()
      .meta({ description: "The signed-in caller's place in the stream" }),
    ingest: z
      .object({
        url: z.string().meta({ description: "RTMPS ingest URL" }),
        streamKey: z.string().meta({ description: "Secret: whoever has it can broadcast as this stream" }),
      })
      .optional()
      .meta({ description: "The streamer only, until the stream is over" }),
  })
  .meta({ id: "Stream" });
export type Stream = z.infer<typeof Stream>;

export const StreamPage = pageOf(Stream, "StreamPage");
export type StreamPage = z.infer<typeof StreamPage>;

export const LiveStreamsQuery = PageQuery.extend({
  category: z.string().trim().min(1).max(40).optional(),
});
export type LiveStreamsQuery = z.infer<typeof LiveStreamsQuery>;

export const UserStreamsQuery = PageQuery.extend({
  status: z.enum(STREAM_STATUSES).optional(),
});
export type UserStreamsQuery = z.infer<typeof UserStreamsQuery>;

export const StreamGiftBody = z
  .object({
    amount: z.number().int().meta({ description: "Gems, between GIFT_MIN_GEMS and GIFT_MAX_GEMS" }),
    message: z.string().max(200).optional(),
  })
  .strict()
  .meta({ id: "StreamGiftRequest" });
export type StreamGiftBody = z.infer<typeof StreamGiftBody>;

export const StreamGiftResult = z
  .object({
    transaction: GemTransaction,
    platformFee: z.number().int(),
    payout: z.number().int().meta({ description: "What the streamer got: amount − platformFee" }),
    transferId: z.string(),
    streamId: z.string(),
    giftTotal: z.number().int().meta({ description: "The stream's gift total with this gift" }),
  })
  .meta({ id: "StreamGiftResult" });
export type StreamGiftResult = z.infer<typeof StreamGiftResult>;

export const GiftersQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) });

export const StreamGifters = z
  .object({
    items: z.array(
      z.object({
        rank: z.number().int().meta({ description: "Equal amounts share a rank (1, 2, 2, 4)" }),
        user: PublicUser,
        amount: z.number().int(),
      }),
    ),
  })
  .meta({ id: "StreamGifters" });
export type StreamGifters = z.infer<typeof StreamGifters>;
