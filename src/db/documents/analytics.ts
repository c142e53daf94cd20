import type { ObjectId } from "../../platform/ids";
import type { StoredJson } from "../../platform/mongo/client-json";

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
  /**
   * Becomes ClickHouse's `event_id`: the client's own (`eventId` in the request, so a retried event is one
   * event end to end) or, when it sent none, assigned by the server. Unique in the buffer.
   */
  eventId: string;
  /** True when `eventId` came from the client, so the flush checks ClickHouse for an earlier copy. */
  clientEventId?: boolean;
  event: string;
  /** Who did it: the signed-in caller, or null (a signed-out device, or the system for server events). */
  userId: string | null;
  sessionId: string;
  deviceId: string;
  platform: string;
  appVersion: string;
  /** The client's `properties` as JSON text, exactly as sent (see platform/mongo/client-json.ts). */
  propertiesJson?: StoredJson;
  /**
   * Events buffered before `propertiesJson` kept `properties` as a document, which the Data API read as EJSON;
   * the flush still accepts such events while the buffer's 24 h TTL lets them age out.
   */
  properties?: Record<string, unknown>;
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

/** Why the flush set a buffered event aside instead of delivering it. */
export type QuarantineReason = "undecodable" | "invalid";

/**
 * `analytics_quarantine`: buffered events the flush could not deliver (a document that cannot be decoded, or
 * one that breaks the row contract), kept for inspection for 30 days instead of blocking every later run. The
 * `_id` is the buffer's, so a re-run after a crash quarantines an event once.
 */
export interface AnalyticsQuarantineDoc {
  _id: ObjectId;
  eventId: string | null;
  /** The signed-in sender (the buffered event's `userId`, read from its JSON when it could not be decoded). */
  userId?: string | null;
  batchId: string;
  reason: QuarantineReason;
  /** What was wrong, for the operator (never client data). */
  detail: string;
  /** The buffered document as JSON text (the raw EJSON when it could not be decoded), capped. */
  documentJson: string;
  quarantinedAt: Date;
}
