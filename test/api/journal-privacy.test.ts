import { describe, expect, it } from "vitest";
import * as consentsPrivacy from "../../src/features/consents/privacy";
import * as journalPrivacy from "../../src/features/journal/privacy";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { signupUser, type TestUser } from "../support/users";

const deps = testDeps();

async function collect(sections: AsyncGenerator<{ section: string; items: unknown[] }>) {
  const out: Record<string, unknown[]> = {};
  for await (const page of sections) out[page.section] = [...(out[page.section] ?? []), ...page.items];
  return out;
}

const write = (u: TestUser, date: string, title: string) =>
  call("POST", "/v1/journal/entries", { token: u.accessToken, body: { date, title, content: "words here" } });

describe("journal, settings and consents in export and erasure", () => {
  it("exports every entry (deleted ones too), insight, setting and consent as plain data, and erases them all, twice", async () => {
    const user = await signupUser();
    await call("PATCH", "/v1/me/settings", {
      token: user.accessToken,
      body: { timezone: "Europe/Lisbon", theme: "dark" },
    });
    expect((await write(user, "2024-05-01", "kept")).status).toBe(201);
    const gone = await write(user, "2024-05-02", "deleted");
    await call("DELETE", `/v1/journal/entries/${(gone.body as { id: string }).id}`, {
      token: user.accessToken,
      headers: { "if-match": '"1"' },
    });
    await call("POST", "/v1/me/consents", { token: user.accessToken, body: { kind: "marketing", granted: true } });
    // Warm a cached view, which erasure must drop too.
    await call("GET", "/v1/journal/calendar?month=2024-05", { token: user.accessToken });
    expect(await deps.redis.exists(deps.keys.journalCalendar(user.id, "2024-05"))).toBe(1);

    const exported = {
      ...(await collect(journalPrivacy.exportSections(deps, user.id))),
      ...(await collect(consentsPrivacy.exportSections(deps, user.id))),
    };
    expect((exported.journalEntries as { title: string; userId: string }[]).map((e) => e.title).sort()).toEqual([
      "deleted",
      "kept",
    ]);
    expect((exported.journalEntries as { userId: string }[])[0]?.userId).toBe(user.id);
    expect(exported.settings).toEqual([{ timezone: "Europe/Lisbon", theme: "dark" }]);
    expect((exported.consents as { kind: string }[]).map((c) => c.kind).sort()).toEqual([
      "data_processing",
      "marketing",
      "marketing",
      "privacy",
      "terms",
    ]);
    expect(JSON.parse(JSON.stringify(exported))).toEqual(exported);

    for (let run = 0; run < 2; run++) {
      await journalPrivacy.eraseUser(deps, user.id);
      await consentsPrivacy.eraseUser(deps, user.id);
    }
    const userId = new ObjectId(user.id);
    expect(await deps.db.journalEntries.find({ userId })).toEqual([]);
    expect(await deps.db.consents.find({ userId })).toEqual([]);
    const doc = await deps.db.users.findOne({ _id: userId });
    expect(doc?.settings).toBeUndefined();
    expect(doc?.consents).toBeUndefined();
    expect(await deps.redis.exists(deps.keys.journalCalendar(user.id, "2024-05"))).toBe(0);
  });
});
