import type { ObjectId } from "../../platform/ids";

export const CONVERSATION_KINDS = ["direct", "group", "stream"] as const;
export type ConversationKind = (typeof CONVERSATION_KINDS)[number];

export const MEMBER_ROLES = ["owner", "admin", "member"] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

export const MESSAGE_KINDS = ["text", "image", "system"] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** The disappearing-message timers a conversation may have, in seconds (0: off): 5 min, 1 h, 24 h, 7 d, 90 d. */
export const DISAPPEARING_TIMERS = [0, 300, 3_600, 86_400, 604_800, 7_776_000] as const;
export type DisappearingTimer = (typeof DISAPPEARING_TIMERS)[number];

/**
 * One member of a conversation, with their own view of it. Members live inside the conversation so that one
 * read authorizes a request and one conditional update changes membership, roles and markers atomically.
 */
export interface ConversationMemberDoc {
  userId: ObjectId;
  role: MemberRole;
  joinedAt: Date;
  addedBy: ObjectId | null;
  /** Messages before this id are not shown to this member (they joined later, or cleared a direct chat). */
  visibleFrom: ObjectId;
  /** False while the conversation is a message request for this member (the requests inbox). */
  accepted: boolean;
  /** Out of this member's inboxes until the next message (a declined request, a cleared direct chat). */
  hidden: boolean;
  /** Read up to and including this message: drives the member's unread count and disappearing timers. */
  readId: ObjectId | null;
  readAt: Date | null;
  /** The marker other members see; stays put while receipts are off or a read is private. */
  shownReadId: ObjectId | null;
  shownReadAt: Date | null;
  /** The member's read-receipt setting, mirrored from `users.messaging.readReceipts`. */
  receipts: boolean;
}

/**
 * A live stream's chat (kind `stream`): anyone who may see the stream reads it and, while it is open, writes in
 * it; its members are only the stream's staff (the streamer as owner, co-hosts and moderators as admins), who
 * remove messages and mute viewers. Closed (read-only) once the stream ends.
 */
export interface StreamChatDoc {
  streamId: ObjectId;
  /** The streamer: people blocked with them neither read nor write here. */
  hostId: ObjectId;
  open: boolean;
  /** Viewers muted for this stream: they read, they cannot send. */
  mutedIds: ObjectId[];
}

/**
 * `conversations` (seed 003's chat rooms): direct (two people, one conversation per pair by `directKey`),
 * group (up to MESSAGING_MAX_MEMBERS) or a live stream's chat (`stream`). `version` moves with every change of membership, roles, title or
 * timer: a write that read an older version is refused (see messaging/store.ts), so a message always carries
 * the timer in force when it was stored and never reaches someone who had just left.
 */
export interface ConversationDoc {
  _id: ObjectId;
  kind: ConversationKind;
  /** Direct conversations: the two user ids, sorted and joined with ":" (unique); null for groups. */
  directKey: string | null;
  title: string | null;
  createdBy: ObjectId;
  members: ConversationMemberDoc[];
  /** The timer new messages take (one of DISAPPEARING_TIMERS; 0 is off). */
  disappearingSeconds: number;
  version: number;
  /** The newest message's time (inbox order); null until the first message. */
  lastMessageAt: Date | null;
  /** Kind `stream` only. */
  stream?: StreamChatDoc;
  createdAt: Date;
  updatedAt: Date;
}

/** What a message's image is: for now the sender's own generation, later an upload (`POST /v1/media`). */
export type MessageMediaDoc =
  | {
      source: "generation";
      generationId: ObjectId;
      url: string;
      thumbnailUrl: string | null;
      width: number | null;
      height: number | null;
      blurhash: string | null;
    }
  | {
      source: "upload";
      mediaId: ObjectId;
      url: string;
      thumbnailUrl: string | null;
      width: number | null;
      height: number | null;
      blurhash: string | null;
    };

export const SYSTEM_EVENTS = [
  "created",
  "members_added",
  "member_removed",
  "member_left",
  "title_changed",
  "timer_changed",
] as const;
export type SystemEvent = (typeof SYSTEM_EVENTS)[number];

export interface SystemNoteDoc {
  event: SystemEvent;
  /** Who the event is about (added or removed members). */
  userIds: ObjectId[];
  title?: string | null;
  disappearingSeconds?: number;
}

/** A recipient's copy of a disappearing message: read at `at`, gone at `expiresAt`. */
export interface MessageReadDoc {
  userId: ObjectId;
  at: Date;
  expiresAt: Date;
}

/**
 * `messages` (seed 003's `chats`). Disappearing messages snapshot the conversation's timer at send
 * (`timerSeconds`; 0 = not disappearing): the sender's copy expires `timerSeconds` after sending
 * (`senderExpiresAt`), each recipient's `timerSeconds` after they read it (their entry in `reads`, pushed
 * when their read marker passes the message; a member who leaves gets an entry expiring at once). When every
 * recipient's copy has an expiry, `purgeAt` is the last of all copies, and the purge job deletes the message.
 */
export interface MessageDoc {
  _id: ObjectId;
  conversationId: ObjectId;
  /** The author; for system messages the member who caused the event. */
  senderId: ObjectId;
  kind: MessageKind;
  text: string | null;
  media: MessageMediaDoc | null;
  /** The sender's retry key: one message per (conversation, sender, clientMessageId). */
  clientMessageId: string | null;
  /** A reply to this story (stories feature). */
  storyId: ObjectId | null;
  system: SystemNoteDoc | null;
  createdAt: Date;
  editedAt: Date | null;
  /** Deleted for everyone: the text and media are gone, a placeholder stays (until purged, if disappearing). */
  deletedAt: Date | null;
  timerSeconds: number;
  senderExpiresAt: Date | null;
  /** Disappearing messages: the members who got it (everyone but the sender, at send time). */
  recipientIds: ObjectId[];
  reads: MessageReadDoc[];
  purgeAt: Date | null;
  /** Set when the sender's account was erased: no text, media or retry key remain. */
  erasedAt?: Date;
}
