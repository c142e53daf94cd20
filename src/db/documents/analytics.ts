import type { ObjectId } from "../../platform/ids";

/**
 * Where a person came from (seed 004's `attribution`): the campaign parameters of a link or store listing
 * (`utm_source`, `utm_medium`, `utm_campaign`) and the referring page or app. Every field is optional.
 */
export interface Attribution {
  source: string | null;
  medium: string | null;
  campaign: string | null;
  referrer: string | null;
}

/**
 * `analytics_events`: the hot buffer (seed 000) that the flush job drains into ClickHouse. It holds the app's
 * events (`POST /v1/events`) and the events the API records itself (`origin: "server"`: votes, follows, …,
 * see features/analytics/activity.ts); the flush sends the first to `events` and the second to
 * `server_events`.
 */
export interface AnalyticsEventDoc {
  _id: ObjectId;
  /** Server-assigned; becomes ClickHouse's `event_id`. */
  eventId: string;
  event: string;
  /** Who did it: the signed-in caller, or null (a signed-out device, or the system for server events). */
  userId: string | null;
  sessionId: string;
  deviceId: string;
  platform: string;
  appVersion: string;
  properties: Record<string, unknown>;
  source: string | null;
  campaign: string | null;
  /** Absent on events buffered before attribution carried them. */
  medium?: string | null;
  referrer?: string | null;
  /** Absent (or "app") for the app's events; "server" for events the API records itself. */
  origin?: "app" | "server";
  /** Server events: whose analytics the event counts toward (the author voted on, the person followed, …). */
  ownerId?: string | null;
  /** Server events: the post it is about, if any. */
  postId?: string | null;
  /** Server events: a quantity (gems earned). */
  amount?: number | null;
  timestamp: Date;
  receivedAt: Date;
  /** Set when a flush run claims the event; the event is deleted once its batch is in ClickHouse. */
  flushBatchId: string | null;
}
