// Demo data for a local stack, written through the public API so it takes the same path as the app.
// Used by `npm run dev -- --seed`.

const PLATFORMS = ["ios", "android"] as const;
const SCREENS = ["feed", "trending", "profile", "create", "leaderboard"];

/** Posts a week of analytics events for a handful of demo devices and flushes them to ClickHouse. */
export async function seedDemoData(baseUrl: string, adminToken: string): Promise<{ events: number }> {
  const now = Date.now();
  let events = 0;
  for (let device = 0; device < 25; device++) {
    const batch = Array.from({ length: 40 }, (_, i) => ({
      event: i === 0 ? "session_start" : "screen_view",
      timestamp: new Date(now - ((device * 40 + i) % 7) * 86_400_000 - i * 1000).toISOString(),
      sessionId: `demo-session-${device}`,
      deviceId: `demo-device-${device}`,
      platform: PLATFORMS[device % 2],
      appVersion: "1.0.0",
      properties: { screen: SCREENS[i % SCREENS.length] },
      source: device % 5 === 0 ? "referral" : "organic",
    }));
    const res = await fetch(`${baseUrl}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ events: batch }),
    });
    if (res.status !== 202) throw new Error(`seeding events failed: ${res.status} ${await res.text()}`);
    events += batch.length;
  }
  const flush = await fetch(`${baseUrl}/v1/admin/jobs/analytics-flush/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}` },
  });
  if (!flush.ok) throw new Error(`flushing seeded events failed: ${flush.status}`);
  return { events };
}
