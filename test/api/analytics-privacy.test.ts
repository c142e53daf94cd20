import { describe, expect, it } from "vitest";
import type { AnalyticsEventDoc, AnalyticsQuarantineDoc } from "../../src/db";
import { eraseUser, exportSections } from "../../src/features/analytics/privacy";
import { newObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { EJSON_SHAPED_PROPERTIES } from "../support/events";
import { crowd } from "../support/users";

// The analytics part of export and erasure (src/features/analytics/privacy.ts, wired in by features/privacy).
const deps = testDeps();

async function exported(userId: string): Promise<Record<string, unknown[]>> {
  const sections: Record<string, unknown[]> = {};
  for await (const page of exportSections(deps, userId)) {
    sections[page.section] = [...(sections[page.section] ?? []), ...page.items];
  }
  return sections;
}

describe("analytics export and erasure", () => {
  it("exports buffered events with properties as sent, an undecodable one as its text, and quarantined ones", async () => {
    const [owner, other] = await crowd(2);
    const sessionId = crypto.randomUUID();
    const sent = `{"events":[{"event":"screen_view","timestamp":"${new Date().toISOString()}","sessionId":"${sessionId}","deviceId":"d1","platform":"ios","appVersion":"1.0.0","properties":${EJSON_SHAPED_PROPERTIES}}]}`;
    const res = await call("POST", "/v1/events", {
      token: owner.accessToken,
      rawBody: sent,
      headers: { "content-type": "application/json" },
    });
    expect(res.status, res.text).toBe(202);
    // An event buffered before properties were kept as text, which the Data API cannot answer as EJSON.
    const legacy: AnalyticsEventDoc = {
      _id: newObjectId(),
      eventId: crypto.randomUUID(),
      event: "legacy",
      userId: owner.id,
      sessionId,
      deviceId: "d1",
      platform: "ios",
      appVersion: "0.9.0",
      properties: { d: { $date: "not-a-date" } },
      source: null,
      campaign: null,
      timestamp: new Date(),
      receivedAt: new Date(),
      flushBatchId: null,
    };
    await deps.db.analyticsEvents.insertOne(legacy);
    const quarantine = (userId: string): AnalyticsQuarantineDoc => ({
      _id: newObjectId(),
      eventId: null,
      userId,
      batchId: crypto.randomUUID(),
      reason: "invalid",
      detail: "test",
      documentJson: '{"event":"x"}',
      quarantinedAt: new Date(),
    });
    const [mine, theirs] = [quarantine(owner.id), quarantine(other.id)];
    await deps.db.analyticsQuarantine.insertMany([mine, theirs]);

    const sections = await exported(owner.id);
    const events = sections.analyticsEvents as Record<string, unknown>[];
    expect(events).toHaveLength(2);
    const plain = events.find((e) => e.event === "screen_view");
    expect(JSON.stringify(plain?.properties)).toBe(JSON.stringify(JSON.parse(EJSON_SHAPED_PROPERTIES)));
    expect(plain).not.toHaveProperty("propertiesJson");
    const unreadable = events.find((e) => "storedAs" in e);
    expect(String(unreadable?.storedAs)).toContain(legacy._id.toHexString());
    expect(sections.analyticsQuarantined).toEqual([expect.objectContaining({ id: mine._id.toHexString() })]);
    expect(await exported(other.id)).toEqual({
      analyticsQuarantined: [expect.objectContaining({ id: theirs._id.toHexString() })],
    });

    await eraseUser(deps, owner.id);
    await eraseUser(deps, owner.id);
    expect(await deps.db.analyticsQuarantine.find({ userId: owner.id })).toEqual([]);
    expect(await deps.db.analyticsQuarantine.find({ userId: other.id })).toHaveLength(1);
    await deps.db.analyticsEvents.deleteMany({ sessionId });
  });
});
