import type { AnalyticsEventDoc } from "../../db";
import type { Deps } from "../../deps";
import { ObjectId } from "../../platform/ids";
import type { FoundDocument } from "../../platform/mongo/client";
import { fromStoredJson } from "../../platform/mongo/client-json";

/**
 * Analytics in GDPR export and erasure (wired in by features/privacy): the signed-in events still in the
 * buffer, each with `properties` as the JSON the app sent (read one document at a time, so an event the buffer
 * cannot decode is exported as its stored text instead of failing the whole export), and the events the flush
 * set aside in `analytics_quarantine`. Delivered events are the core export's `analyticsArchive`; the core
 * erasure removes the buffer's events and ClickHouse's rows, this one the quarantined copies.
 */

const PAGE = 500;
const hexOf = (userId: ObjectId | string) => (typeof userId === "string" ? userId : userId.toHexString());

export async function* exportSections(
  deps: Deps,
  userId: ObjectId | string,
): AsyncGenerator<{ section: string; items: unknown[] }> {
  const hex = hexOf(userId);
  let after: ObjectId | null = null;
  for (;;) {
    const found = await deps.db.analyticsEvents.findEach(
      after ? { userId: hex, _id: { $gt: after } } : { userId: hex },
      {
        sort: { _id: 1 },
        limit: PAGE,
      },
    );
    if (found.length > 0) yield { section: "analyticsEvents", items: found.map(exportedEvent) };
    const last = found.at(-1);
    if (found.length < PAGE || !last) break;
    after = idOf(last);
  }
  let afterQuarantined: ObjectId | null = null;
  for (;;) {
    const docs = await deps.db.analyticsQuarantine.find(
      afterQuarantined ? { userId: hex, _id: { $gt: afterQuarantined } } : { userId: hex },
      { sort: { _id: 1 }, limit: PAGE },
    );
    if (docs.length > 0) {
      yield {
        section: "analyticsQuarantined",
        items: docs.map((d) => ({
          id: d._id.toHexString(),
          eventId: d.eventId,
          reason: d.reason,
          quarantinedAt: d.quarantinedAt.toISOString(),
          storedAs: d.documentJson,
        })),
      };
    }
    if (docs.length < PAGE) break;
    afterQuarantined = docs.at(-1)?._id ?? null;
  }
}

/** Removes the account's quarantined events (the buffer and ClickHouse are the core erasure's). Idempotent. */
export async function eraseUser(deps: Deps, userId: ObjectId | string): Promise<void> {
  await deps.db.analyticsQuarantine.deleteMany({ userId: hexOf(userId) });
}

/** A buffered event as exported: `properties` as sent; one the buffer cannot decode as the text it holds. */
function exportedEvent(found: FoundDocument<AnalyticsEventDoc>): unknown {
  if (!found.decoded) return { storedAs: found.raw };
  const { propertiesJson, flushBatchId: _batch, ...event } = found.document;
  return {
    ...event,
    _id: event._id.toHexString(),
    properties: propertiesJson === undefined ? (event.properties ?? {}) : fromStoredJson(propertiesJson),
  };
}

/** The `_id` of a found document, decoded or not (the raw EJSON carries it as `{"$oid": …}`). */
function idOf(found: FoundDocument<AnalyticsEventDoc>): ObjectId {
  if (found.decoded) return found.document._id;
  const oid = (JSON.parse(found.raw) as { _id?: { $oid?: string } })._id?.$oid;
  return new ObjectId(oid);
}
