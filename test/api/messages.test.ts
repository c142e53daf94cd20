import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call, waits } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import {
  type ConversationBody,
  clientId,
  conversation,
  history,
  type MessageBody,
  markRead,
  type Page,
  send,
  sent,
  textsSeenBy,
} from "../support/messaging";
import { completedGeneration } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

const follow = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/follow`, { token: who.accessToken });
const block = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/block`, { token: who.accessToken });
const inbox = (who: TestUser, which: "primary" | "requests" = "primary") =>
  call<Page<ConversationBody>>("GET", `/v1/conversations?inbox=${which}`, { token: who.accessToken });
const idsIn = async (who: TestUser, which: "primary" | "requests" = "primary") =>
  (await inbox(who, which)).body.items.map((c) => c.id);
const unread = async (who: TestUser) =>
  (
    await call<{ count: number; conversations: number; requests: number }>("GET", "/v1/conversations/unread-count", {
      token: who.accessToken,
    })
  ).body;
const getConversation = (who: TestUser, id: string) =>
  call<ConversationBody>("GET", `/v1/conversations/${id}`, { token: who.accessToken });

describe("POST /v1/conversations", () => {
  it("keeps one direct conversation per pair: a repeat, the other way round, or at the same moment", async () => {
    const [a, b] = await crowd(2);
    const both = await Promise.all([
      call<ConversationBody>("POST", "/v1/conversations", { token: a.accessToken, body: { memberIds: [b.id] } }),
      call<ConversationBody>("POST", "/v1/conversations", { token: b.accessToken, body: { memberIds: [a.id] } }),
      call<ConversationBody>("POST", "/v1/conversations", { token: a.accessToken, body: { memberIds: [b.id] } }),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(both.map((r) => r.body.id)).size).toBe(1);
    expect(both[0]?.body).toMatchObject({ kind: "direct", title: null, disappearingSeconds: 0, lastMessage: null });
    const stored = await deps.db.conversations.find({ "members.userId": new ObjectId(a.id), kind: "direct" });
    expect(stored.filter((c) => c.members.some((m) => m.userId.equals(new ObjectId(b.id))))).toHaveLength(1);
  });

  it("names the field for bad input and answers 404 for unknown or blocked people", async () => {
    const [a, b, c] = await crowd(3);
    const self = await call("POST", "/v1/conversations", { token: a.accessToken, body: { memberIds: [a.id] } });
    expectProblem(self, 400, "validation_failed");
    expect(fieldPaths(self)).toEqual(["memberIds"]);
    const titled = await call("POST", "/v1/conversations", {
      token: a.accessToken,
      body: { memberIds: [b.id], kind: "direct", title: "x" },
    });
    expect(fieldPaths(titled)).toEqual(["title"]);
    const ghost = new ObjectId().toHexString();
    expectProblem(
      await call("POST", "/v1/conversations", { token: a.accessToken, body: { memberIds: [ghost] } }),
      404,
      "not_found",
    );
    await block(c, a);
    for (const [from, to] of [
      [a, c],
      [c, a],
    ] as const) {
      expectProblem(
        await call("POST", "/v1/conversations", { token: from.accessToken, body: { memberIds: [to.id] } }),
        404,
        "not_found",
      );
      expectProblem(
        await call("POST", "/v1/conversations", { token: from.accessToken, body: { memberIds: [to.id, b.id] } }),
        404,
        "not_found",
      );
    }
  });
});

describe("message requests", () => {
  it("puts a first message from someone the recipient does not follow in their requests inbox until accepted", async () => {
    const [sender, recipient] = await crowd(2);
    const conv = await conversation(sender, [recipient]);
    // Nothing shows before the first message.
    expect(await idsIn(recipient, "requests")).toEqual([]);
    await sent(sender, conv.id, "hello there");
    expect(await idsIn(recipient, "requests")).toEqual([conv.id]);
    expect(await idsIn(recipient, "primary")).toEqual([]);
    expect(await idsIn(sender, "primary")).toEqual([conv.id]);
    // A request does not count in the primary badge, but shows as a request.
    expect(await unread(recipient)).toEqual({ count: 0, conversations: 0, requests: 1 });
    expect((await call("POST", `/v1/conversations/${conv.id}/accept`, { token: recipient.accessToken })).status).toBe(
      204,
    );
    expect(await idsIn(recipient, "primary")).toEqual([conv.id]);
    expect(await idsIn(recipient, "requests")).toEqual([]);
    expect(await unread(recipient)).toEqual({ count: 1, conversations: 1, requests: 0 });
  });

  it("sends straight to the primary inbox of someone who follows the sender", async () => {
    const [sender, fan] = await crowd(2);
    await follow(fan, sender);
    const conv = await conversation(sender, [fan]);
    await sent(sender, conv.id, "hi fan");
    expect(await idsIn(fan, "primary")).toEqual([conv.id]);
    expect(await idsIn(fan, "requests")).toEqual([]);
  });

  it("accepts a request when the recipient replies", async () => {
    const [sender, recipient] = await crowd(2);
    const conv = await conversation(sender, [recipient]);
    await sent(sender, conv.id, "hello?");
    await sent(recipient, conv.id, "oh hi");
    expect(await idsIn(recipient, "primary")).toEqual([conv.id]);
  });

  it("declining hides the request and its history; a later message comes as a new request, history gone", async () => {
    const [sender, recipient] = await crowd(2);
    const conv = await conversation(sender, [recipient]);
    await sent(sender, conv.id, "buy my course");
    expect((await call("POST", `/v1/conversations/${conv.id}/decline`, { token: recipient.accessToken })).status).toBe(
      204,
    );
    expect(await idsIn(recipient, "requests")).toEqual([]);
    expect(await textsSeenBy(recipient, conv.id)).toEqual([]);
    // The sender is not told.
    expect(await textsSeenBy(sender, conv.id)).toEqual(["buy my course"]);
    await sent(sender, conv.id, "last chance");
    expect(await idsIn(recipient, "requests")).toEqual([conv.id]);
    expect(await textsSeenBy(recipient, conv.id)).toEqual(["last chance"]);
    // Declining an accepted conversation is a 409.
    await call("POST", `/v1/conversations/${conv.id}/accept`, { token: recipient.accessToken });
    const again = await call("POST", `/v1/conversations/${conv.id}/decline`, { token: recipient.accessToken });
    expect(expectProblem(again, 409, "conflict").reason).toBe("not_a_request");
  });
});

describe("POST /v1/conversations/{id}/messages", () => {
  it("makes exactly one message of concurrent sends with one clientMessageId, and 422 for another body", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const id = clientId();
    const body = { clientMessageId: id, kind: "text", text: "only once" };
    const tries = await Promise.all(
      Array.from({ length: 12 }, () =>
        call<MessageBody>("POST", `/v1/conversations/${conv.id}/messages`, { token: a.accessToken, body }),
      ),
    );
    expect(tries.filter((r) => r.status === 201)).toHaveLength(1);
    expectEvery(tries, (r) => r.status === 201 || r.status === 200);
    expect(new Set(tries.map((r) => r.body.id)).size).toBe(1);
    expect(await deps.db.messages.find({ conversationId: new ObjectId(conv.id), clientMessageId: id })).toHaveLength(1);
    expect(await textsSeenBy(b, conv.id)).toEqual(["only once"]);
    const other = await call("POST", `/v1/conversations/${conv.id}/messages`, {
      token: a.accessToken,
      body: { ...body, text: "something else" },
    });
    expectProblem(other, 422, "idempotency_mismatch");
  });

  it("waits on one MongoDB call when the conversation is cached, and stores before answering", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    await sent(a, conv.id, "warm the cache");
    const res = await send(a, conv.id, "second");
    expect(res.status).toBe(201);
    // Rate limit with standing and relations, then the cached conversation; one transaction in MongoDB.
    expect(waits(res.headers)).toMatchObject({ redis: 2, mongo: 1 });
    expect(await deps.db.messages.findOne({ _id: new ObjectId(res.body.id) })).toMatchObject({ text: "second" });
  });

  it("checks kinds and sizes, naming the field", async () => {
    const [a, b, other] = await crowd(3);
    const conv = await conversation(a, [b]);
    const post = (body: Record<string, unknown>) =>
      call("POST", `/v1/conversations/${conv.id}/messages`, {
        token: a.accessToken,
        body: { clientMessageId: clientId(), ...body },
      });
    expect(fieldPaths(await post({ kind: "text" }))).toEqual(["text"]);
    expect(fieldPaths(await post({ kind: "text", text: "x".repeat(4_001) }))).toEqual(["text"]);
    expect(fieldPaths(await post({ kind: "image" }))).toEqual(["generationId"]);
    expect(fieldPaths(await post({ kind: "image", mediaId: new ObjectId().toHexString() }))).toEqual(["mediaId"]);
    expect(fieldPaths(await post({ kind: "text", text: "hi", clientMessageId: "has spaces" }))).toEqual([
      "clientMessageId",
    ]);
    // An image is one of the sender's own completed generations.
    const theirs = await completedGeneration(other);
    expectProblem(await post({ kind: "image", generationId: theirs }), 404, "not_found");
    const mine = await completedGeneration(a);
    const image = await post({ kind: "image", generationId: mine, text: "look" });
    expect(image.status).toBe(201);
    expect(image.body).toMatchObject({ kind: "image", text: "look", mediaUrl: `https://cdn.example.test/${mine}.png` });
  });

  it("is a 404 for people outside the conversation", async () => {
    const [a, b, stranger] = await crowd(3);
    const conv = await conversation(a, [b]);
    expectProblem(await send(stranger, conv.id, "let me in"), 404, "not_found");
    expectProblem(await history(stranger, conv.id), 404, "not_found");
    expectProblem(await getConversation(stranger, conv.id), 404, "not_found");
    expectProblem(await send(a, new ObjectId().toHexString(), "nowhere"), 404, "not_found");
  });
});

describe("GET /v1/conversations/{id}/messages", () => {
  it("pages history newest first with before, and catches up oldest first with after, without gaps", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const texts = Array.from({ length: 7 }, (_, i) => `m${i}`);
    const ids: string[] = [];
    for (const [i, text] of texts.entries()) ids.push((await sent(i % 2 === 0 ? a : b, conv.id, text)).id);

    const older: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<typeof history>> = await history(
        b,
        conv.id,
        `?limit=3${cursor ? `&before=${cursor}` : ""}`,
      );
      older.push(...res.body.items.map((m) => m.text ?? ""));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(older).toEqual([...texts].reverse());

    const newer: string[] = [];
    cursor = ids[1] as string;
    do {
      const res: Awaited<ReturnType<typeof history>> = await history(a, conv.id, `?limit=2&after=${cursor}`);
      newer.push(...res.body.items.map((m) => m.text ?? ""));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(newer).toEqual(texts.slice(2));
    const both = await history(a, conv.id, `?before=${ids[3]}&after=${ids[1]}`);
    expect(fieldPaths(both)).toEqual(["before"]);
  });

  it("shows the retry key to the sender only", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const mine = await sent(a, conv.id, "x");
    expect(mine.clientMessageId).toBeTruthy();
    expect((await history(a, conv.id)).body.items[0]?.clientMessageId).toBe(mine.clientMessageId);
    expect((await history(b, conv.id)).body.items[0]?.clientMessageId).toBeNull();
  });
});

describe("PATCH and DELETE /v1/messages/{id}", () => {
  it("lets the sender edit text within the window, not others, not after it", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const msg = await sent(a, conv.id, "helo");
    const edited = await call<MessageBody>("PATCH", `/v1/messages/${msg.id}`, {
      token: a.accessToken,
      body: { text: "hello" },
    });
    expect(edited.status).toBe(200);
    expect(edited.body.editedAt).toBeTruthy();
    expect(await textsSeenBy(b, conv.id)).toEqual(["hello"]);
    expectProblem(
      await call("PATCH", `/v1/messages/${msg.id}`, { token: b.accessToken, body: { text: "hijack" } }),
      403,
      "forbidden",
    );
    await deps.db.messages.updateOne(
      { _id: new ObjectId(msg.id) },
      { $set: { createdAt: new Date(Date.now() - 16 * 60_000) } },
    );
    const late = await call("PATCH", `/v1/messages/${msg.id}`, { token: a.accessToken, body: { text: "too late" } });
    expect(expectProblem(late, 409, "conflict").reason).toBe("edit_window_closed");
  });

  it("deletes for everyone, leaving a placeholder, and only the sender may in a direct conversation", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const msg = await sent(a, conv.id, "oops, wrong chat");
    expectProblem(await call("DELETE", `/v1/messages/${msg.id}`, { token: b.accessToken }), 403, "forbidden");
    const gone = await Promise.all([
      call("DELETE", `/v1/messages/${msg.id}`, { token: a.accessToken }),
      call("DELETE", `/v1/messages/${msg.id}`, { token: a.accessToken }),
    ]);
    expectEvery(gone, (r) => r.status === 204);
    for (const who of [a, b]) {
      const [item] = (await history(who, conv.id)).body.items;
      expect(item).toMatchObject({ id: msg.id, text: null, mediaUrl: null });
      expect(item?.deletedAt).toBeTruthy();
    }
    const stored = await deps.db.messages.findOne({ _id: new ObjectId(msg.id) });
    expect(stored?.text).toBeNull();
  });
});

describe("groups", () => {
  it("has an owner, admins and members: who may add, remove and change what", async () => {
    const [owner, admin, member, newcomer, later] = await crowd(5);
    const group = await conversation(owner, [admin, member], { title: "Trip" });
    expect(group).toMatchObject({ kind: "group", title: "Trip", role: "owner" });
    expect(group.members.map((m) => m.role).sort()).toEqual(["member", "member", "owner"]);
    const roleOf = (who: TestUser, role: string) =>
      call(`PATCH`, `/v1/conversations/${group.id}/members/${who.id}`, { token: owner.accessToken, body: { role } });
    expect((await roleOf(admin, "admin")).status).toBe(200);
    // A plain member can neither add nor rename.
    expectProblem(
      await call("POST", `/v1/conversations/${group.id}/members`, {
        token: member.accessToken,
        body: { userIds: [newcomer.id] },
      }),
      403,
      "forbidden",
    );
    expectProblem(
      await call("PATCH", `/v1/conversations/${group.id}`, { token: member.accessToken, body: { title: "Mine" } }),
      403,
      "forbidden",
    );
    const added = await call<ConversationBody>("POST", `/v1/conversations/${group.id}/members`, {
      token: admin.accessToken,
      body: { userIds: [newcomer.id] },
    });
    expect(added.status).toBe(200);
    expect(added.body.members.map((m) => m.user.id)).toContain(newcomer.id);
    // An admin removes plain members, not the owner.
    expectProblem(
      await call("DELETE", `/v1/conversations/${group.id}/members/${owner.id}`, { token: admin.accessToken }),
      403,
      "forbidden",
    );
    expectProblem(
      await call("DELETE", `/v1/conversations/${group.id}/members/${admin.id}`, { token: member.accessToken }),
      403,
      "forbidden",
    );
    expect(
      (await call("DELETE", `/v1/conversations/${group.id}/members/${newcomer.id}`, { token: admin.accessToken }))
        .status,
    ).toBe(204);
    expectProblem(await history(newcomer, group.id), 404, "not_found");
    // The owner leaves: the admin takes over.
    expect(
      (await call("DELETE", `/v1/conversations/${group.id}/members/${owner.id}`, { token: owner.accessToken })).status,
    ).toBe(204);
    const after = await getConversation(admin, group.id);
    expect(after.body.role).toBe("owner");
    expect(after.body.members.map((m) => m.user.id).sort()).toEqual([admin.id, member.id].sort());
    const notes = (await history(member, group.id, "?limit=50")).body.items.filter((m) => m.kind === "system");
    expect(notes.map((n) => n.system?.event).reverse()).toEqual([
      "created",
      "members_added",
      "member_removed",
      "member_left",
    ]);
    // Adding to a group someone blocked with the adder is a 404.
    await call("PUT", `/v1/users/${admin.id}/block`, { token: later.accessToken });
    expectProblem(
      await call("POST", `/v1/conversations/${group.id}/members`, {
        token: admin.accessToken,
        body: { userIds: [later.id] },
      }),
      404,
      "not_found",
    );
  });

  it("shows a new member only what was said from the moment they were added", async () => {
    const [owner, first, newcomer] = await crowd(3);
    const group = await conversation(owner, [first], { title: "Club" });
    await sent(owner, group.id, "before you came");
    await call("POST", `/v1/conversations/${group.id}/members`, {
      token: owner.accessToken,
      body: { userIds: [newcomer.id] },
    });
    await sent(first, group.id, "welcome");
    expect(await textsSeenBy(newcomer, group.id)).toEqual(["welcome"]);
    const items = (await history(newcomer, group.id)).body.items;
    expect(items.at(-1)?.system?.event).toBe("members_added");
  });

  it("caps members (MESSAGING_MAX_MEMBERS), also when admins add at the same time", async () => {
    const { appWith } = await import("../support/deps");
    const app = appWith({ MESSAGING_MAX_MEMBERS: "4" });
    const [owner, a, b, c, d] = await crowd(5);
    const group = (
      await call<ConversationBody>(
        "POST",
        "/v1/conversations",
        { token: owner.accessToken, body: { memberIds: [a.id], title: "Small" } },
        app,
      )
    ).body;
    expect(
      fieldPaths(
        await call(
          "POST",
          "/v1/conversations",
          { token: owner.accessToken, body: { memberIds: [a.id, b.id, c.id, d.id] } },
          app,
        ),
      ),
    ).toEqual(["memberIds"]);
    const adds = await Promise.all(
      [
        [b, c],
        [d, c],
      ].map((people) =>
        call(
          "POST",
          `/v1/conversations/${group.id}/members`,
          { token: owner.accessToken, body: { userIds: people.map((p) => p.id) } },
          app,
        ),
      ),
    );
    expect(adds.map((r) => r.status).sort()).toEqual([200, 409]);
    const stored = await deps.db.conversations.findOne({ _id: new ObjectId(group.id) });
    expect(stored?.members.length).toBeLessThanOrEqual(4);
  });
});

describe("blocks", () => {
  it("closes a direct conversation for both (404) and hides a blocked member's messages in groups", async () => {
    const [a, b, c] = await crowd(3);
    const direct = await conversation(a, [b]);
    await sent(a, direct.id, "before");
    const group = await conversation(a, [b, c], { title: "G" });
    await sent(b, group.id, "from b, before");
    await block(b, a);
    for (const [me] of [[a], [b]] as const) {
      expectProblem(await send(me, direct.id, "after"), 404, "not_found");
      expectProblem(await history(me, direct.id), 404, "not_found");
      expectProblem(await getConversation(me, direct.id), 404, "not_found");
      expect(await idsIn(me)).not.toContain(direct.id);
    }
    await sent(b, group.id, "from b, after");
    await sent(c, group.id, "from c");
    // Each stops seeing the other's messages in the group; the third member sees everything.
    expect(await textsSeenBy(a, group.id)).toEqual(["from c"]);
    expect(await textsSeenBy(c, group.id)).toEqual(["from c", "from b, after", "from b, before"]);
    // And nothing from the blocked person counts as unread.
    const view = (await getConversation(a, group.id)).body;
    expect(view.unreadCount).toBe(1);
  });
});

describe("unread counts", () => {
  it("counts others' messages after the read marker, per conversation and in total", async () => {
    const [me, x, y] = await crowd(3);
    await follow(me, x);
    await follow(me, y);
    const withX = await conversation(x, [me]);
    const withY = await conversation(y, [me]);
    const fromX = [await sent(x, withX.id, "1"), await sent(x, withX.id, "2"), await sent(x, withX.id, "3")];
    await sent(y, withY.id, "a");
    // Replying reads what came before; one's own messages never count.
    await sent(me, withY.id, "my reply");
    await sent(y, withY.id, "b");
    expect(await unread(me)).toEqual({ count: 4, conversations: 2, requests: 0 });
    const list = (await inbox(me)).body.items;
    expect(Object.fromEntries(list.map((c) => [c.id, c.unreadCount]))).toEqual({ [withX.id]: 3, [withY.id]: 1 });
    expect(list[0]?.id).toBe(withY.id);
    expect(list[0]?.lastMessage?.text).toBe("b");
    await markRead(me, withX.id, fromX[1]?.id as string);
    expect((await getConversation(me, withX.id)).body.unreadCount).toBe(1);
    expect(await unread(me)).toEqual({ count: 2, conversations: 2, requests: 0 });
  });
});

describe("message notifications", () => {
  interface Notice {
    type: string;
    title: string;
    read: boolean;
    aggregationKey: string;
    aggregationCount: number;
    actionPayload: Record<string, string>;
  }
  const notices = async (who: TestUser) =>
    (await call<Page<Notice>>("GET", "/v1/notifications", { token: who.accessToken })).body.items.filter(
      (n) => n.type === "message",
    );
  // Notifications are written after the answer: wait for them to land.
  const eventually = async <T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> => {
    for (let i = 0; i < 40; i++) {
      const value = await read();
      if (ok(value)) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
    return read();
  };

  it("groups new messages per conversation, and a new message re-opens the group as unread", async () => {
    const [me, friend, other, muted] = await crowd(4);
    await follow(me, friend);
    await follow(me, other);
    const group = await conversation(friend, [me, other, muted], { title: "Pals" });
    await call("PUT", `/v1/users/${muted.id}/mute`, { token: me.accessToken });
    await sent(friend, group.id, "one");
    await sent(friend, group.id, "two");
    await sent(other, group.id, "three");
    await sent(muted, group.id, "ignored");
    const [grouped] = await eventually(
      () => notices(me),
      (n) => n[0]?.aggregationCount === 2,
    );
    expect(grouped).toMatchObject({
      aggregationKey: `message:${group.id}`,
      aggregationCount: 2,
      read: false,
      actionPayload: { screen: "conversation", conversationId: group.id },
    });
    expect(grouped?.title).toMatch(/and 1 other sent you a message$/);
    expect(await notices(me)).toHaveLength(1);
    // The sender hears nothing of their own messages.
    expect(await notices(friend)).toHaveLength(1);
    await call("POST", "/v1/notifications/read", { token: me.accessToken, body: { all: true } });
    await sent(friend, group.id, "four");
    const [reopened] = await eventually(
      () => notices(me),
      (n) => n[0]?.read === false,
    );
    expect(reopened).toMatchObject({ read: false, aggregationCount: 2 });
  });
});
