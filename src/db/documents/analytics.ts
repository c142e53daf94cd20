import type { ObjectId } from "../../platform/ids";

/** `analytics_events`: the hot buffer (seed 000) that the flush job drains into ClickHouse. */
export interface AnalyticsEventDoc {
  _id: ObjectId;
  /** Server-assigned; becomes ClickHouse's `event_id`. */
  eventId: string;
  event: string;
  userId: string | null;
  sessionId: string;
  deviceId: string;
  platform: string;
  appVersion: string;
  properties: Record<string, unknown>;
  source: string | null;
  campaign: string | null;
  timestamp: Date;
  receivedAt: Date;
  /** Set when a flush run claims the event; the event is deleted once its batch is in ClickHouse. */
  flushBatchId: string | null;
}
