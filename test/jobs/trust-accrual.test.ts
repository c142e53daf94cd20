import { describe, expect, it } from "vitest";
import { trustAccrualJob } from "../../src/features/moderation/trust-accrual";
import { ObjectId } from "../../src/platform/ids";
import { utcDay } from "../../src/platform/time";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { crowd, userWithRole } from "../support/users";

const deps = testDeps();
const DAY_MS = 86_400_000;
const { dailyGain, gainCap } = deps.config.moderation.trust;

const trustOf = async (id: string) => (await deps.db.users.findOne({ _id: new ObjectId(id) }))?.trustScore;

describe("trust-accrual job", () => {
  it("raises active, clean accounts a little once a day, up to the cap, and leaves the rest alone", async () => {
    const [active, idle, sanctioned, capped, nearCap, banned] = await crowd(6);
    const moderator = await userWithRole("moderator");
    const today = utcDay(new Date());
    const set = (u: { id: string }, fields: Record<string, unknown>) =>
      deps.db.users.updateOne({ _id: new ObjectId(u.id) }, { $set: { lastActiveDate: today, ...fields } });
    await Promise.all([
      set(active, {}),
      set(idle, { lastActiveDate: utcDay(new Date(Date.now() - 5 * DAY_MS)) }),
      set(sanctioned, {}),
      set(capped, { trustScore: gainCap }),
      set(nearCap, { trustScore: gainCap - dailyGain / 2 }),
      set(banned, { bannedAt: new Date() }),
    ]);
    // A moderator's warning is a sanction: it costs trust and pauses the recovery.
    const warned = await call("POST", "/v1/admin/moderation-actions", {
      token: moderator.accessToken,
      body: { targetType: "user", targetId: sanctioned.id, action: "warn", reason: "spam in comments" },
    });
    expect(warned.status, warned.text).toBe(201);
    const afterWarning = await trustOf(sanctioned.id);
    expect(afterWarning).toBe(50 - deps.config.moderation.trust.actionedPenalty);

    const first = await runJob(deps, trustAccrualJob, { trigger: "test" });
    expect(first.outcome).toBe("succeeded");
    const second = await runJob(deps, trustAccrualJob, { trigger: "test" });
    expect(second.outcome).toBe("succeeded");

    expect(await trustOf(active.id)).toBe(50 + dailyGain); // once, despite two runs
    expect(await trustOf(idle.id)).toBe(50);
    expect(await trustOf(sanctioned.id)).toBe(afterWarning);
    expect(await trustOf(capped.id)).toBe(gainCap);
    expect(await trustOf(nearCap.id)).toBe(gainCap);
    expect(await trustOf(banned.id)).toBe(50);
  });
});
