import { z } from "@hono/zod-openapi";
import type { ObjectId } from "../../platform/ids";

const MAX_PROPERTIES_BYTES = 8 * 1024;

export const ClientEvent = z
  .object({
    event: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1–64 letters, digits, _ . : -")
      .openapi({ example: "screen_view" }),
    timestamp: z.iso.datetime({ offset: true }).openapi({ example: "2026-11-23T12:00:00.000Z" }),
    sessionId: z.string().min(1).max(128),
    deviceId: z.string().min(1).max(128),
    platform: z.enum(["ios", "android", "web"]),
    appVersion: z.string().min(1).max(32),
    properties: z
      .record(z.string().max(64), z.unknown())
      .refine((p) => JSON.stringify(p).length <= MAX_PROPERTIES_BYTES, `at most ${MAX_PROPERTIES_BYTES} bytes as JSON`)
      .optional(),
    source: z.string().min(1).max(64).optional().openapi({ example: "organic" }),
    campaign: z.string().min(1).max(128).optional(),
  })
  .strict()
  .openapi("ClientEvent");

export const IngestEventsBody = z
  .object({ events: z.array(ClientEvent).min(1, "at least 1 event").max(100, "at most 100 events per request") })
  .strict()
  .openapi("IngestEvents");

export const IngestEventsResult = z.object({ accepted: z.number().int() }).openapi("IngestEventsResult");

const day = z.iso.date().openapi({ example: "2026-11-23" });
export const DauQuery = z.object({
  from: day.optional().openapi({ description: "First UTC day (default: 29 days before `to`)" }),
  to: day.optional().openapi({ description: "Last UTC day, inclusive (default: today)" }),
});

export const DauReport = z
  .object({ items: z.array(z.object({ date: z.string(), users: z.number().int() })) })
  .openapi("DailyActiveUsers");

export type ClientEvent = z.infer<typeof ClientEvent>;

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
