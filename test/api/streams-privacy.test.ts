import { describe, expect, it } from "vitest";
import { eraseUser, exportSections } from "../../src/features/streams/privacy";
import { ObjectId } from "../../src/platform/ids";
import { call, uniqueIp } from "../support/api";
import { testDeps } from "../support/deps";
import { grant } from "../support/gems";
import { send } from "../support/messaging";
import { act, createdStream, liveInputOf, providerInput, scheduledFor } from "../support/streams";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

async function exported(user: TestUser): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for await (const page of exportSections(deps, user.id)) {
    out[page.section] = [...(out[page.section] ?? []), ...page.items];
  }
  return out;
}

const gift = (from: TestUser, streamId: string, amount: number, message?: string) =>
  call("POST", `/v1/streams/${streamId}/gifts`, {
    token: from.accessToken,
    body: { amount, ...(message ? { message } : {}) },
    headers: { "Idempotency-Key": crypto.randomUUID() },
    ip: uniqueIp(),
  });

describe("export and erasure of live streams", () => {
  it("export the streams a person ran, the gifts they sent and got, and their roles, without provider secrets", async () => {
    const [streamer, fan, moderator] = await crowd(3);
    await grant(fan, 500);
    const live = await createdStream(streamer, { title: "Live one" });
    const later = await createdStream(streamer, { title: "Later one", scheduledFor: scheduledFor(60) });
    await call("PUT", `/v1/streams/${live.id}/moderators/${moderator.id}`, { token: streamer.accessToken });
    expect((await gift(fan, live.id, 40, "bravo")).status).toBe(201);

    const mine = await exported(streamer);
    expect(mine.streams).toEqual([
      expect.objectContaining({
        id: live.id,
        title: "Live one",
        status: "live",
        giftTotal: 40,
        moderatorIds: [moderator.id],
      }),
      expect.objectContaining({ id: later.id, title: "Later one", status: "scheduled" }),
    ]);
    expect(mine.streamGiftsReceived).toEqual([
      expect.objectContaining({ streamId: live.id, senderId: fan.id, amount: 40 }),
    ]);
    const text = JSON.stringify(mine);
    expect(text).not.toContain(liveInputOf(live));
    expect(text).not.toContain(live.ingest?.streamKey ?? "?");
    expect((await exported(fan)).streamGiftsSent).toEqual([
      expect.objectContaining({ streamId: live.id, streamerId: streamer.id, amount: 40, message: "bravo" }),
    ]);
    expect((await exported(moderator)).streamRoles).toEqual([
      { streamId: live.id, role: "moderator", since: expect.any(String) },
    ]);
  });

  it("erase a streamer's streams with their chats, records and live inputs, and take a person off others' streams", async () => {
    const [streamer, fan, other] = await crowd(3);
    await grant(fan, 500);
    const own = await createdStream(streamer);
    const theirs = await createdStream(other);
    await send(fan, own.conversationId, "hi");
    expect((await gift(fan, own.id, 30)).status).toBe(201);
    expect((await gift(fan, theirs.id, 20, "from the fan")).status).toBe(201);
    await call("PUT", `/v1/streams/${theirs.id}/moderators/${streamer.id}`, { token: other.accessToken });
    await call("PUT", `/v1/streams/${theirs.id}/chat-mutes/${fan.id}`, { token: other.accessToken });
    await act(streamer, own.id, "end");

    await eraseUser(deps, streamer.id);
    await eraseUser(deps, streamer.id);
    expect(await deps.db.liveStreams.find({ userId: new ObjectId(streamer.id) })).toEqual([]);
    expect(await deps.db.conversations.findOne({ _id: new ObjectId(own.conversationId) })).toBeNull();
    expect(await deps.db.messages.find({ conversationId: new ObjectId(own.conversationId) })).toEqual([]);
    expect(await deps.db.streamGifts.find({ streamId: new ObjectId(own.id) })).toEqual([]);
    expect(await deps.db.streamGifters.find({ streamId: new ObjectId(own.id) })).toEqual([]);
    expect(await providerInput(liveInputOf(own))).toBeNull();
    const kept = await deps.db.liveStreams.findOne({ _id: new ObjectId(theirs.id) });
    expect(kept?.moderators).toEqual([]);
    const chat = await deps.db.conversations.findOne({ _id: new ObjectId(theirs.conversationId) });
    expect(chat?.members.map((m) => m.userId.toHexString())).toEqual([other.id]);

    // The fan: what they gave stays the streamer's earnings, what they said goes; their mutes go too.
    await eraseUser(deps, fan.id);
    const gifts = await deps.db.streamGifts.find({ streamId: new ObjectId(theirs.id) });
    expect(gifts).toEqual([expect.objectContaining({ amount: 20, message: null })]);
    expect(kept?.giftTotal).toBe(20);
    const unmuted = await deps.db.conversations.findOne({ _id: new ObjectId(theirs.conversationId) });
    expect(unmuted?.stream?.mutedIds).toEqual([]);
  });
});
