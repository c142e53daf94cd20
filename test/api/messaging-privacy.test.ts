import { describe, expect, it } from "vitest";
import * as messagingPrivacy from "../../src/features/messaging/privacy";
import * as storiesPrivacy from "../../src/features/stories/privacy";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { conversation, history, markRead, sent, textsSeenBy } from "../support/messaging";
import { completedGeneration } from "../support/posts";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

async function collect(
  sections: AsyncGenerator<{ section: string; items: unknown[] }>,
): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for await (const { section, items } of sections) {
    out[section] = [...(out[section] ?? []), ...(items as Record<string, unknown>[])];
  }
  return out;
}

async function story(author: TestUser): Promise<string> {
  const generationId = await completedGeneration(author);
  const res = await call<{ id: string }>("POST", "/v1/stories", { token: author.accessToken, body: { generationId } });
  return res.body.id;
}

describe("messaging and stories export", () => {
  it("holds the person's conversations, the messages they sent (no expired ones) and their stories and views", async () => {
    const [me, friend, other] = await crowd(3);
    const direct = await conversation(me, [friend]);
    const group = await conversation(friend, [me, other], { title: "Pals" });
    await sent(me, direct.id, "mine");
    await sent(friend, direct.id, "theirs");
    await call("PATCH", `/v1/conversations/${group.id}`, {
      token: friend.accessToken,
      body: { disappearingSeconds: 300 },
    });
    const fleeting = await sent(me, group.id, "fleeting");
    const gone = await sent(me, group.id, "already expired");
    await deps.db.messages.updateOne(
      { _id: new ObjectId(gone.id) },
      { $set: { senderExpiresAt: new Date(Date.now() - 1) } },
    );
    const mine = await story(me);
    const theirs = await story(friend);
    await call("POST", `/v1/stories/${theirs}/view`, { token: me.accessToken });

    const data = await collect(messagingPrivacy.exportSections(deps, me.id));
    expect(data.messagingSettings).toEqual([{ readReceipts: true }]);
    expect(data.conversations?.map((c) => c.id).sort()).toEqual([direct.id, group.id].sort());
    expect(data.conversations?.find((c) => c.id === group.id)).toMatchObject({ role: "member", title: "Pals" });
    expect(data.messages?.map((m) => m.text)).toEqual(["mine", "fleeting"]);
    expect(data.messages?.find((m) => m.id === fleeting.id)?.expiresAt).toBe(fleeting.expiresAt);
    const exported = JSON.stringify(data);
    expect(exported).not.toContain("theirs");
    expect(exported).not.toContain(friend.email);

    const stories = await collect(storiesPrivacy.exportSections(deps, me.id));
    expect(stories.stories?.map((s) => s.id)).toEqual([mine]);
    expect(stories.storyViews?.map((v) => v.storyId)).toEqual([theirs]);
  });
});

describe("messaging and stories erasure", () => {
  it("leaves no personal data in the person's messages, takes them out of conversations, and is idempotent", async () => {
    const [leaving, friend, other] = await crowd(3);
    const direct = await conversation(leaving, [friend]);
    const group = await conversation(leaving, [friend, other], { title: "Mine" });
    await call("PATCH", `/v1/conversations/${group.id}/members/${other.id}`, {
      token: leaving.accessToken,
      body: { role: "admin" },
    });
    await sent(leaving, direct.id, "my secret plan");
    const image = await completedGeneration(leaving);
    await call("POST", `/v1/conversations/${group.id}/messages`, {
      token: leaving.accessToken,
      body: { clientMessageId: "erase-me-1", kind: "image", generationId: image, text: "my face" },
    });
    await call("PATCH", `/v1/conversations/${group.id}`, {
      token: leaving.accessToken,
      body: { disappearingSeconds: 300 },
    });
    const fromFriend = await sent(friend, group.id, "unread by the leaver");
    const theirStory = await story(friend);
    await call("POST", `/v1/stories/${theirStory}/view`, { token: leaving.accessToken });
    const ownStory = await story(leaving);
    await call("POST", `/v1/stories/${ownStory}/view`, { token: friend.accessToken });
    await markRead(other, group.id, fromFriend.id);

    for (let run = 0; run < 2; run++) {
      await messagingPrivacy.eraseUser(deps, leaving.id);
      await storiesPrivacy.eraseUser(deps, leaving.id);
    }

    const theirs = await deps.db.messages.find({ senderId: new ObjectId(leaving.id), kind: { $ne: "system" } });
    expect(theirs.length).toBe(2);
    for (const m of theirs) {
      expect(m).toMatchObject({ text: null, media: null, clientMessageId: null, storyId: null });
      expect(m.erasedAt).toBeInstanceOf(Date);
    }
    const raw = JSON.stringify(await deps.db.messages.find({ conversationId: new ObjectId(direct.id) }));
    expect(raw).not.toContain("secret plan");
    // The others see placeholders; the leaver is gone from both conversations, and the admin owns the group.
    expect(await textsSeenBy(friend, direct.id)).toEqual([null]);
    const stored = await deps.db.conversations.find({
      _id: { $in: [new ObjectId(direct.id), new ObjectId(group.id)] },
    });
    for (const c of stored) expect(c.members.map((m) => m.userId.toHexString())).not.toContain(leaving.id);
    expect(
      stored
        .find((c) => c._id.toHexString() === group.id)
        ?.members.find((m) => m.role === "owner")
        ?.userId.toHexString(),
    ).toBe(other.id);
    // Their unread copy expired: once the readers' and sender's copies go, the message can be purged.
    const pending = await deps.db.messages.findOne({ _id: new ObjectId(fromFriend.id) });
    expect(pending?.reads.map((r) => r.userId.toHexString())).toContain(leaving.id);
    // Stories: theirs gone with its views; their view of another's story uncounted.
    expect(await deps.db.stories.findOne({ _id: new ObjectId(ownStory) })).toBeNull();
    expect(await deps.db.storyViews.find({ storyId: new ObjectId(ownStory) })).toEqual([]);
    expect((await deps.db.stories.findOne({ _id: new ObjectId(theirStory) }))?.viewCount).toBe(0);
    expect((await history(friend, group.id)).status).toBe(200);
  });
});
