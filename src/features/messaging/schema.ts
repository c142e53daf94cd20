import { z } from "zod";
import { ObjectIdString, PageQuery, pageOf } from "../../core/schemas";
import { CONVERSATION_KINDS, DISAPPEARING_TIMERS, MEMBER_ROLES, MESSAGE_KINDS, SYSTEM_EVENTS } from "../../db";
import { PublicUser } from "../users/schema";

export const ConversationIdParam = z.object({ id: ObjectIdString });
export const MessageIdParam = z.object({ id: ObjectIdString });
export const MemberParams = z.object({ id: ObjectIdString, userId: ObjectIdString });

const Timer = z.literal(DISAPPEARING_TIMERS).meta({
  description:
    "Disappearing-message timer in seconds: 0 (off), 300 (5 min), 3600 (1 h), 86400 (24 h), 604800 (7 d), 7776000 (90 d)",
  example: 86_400,
});

const Title = z.string().trim().min(1).max(100);

export const CreateConversationBody = z
  .object({
    memberIds: z
      .array(ObjectIdString)
      .min(1)
      .max(1_024)
      .meta({ description: "The other people (not the caller). One person and no title makes a direct conversation." }),
    title: Title.optional().meta({ description: "A group's name" }),
    kind: z
      .enum(["direct", "group"])
      .optional()
      .meta({ description: "Default: direct for one other person without a title, else group" }),
  })
  .strict()
  .meta({ id: "CreateConversation" });
export type CreateConversationBody = z.infer<typeof CreateConversationBody>;

export const INBOXES = ["primary", "requests"] as const;
export type Inbox = (typeof INBOXES)[number];

export const ConversationsQuery = PageQuery.extend({
  inbox: z
    .enum(INBOXES)
    .default("primary")
    .meta({ description: "`requests`: conversations started by people the caller does not follow, not yet accepted" }),
});
export type ConversationsQuery = z.infer<typeof ConversationsQuery>;

export const UpdateConversationBody = z
  .object({
    title: Title.nullable().optional().meta({ description: "Groups only (owner or admin)" }),
    disappearingSeconds: Timer.optional().meta({
      description: "Applies to messages sent from now on; posts a system message. Groups: owner or admin.",
    }),
  })
  .strict()
  .refine((b) => b.title !== undefined || b.disappearingSeconds !== undefined, {
    message: "give title or disappearingSeconds",
  })
  .meta({ id: "UpdateConversation" });
export type UpdateConversationBody = z.infer<typeof UpdateConversationBody>;

export const MemberRoleBody = z
  .object({
    role: z.enum(MEMBER_ROLES).meta({ description: "`owner` hands the group over: the caller becomes an admin" }),
  })
  .strict()
  .meta({ id: "MemberRole" });

export const AddMembersBody = z
  .object({ userIds: z.array(ObjectIdString).min(1).max(100) })
  .strict()
  .meta({ id: "AddMembers" });

export const SendMessageBody = z
  .object({
    clientMessageId: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1–64 letters, digits, '_', '.', ':' or '-'")
      .meta({ description: "The sender's id for this message: a retry with the same id makes no second message" }),
    kind: z.enum(["text", "image"]),
    text: z
      .string()
      // MESSAGE_MAX_TEXT_LENGTH's upper bound; the configured limit itself is checked by the service.
      .max(20_000)
      .optional()
      .meta({ description: "Required for text (at most MESSAGE_MAX_TEXT_LENGTH); an image's caption" }),
    generationId: ObjectIdString.optional().meta({
      description: "An image: one of the sender's completed generations",
    }),
    mediaId: ObjectIdString.optional().meta({
      description: "An image: a ready upload of the sender's (`POST /v1/media`, purpose `message`)",
    }),
  })
  .strict()
  .meta({ id: "SendMessage" });
export type SendMessageBody = z.infer<typeof SendMessageBody>;

export const MessagesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  before: ObjectIdString.optional().meta({ description: "Older than this message, newest first (the default order)" }),
  after: ObjectIdString.optional().meta({ description: "Newer than this message, oldest first (catch-up)" }),
  waitSeconds: z.coerce
    .number()
    .int()
    .min(0)
    .max(60)
    .optional()
    .meta({
      description:
        "With `after` and nothing newer yet: hold the request until a message arrives or this many seconds pass " +
        "(up to MESSAGE_LONG_POLL_MAX_SECONDS) where events go over Upstash pub/sub (the Deno entry); on Workers, " +
        "where the WebSocket carries them, it answers at once",
    }),
});
export type MessagesQuery = z.infer<typeof MessagesQuery>;

export const EditMessageBody = z
  .object({ text: z.string().min(1) })
  .strict()
  .meta({ id: "EditMessage" });

export const ReadBody = z
  .object({
    messageId: ObjectIdString.meta({ description: "Read up to and including this message" }),
    private: z
      .boolean()
      .optional()
      .meta({ description: "Move only the caller's own marker: other members are not shown this read" }),
  })
  .strict()
  .meta({ id: "MarkRead" });

export const MessageMedia = z
  .object({
    url: z.string(),
    thumbnailUrl: z.string().nullable(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    blurhash: z.string().nullable(),
  })
  .meta({ id: "MessageMedia" });

export const SystemNote = z
  .object({
    event: z.enum(SYSTEM_EVENTS),
    userIds: z.array(z.string()).meta({ description: "Who it is about (added or removed members)" }),
    title: z.string().nullable().optional(),
    disappearingSeconds: z.number().int().optional(),
  })
  .meta({ id: "SystemNote" });

export const Message = z
  .object({
    id: z.string(),
    conversationId: z.string(),
    senderId: z.string().meta({ description: "The author; for system messages the member who caused the event" }),
    kind: z.enum(MESSAGE_KINDS),
    text: z.string().nullable(),
    mediaUrl: z.string().nullable(),
    media: MessageMedia.nullable(),
    clientMessageId: z.string().nullable().meta({ description: "The sender's own id (shown to the sender only)" }),
    storyId: z.string().nullable().meta({ description: "Set on a reply to a story" }),
    system: SystemNote.nullable(),
    timerSeconds: z.number().int().meta({ description: "The disappearing timer this message was sent with (0: none)" }),
    editedAt: z.string().nullable(),
    deletedAt: z.string().nullable().meta({ description: "Deleted for everyone: text and media are gone" }),
    expiresAt: z
      .string()
      .nullable()
      .meta({
        description:
          "When the caller's copy disappears: for the sender `timer` after sending, for a recipient `timer` after " +
          "they read it (null until then, and for messages without a timer)",
      }),
    createdAt: z.string(),
  })
  .meta({ id: "Message" });
export type Message = z.infer<typeof Message>;

export const MessagePage = pageOf(Message, "MessagePage");
export type MessagePage = z.infer<typeof MessagePage>;

export const ConversationMember = z
  .object({ user: PublicUser, role: z.enum(MEMBER_ROLES), joinedAt: z.string() })
  .meta({ id: "ConversationMember" });

export const Conversation = z
  .object({
    id: z.string(),
    kind: z.enum(CONVERSATION_KINDS),
    members: z.array(ConversationMember),
    title: z.string().nullable(),
    disappearingSeconds: z.number().int(),
    unreadCount: z.number().int().meta({ description: "Others' messages after the caller's read marker (capped)" }),
    lastMessage: Message.nullable(),
    inbox: z.enum(INBOXES).meta({ description: "Where the caller sees it: `requests` until they accept" }),
    role: z.enum(MEMBER_ROLES).meta({ description: "The caller's role" }),
    createdAt: z.string(),
  })
  .meta({ id: "Conversation" });
export type Conversation = z.infer<typeof Conversation>;

export const ConversationPage = pageOf(Conversation, "ConversationPage");
export type ConversationPage = z.infer<typeof ConversationPage>;

export const Receipts = z
  .object({
    items: z.array(
      z.object({
        userId: z.string(),
        messageId: z.string().meta({ description: "Read up to and including this message" }),
        readAt: z.string(),
      }),
    ),
  })
  .meta({ id: "Receipts" });
export type Receipts = z.infer<typeof Receipts>;

export const UnreadCount = z
  .object({
    count: z.number().int().meta({ description: "Unread messages in the primary inbox" }),
    conversations: z.number().int().meta({ description: "Primary conversations with unread messages" }),
    requests: z.number().int().meta({ description: "Message requests with unread messages" }),
  })
  .meta({ id: "MessagesUnreadCount" });
export type UnreadCount = z.infer<typeof UnreadCount>;

export const MessagingSettings = z
  .object({
    readReceipts: z.boolean().meta({
      description:
        "Others see how far the caller has read (off: the caller's marker still drives their own unread count)",
    }),
  })
  .meta({ id: "MessagingSettings" });
export type MessagingSettings = z.infer<typeof MessagingSettings>;

export const UpdateMessagingSettingsBody = MessagingSettings.partial().strict().meta({ id: "UpdateMessagingSettings" });

export const SocketTicket = z
  .object({
    ticket: z.string().meta({ description: "Single use; redeem within `expiresIn` seconds" }),
    expiresIn: z.number().int(),
    url: z.string().meta({ description: "Path to open the WebSocket on (the ticket in its query)" }),
  })
  .meta({ id: "SocketTicket" });

export const SocketQuery = z.object({
  ticket: z.string().min(16).max(128).meta({ description: "From POST /v1/conversations/{id}/socket-ticket" }),
});
