import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { createDeps } from "../../src/deps";
import { messagePurgeJob } from "../../src/features/messaging/purge";
import { ObjectId } from "../../src/platform/ids";
import { runJob } from "../../src/scheduler/runner";
import { call } from "../support/api";
import { testConfig, testDeps } from "../support/deps";
import {
  type ConversationBody,
  clientId,
  conversation,
  type MessageBody,
  markRead,
  type Page,
  sent,
} from "../support/messaging";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

/** The real app with a clock the test moves: "now" for every rule (expiry, edit window) is this one. */
function appAt(start: number) {
  let now = start;
  const clocked = createDeps(testConfig(), { clock: { now: () => new Date(now) } });
  const app = createApp(() => clocked);
  return {
    deps: clocked,
    fetch: async (request: Request) => app.fetch(request, {}),
    set: (at: number) => {
      now = at;
    },
  };
}

type App = ReturnType<typeof appAt>;

const setTimer = (app: App | undefined, who: TestUser, id: string, seconds: number) =>
  call<ConversationBody>(
    "PATCH",
    `/v1/conversations/${id}`,
    { token: who.accessToken, body: { disappearingSeconds: seconds } },
    app?.fetch,
  );
const sendAt = async (app: App, who: TestUser, id: string, text: string) => {
  const res = await call<MessageBody>(
    "POST",
    `/v1/conversations/${id}/messages`,
    { token: who.accessToken, body: { clientMessageId: clientId(), kind: "text", text } },
    app.fetch,
  );
  if (res.status !== 201) throw new Error(`send failed: ${res.status} ${res.text}`);
  return res.body;
};
const seenAt = async (app: App, who: TestUser, id: string) => {
  const res = await call<Page<MessageBody>>(
    "GET",
    `/v1/conversations/${id}/messages?limit=100`,
    { token: who.accessToken },
    app.fetch,
  );
  return res.body.items.filter((m) => m.kind !== "system").map((m) => m.text);
};
const receipts = async (who: TestUser, id: string) =>
  (
    await call<{ items: { userId: string; messageId: string; readAt: string }[] }>(
      "GET",
      `/v1/conversations/${id}/receipts`,
      { token: who.accessToken },
    )
  ).body.items;

describe("disappearing messages", () => {
  it("snapshots the timer per message: a change applies to new messages only and posts a system message", async () => {
    const [a, b, c] = await crowd(3);
    const conv = await conversation(a, [b]);
    const before = await sent(a, conv.id, "kept");
    expect(fieldPaths(await setTimer(undefined, b, conv.id, 123))).toEqual(["disappearingSeconds"]);
    const changed = await setTimer(undefined, b, conv.id, 300);
    expect(changed.status).toBe(200);
    expect(changed.body.disappearingSeconds).toBe(300);
    const after = await sent(a, conv.id, "fleeting");
    expect(before.timerSeconds).toBe(0);
    expect(after.timerSeconds).toBe(300);
    // The sender's copy expires `timer` after sending; the recipient's has not started.
    expect(Date.parse(after.expiresAt ?? "") - Date.parse(after.createdAt)).toBe(300_000);
    const items = (
      await call<Page<MessageBody>>("GET", `/v1/conversations/${conv.id}/messages`, { token: b.accessToken })
    ).body.items;
    expect(items.find((m) => m.id === after.id)?.expiresAt).toBeNull();
    const note = items.find((m) => m.kind === "system");
    expect(note?.system).toMatchObject({ event: "timer_changed", disappearingSeconds: 300 });
    expect(note?.senderId).toBe(b.id);
    // In a group only the owner and admins change it.
    const group = await conversation(a, [b, c], { title: "G" });
    expectProblem(await setTimer(undefined, c, group.id, 3_600), 403, "forbidden");
    expect((await setTimer(undefined, a, group.id, 3_600)).status).toBe(200);
  });

  it("is gone for each reader at the moment their copy expires: the sender's at send + timer, a reader's at read + timer", async () => {
    const start = Date.now() + 60_000;
    const app = appAt(start);
    const [sender, reader] = await crowd(2);
    const conv = await conversation(sender, [reader]);
    expect((await setTimer(app, sender, conv.id, 300)).status).toBe(200);
    const msg = await sendAt(app, sender, conv.id, "self-destructs");

    app.set(start + 300_000 - 1);
    expect(await seenAt(app, sender, conv.id)).toEqual(["self-destructs"]);
    app.set(start + 300_000);
    expect(await seenAt(app, sender, conv.id)).toEqual([]);
    // Not in the inbox preview either, nor editable.
    const view = await call<ConversationBody>(
      "GET",
      `/v1/conversations/${conv.id}`,
      { token: sender.accessToken },
      app.fetch,
    );
    expect(view.body.lastMessage?.id).not.toBe(msg.id);
    expectProblem(
      await call("PATCH", `/v1/messages/${msg.id}`, { token: sender.accessToken, body: { text: "x" } }, app.fetch),
      404,
      "not_found",
    );
    // The reader has not read it: their copy is still there, an hour later.
    app.set(start + 3_600_000);
    expect(await seenAt(app, reader, conv.id)).toEqual(["self-destructs"]);
    expect(
      (
        await call(
          "POST",
          `/v1/conversations/${conv.id}/read`,
          { token: reader.accessToken, body: { messageId: msg.id } },
          app.fetch,
        )
      ).status,
    ).toBe(204);
    const readAt = start + 3_600_000;
    app.set(readAt + 300_000 - 1);
    expect(await seenAt(app, reader, conv.id)).toEqual(["self-destructs"]);
    app.set(readAt + 300_000);
    expect(await seenAt(app, reader, conv.id)).toEqual([]);

    // Every copy has expired: the purge job deletes it (and nothing before its time).
    const stored = await deps.db.messages.findOne({ _id: new ObjectId(msg.id) });
    expect(stored?.purgeAt?.getTime()).toBe(readAt + 300_000);
    app.set(readAt + 300_000 - 1);
    await runJob(app.deps, messagePurgeJob, { trigger: "test" });
    expect(await deps.db.messages.findOne({ _id: new ObjectId(msg.id) })).not.toBeNull();
    app.set(readAt + 300_000);
    const run = await runJob(app.deps, messagePurgeJob, { trigger: "test" });
    expect(run.outcome).toBe("succeeded");
    expect(await deps.db.messages.findOne({ _id: new ObjectId(msg.id) })).toBeNull();
  });

  it("keeps a message nobody has read, and expires a leaving member's unread copies so it can go", async () => {
    const start = Date.now() + 60_000;
    const app = appAt(start);
    const [owner, reader, silent] = await crowd(3);
    const group = (
      await call<ConversationBody>(
        "POST",
        "/v1/conversations",
        { token: owner.accessToken, body: { memberIds: [reader.id, silent.id], title: "T" } },
        app.fetch,
      )
    ).body;
    await setTimer(app, owner, group.id, 300);
    const msg = await sendAt(app, owner, group.id, "read me");
    await call(
      "POST",
      `/v1/conversations/${group.id}/read`,
      { token: reader.accessToken, body: { messageId: msg.id } },
      app.fetch,
    );
    expect((await deps.db.messages.findOne({ _id: new ObjectId(msg.id) }))?.purgeAt).toBeNull();
    // The silent member leaves: their copy expires now, so the last copy is the reader's.
    app.set(start + 1_000);
    await call(
      "DELETE",
      `/v1/conversations/${group.id}/members/${silent.id}`,
      { token: silent.accessToken },
      app.fetch,
    );
    const stored = await deps.db.messages.findOne({ _id: new ObjectId(msg.id) });
    expect(stored?.purgeAt?.getTime()).toBe(start + 300_000);
  });
});

describe("read receipts", () => {
  it("only ever move forward, even with two devices racing", async () => {
    const [a, b] = await crowd(2);
    await call("PUT", `/v1/users/${a.id}/follow`, { token: b.accessToken });
    const conv = await conversation(a, [b]);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await sent(a, conv.id, `m${i}`)).id);
    const newest = ids.at(-1) as string;
    // Two devices reading at once, in any order: the marker ends at the newest.
    const order = [...ids, ...ids].sort(() => Math.random() - 0.5);
    const reads = await Promise.all(order.map((id) => markRead(b, conv.id, id)));
    expect(reads.every((r) => r.status === 204)).toBe(true);
    expect(await receipts(a, conv.id)).toEqual([{ userId: b.id, messageId: newest, readAt: expect.any(String) }]);
    // A stale device reading an older message changes nothing.
    await markRead(b, conv.id, ids[0] as string);
    expect((await receipts(a, conv.id))[0]?.messageId).toBe(newest);
    const stored = await deps.db.conversations.findOne({ _id: new ObjectId(conv.id) });
    expect(stored?.members.find((m) => m.userId.toHexString() === b.id)?.readId?.toHexString()).toBe(newest);
    // Nobody gets receipts of themselves.
    expect((await receipts(b, conv.id)).map((r) => r.userId)).not.toContain(b.id);
  });

  it("are not shown while receipts are off, for a private read or for a request, yet still drive the reader's own count", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const first = await sent(a, conv.id, "one");
    // A request: B's read is not shown to A.
    await markRead(b, conv.id, first.id);
    expect(await receipts(a, conv.id)).toEqual([]);
    await call("POST", `/v1/conversations/${conv.id}/accept`, { token: b.accessToken });
    const second = await sent(a, conv.id, "two");
    expect((await markRead(b, conv.id, second.id, { private: true })).status).toBe(204);
    expect(await receipts(a, conv.id)).toEqual([]);
    const unread = async () =>
      (await call<ConversationBody>("GET", `/v1/conversations/${conv.id}`, { token: b.accessToken })).body.unreadCount;
    expect(await unread()).toBe(0);
    const off = await call("PATCH", "/v1/me/messaging", { token: b.accessToken, body: { readReceipts: false } });
    expect(off.body).toEqual({ readReceipts: false });
    const third = await sent(a, conv.id, "three");
    expect(await unread()).toBe(1);
    await markRead(b, conv.id, third.id);
    expect(await unread()).toBe(0);
    expect(await receipts(a, conv.id)).toEqual([]);
    await call("PATCH", "/v1/me/messaging", { token: b.accessToken, body: { readReceipts: true } });
    const fourth = await sent(a, conv.id, "four");
    await markRead(b, conv.id, fourth.id);
    expect(await receipts(a, conv.id)).toEqual([{ userId: b.id, messageId: fourth.id, readAt: expect.any(String) }]);
  });

  it("refuse a message that is not in the conversation (404)", async () => {
    const [a, b, c] = await crowd(3);
    const conv = await conversation(a, [b]);
    const elsewhere = await conversation(a, [c]);
    const other = await sent(a, elsewhere.id, "not here");
    expectProblem(await markRead(b, conv.id, other.id), 404, "not_found");
    // A made-up id from the future would mark messages not yet sent as read.
    const future = ObjectId.createFromTime(Math.floor(Date.now() / 1000) + 3_600).toHexString();
    expectProblem(await markRead(b, conv.id, future), 404, "not_found");
  });
});
