import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { appWith, testDeps } from "../support/deps";
import {
  type ConversationBody,
  clientId,
  history,
  type MessageBody,
  openSocket,
  send,
  settle,
} from "../support/messaging";
import { expectProblem, fieldPaths } from "../support/problems";
import { act, createdStream, getStream, type StreamBody } from "../support/streams";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const SLOW_MODE_S = deps.config.streams.chatSlowModeSeconds;

const texts = async (who: TestUser, conversationId: string) =>
  (await history(who, conversationId, "?limit=100")).body.items.filter((m) => m.kind !== "system").map((m) => m.text);
const staffCall = (who: TestUser, method: string, path: string) => call(method, path, { token: who.accessToken });

/** The app with slow mode off, for tests about other rules. */
const noSlowMode = appWith({ STREAM_CHAT_SLOW_MODE_SECONDS: "0" });
const sendWith = (who: TestUser, conversationId: string, text: string, fetcher = noSlowMode) =>
  call<MessageBody>(
    "POST",
    `/v1/conversations/${conversationId}/messages`,
    { token: who.accessToken, body: { clientMessageId: clientId(), kind: "text", text } },
    fetcher,
  );

describe("a stream's live chat", () => {
  it("is a conversation its whole audience reads and writes in, kept out of inboxes and notifications", async () => {
    const [streamer, viewer, other] = await crowd(3);
    const stream = await createdStream(streamer);
    const chat = await call<ConversationBody>("GET", `/v1/conversations/${stream.conversationId}`, {
      token: viewer.accessToken,
    });
    expect(chat.status, chat.text).toBe(200);
    expect(chat.body).toMatchObject({ kind: "stream", title: stream.title, role: "member", unreadCount: 0 });
    expect(chat.body.members.map((m) => [m.user.id, m.role])).toEqual([[streamer.id, "owner"]]);
    expect((await send(viewer, stream.conversationId, "hello from the crowd")).status).toBe(201);
    expect((await send(streamer, stream.conversationId, "welcome!")).status).toBe(201);
    for (const who of [viewer, other, streamer]) {
      expect(await texts(who, stream.conversationId)).toEqual(["welcome!", "hello from the crowd"]);
    }
    for (const who of [viewer, streamer]) {
      const inbox = await call<{ items: { id: string }[] }>("GET", "/v1/conversations", { token: who.accessToken });
      expect(inbox.body.items.map((c) => c.id)).not.toContain(stream.conversationId);
    }
    await settle();
    expect(await deps.db.notifications.find({ userId: new ObjectId(streamer.id), type: "message" })).toEqual([]);
    // It is the stream's: group management does not apply.
    const adding = await call("POST", `/v1/conversations/${stream.conversationId}/members`, {
      token: streamer.accessToken,
      body: { userIds: [other.id] },
    });
    expect(expectProblem(adding, 409, "conflict").reason).toBe("stream_chat");
    expect(
      fieldPaths(
        await call("POST", `/v1/conversations/${stream.conversationId}/messages`, {
          token: viewer.accessToken,
          body: { clientMessageId: clientId(), kind: "image", generationId: new ObjectId().toHexString() },
        }),
      ),
    ).toEqual(["kind"]);
  });

  it("lets a viewer send one message per slow-mode interval, hosts any number, and gives a retry its message", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer);
    const first = await call<MessageBody>("POST", `/v1/conversations/${stream.conversationId}/messages`, {
      token: viewer.accessToken,
      body: { clientMessageId: "slow-1", kind: "text", text: "first" },
    });
    expect(first.status).toBe(201);
    const tooSoon = await send(viewer, stream.conversationId, "second");
    expectProblem(tooSoon, 429, "rate_limited");
    const retryAfter = Number(tooSoon.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(SLOW_MODE_S);
    // The app retrying the message it already sent gets it back, slow mode or not.
    const retried = await call<MessageBody>("POST", `/v1/conversations/${stream.conversationId}/messages`, {
      token: viewer.accessToken,
      body: { clientMessageId: "slow-1", kind: "text", text: "first" },
    });
    expect(retried.status).toBe(200);
    expect(retried.body.id).toBe(first.body.id);
    for (let i = 0; i < 3; i++) expect((await send(streamer, stream.conversationId, `host ${i}`)).status).toBe(201);
    await new Promise((r) => setTimeout(r, SLOW_MODE_S * 1000 + 100));
    expect((await send(viewer, stream.conversationId, "second, later")).status).toBe(201);
    expect(await texts(streamer, stream.conversationId)).toEqual([
      "second, later",
      "host 2",
      "host 1",
      "host 0",
      "first",
    ]);
  });

  it("lets the streamer and their moderators remove messages and mute a viewer for the stream", async () => {
    const [streamer, moderator, viewer, bystander] = await crowd(4);
    const stream = await createdStream(streamer);
    const cid = stream.conversationId;
    const rude = await sendWith(viewer, cid, "rude");
    expectProblem(await staffCall(bystander, "DELETE", `/v1/messages/${rude.body.id}`), 403, "forbidden");
    expectProblem(
      await staffCall(moderator, "PUT", `/v1/streams/${stream.id}/moderators/${moderator.id}`),
      403,
      "forbidden",
    );
    expect((await staffCall(streamer, "PUT", `/v1/streams/${stream.id}/moderators/${moderator.id}`)).status).toBe(204);
    expect((await staffCall(moderator, "DELETE", `/v1/messages/${rude.body.id}`)).status).toBe(204);
    const shown = (await history(bystander, cid, "?limit=10")).body.items.find((m) => m.id === rude.body.id);
    expect(shown).toMatchObject({ text: null });
    expect(shown?.deletedAt).not.toBeNull();

    // Muted: still reads, cannot send; staff cannot be muted, and viewers cannot mute.
    expect((await staffCall(moderator, "PUT", `/v1/streams/${stream.id}/chat-mutes/${viewer.id}`)).status).toBe(204);
    expectProblem(await sendWith(viewer, cid, "again"), 403, "forbidden");
    expect((await history(viewer, cid)).status).toBe(200);
    expectProblem(
      await staffCall(moderator, "PUT", `/v1/streams/${stream.id}/chat-mutes/${streamer.id}`),
      403,
      "forbidden",
    );
    expectProblem(
      await staffCall(bystander, "PUT", `/v1/streams/${stream.id}/chat-mutes/${moderator.id}`),
      403,
      "forbidden",
    );
    expect((await sendWith(bystander, cid, "not muted")).status).toBe(201);
    expect((await staffCall(streamer, "DELETE", `/v1/streams/${stream.id}/chat-mutes/${viewer.id}`)).status).toBe(204);
    expect((await sendWith(viewer, cid, "sorry")).status).toBe(201);

    // A dismissed moderator moderates no more.
    const later = await sendWith(viewer, cid, "later");
    expect((await staffCall(streamer, "DELETE", `/v1/streams/${stream.id}/moderators/${moderator.id}`)).status).toBe(
      204,
    );
    expectProblem(await staffCall(moderator, "DELETE", `/v1/messages/${later.body.id}`), 403, "forbidden");
    // The mute is the stream's own: another stream of the streamer's chat lets the viewer speak.
    await staffCall(streamer, "PUT", `/v1/streams/${stream.id}/chat-mutes/${viewer.id}`);
    const next = await createdStream(streamer);
    expect((await sendWith(viewer, next.conversationId, "hi")).status).toBe(201);
  });

  it("refuses a send decided on a stale copy of the chat once the mute is stored (the version guards the write)", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer);
    const cid = stream.conversationId;
    // The chat's state is now cached (as every send reads it).
    expect((await sendWith(viewer, cid, "warm the cache")).status).toBe(201);
    // A mute whose cache drop was lost (Redis failing at that moment): the cached copy still says "not muted".
    await deps.db.conversations.updateOne(
      { _id: new ObjectId(cid) },
      { $addToSet: { "stream.mutedIds": new ObjectId(viewer.id) }, $inc: { version: 1 } },
    );
    expectProblem(await sendWith(viewer, cid, "after"), 403, "forbidden");
    expect(await deps.db.messages.find({ conversationId: new ObjectId(cid), text: "after" })).toEqual([]);
    // Racing sends and a mute: each send is stored or refused whole, and once the mute answered none gets in.
    const [muted, ...sends] = await Promise.all([
      staffCall(streamer, "DELETE", `/v1/streams/${stream.id}/chat-mutes/${viewer.id}`),
      ...Array.from({ length: 5 }, (_, i) => sendWith(viewer, cid, `burst ${i}`)),
    ]);
    expect(muted?.status).toBe(204);
    expect(sends.every((s) => s.status === 201 || s.status === 403)).toBe(true);
    const stored = await deps.db.messages.find({ conversationId: new ObjectId(cid), text: /^burst / });
    expect(stored.length).toBe(sends.filter((s) => s.status === 201).length);
  });

  it("stays readable after the stream ends, and nobody writes in it any more", async () => {
    const [streamer, viewer] = await crowd(2);
    const stream = await createdStream(streamer);
    await sendWith(viewer, stream.conversationId, "what a show");
    await act(streamer, stream.id, "end");
    for (const who of [viewer, streamer]) {
      const refused = await sendWith(who, stream.conversationId, "too late");
      expect(expectProblem(refused, 409, "conflict").reason).toBe("chat_closed");
    }
    expect(await texts(viewer, stream.conversationId)).toEqual(["what a show"]);
  });

  it("is closed to people blocked with the streamer (404), and leaves out people blocked with each other", async () => {
    const [streamer, blocked, a, b] = await crowd(4);
    const stream = await createdStream(streamer);
    const cid = stream.conversationId;
    await call("PUT", `/v1/users/${blocked.id}/block`, { token: streamer.accessToken });
    expectProblem(await call("GET", `/v1/conversations/${cid}`, { token: blocked.accessToken }), 404, "not_found");
    expectProblem(await sendWith(blocked, cid, "hi"), 404, "not_found");
    expectProblem(await history(blocked, cid), 404, "not_found");
    await call("PUT", `/v1/users/${b.id}/block`, { token: a.accessToken });
    await sendWith(b, cid, "from b");
    await sendWith(streamer, cid, "from the host");
    expect(await texts(a, cid)).toEqual(["from the host"]);
  });

  it("carries messages and the end over the stream chat's socket to the audience, never to someone blocked", async () => {
    const [streamer, watcher, talker, blocker] = await crowd(4);
    const stream = await createdStream(streamer);
    const cid = stream.conversationId;
    await call("PUT", `/v1/users/${talker.id}/block`, { token: blocker.accessToken });
    const [watching, blocking] = await Promise.all([openSocket(watcher, cid), openSocket(blocker, cid)]);
    // Through the Worker itself, whose rooms are Durable Objects (an app built in a test has none).
    const sent = await send(talker, cid, "live!");
    const [frame] = await watching.waitFor((f) => f.type === "message");
    expect(frame?.message).toMatchObject({ id: sent.body.id, text: "live!", senderId: talker.id });
    // Typing frames mean nothing in a crowd: dropped, and the socket stays open.
    watching.send(JSON.stringify({ type: "typing" }));
    await act(streamer, stream.id, "end");
    await watching.waitFor((f) => f.type === "stream_status" && f.status === "ended");
    await blocking.waitFor((f) => f.type === "stream_status" && f.status === "ended");
    expect(blocking.frames.filter((f) => f.type === "message")).toEqual([]);
    expect(watching.frames.filter((f) => f.type === "typing")).toEqual([]);
    expect(watching.isClosed()).toBe(false);
    watching.close();
    blocking.close();
  });
});

describe("co-hosts", () => {
  it("are invited by the streamer, accept, moderate the chat, and can leave", async () => {
    const [streamer, cohost, viewer] = await crowd(3);
    const stream = await createdStream(streamer);
    expectProblem(await staffCall(viewer, "PUT", `/v1/streams/${stream.id}/cohosts/${cohost.id}`), 403, "forbidden");
    const invited = await call<StreamBody>("PUT", `/v1/streams/${stream.id}/cohosts/${cohost.id}`, {
      token: streamer.accessToken,
    });
    expect(invited.status, invited.text).toBe(200);
    expect(invited.body.participants).toEqual([
      expect.objectContaining({ user: expect.objectContaining({ id: cohost.id }), state: "invited" }),
    ]);
    // The invitation shows to the two of them only.
    expect((await getStream(viewer, stream.id)).body.participants).toEqual([]);
    expect((await getStream(cohost, stream.id)).body.participants.map((p) => p.state)).toEqual(["invited"]);
    const note = await deps.db.notifications.findOne({
      userId: new ObjectId(cohost.id),
      aggregationKey: `cohost:${stream.id}`,
    });
    expect(note?.actionPayload).toEqual({ screen: "stream", streamId: stream.id });
    expectProblem(await staffCall(viewer, "POST", `/v1/streams/${stream.id}/cohosts/accept`), 404, "not_found");

    const accepted = await call<StreamBody>("POST", `/v1/streams/${stream.id}/cohosts/accept`, {
      token: cohost.accessToken,
    });
    expect(accepted.body).toMatchObject({ viewer: { role: "cohost" } });
    expect((await getStream(viewer, stream.id)).body.participants.map((p) => [p.user.id, p.state])).toEqual([
      [cohost.id, "accepted"],
    ]);
    const chat = await call<ConversationBody>("GET", `/v1/conversations/${stream.conversationId}`, {
      token: viewer.accessToken,
    });
    expect(chat.body.members.map((m) => [m.user.id, m.role])).toEqual([
      [streamer.id, "owner"],
      [cohost.id, "admin"],
    ]);
    const message = await sendWith(viewer, stream.conversationId, "spam");
    expect((await staffCall(cohost, "DELETE", `/v1/messages/${message.body.id}`)).status).toBe(204);

    expect((await staffCall(cohost, "DELETE", `/v1/streams/${stream.id}/cohosts/${cohost.id}`)).status).toBe(204);
    expect((await getStream(viewer, stream.id)).body.participants).toEqual([]);
    const again = await sendWith(viewer, stream.conversationId, "spam again");
    expectProblem(await staffCall(cohost, "DELETE", `/v1/messages/${again.body.id}`), 403, "forbidden");
  });

  it("are at most STREAM_MAX_COHOSTS, never someone blocked with the streamer, and end with the stream", async () => {
    const max = deps.config.streams.maxCohosts;
    const [streamer, blocked, ...people] = (await crowd(max + 3)) as [TestUser, TestUser, ...TestUser[]];
    const stream = await createdStream(streamer);
    const invite = (u: TestUser) => staffCall(streamer, "PUT", `/v1/streams/${stream.id}/cohosts/${u.id}`);
    // Invited all at once: the staff version decides, so none is lost and the cap holds.
    const answers = await Promise.all(people.map(invite));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(max);
    expect(answers.filter((a) => a.status === 409).map((a) => (a.body as { reason?: string }).reason)).toEqual([
      "cohost_limit",
    ]);
    expect((await getStream(streamer, stream.id)).body.participants).toHaveLength(max);
    await call("PUT", `/v1/users/${streamer.id}/block`, { token: blocked.accessToken });
    expectProblem(await invite(blocked), 404, "not_found");
    expect(fieldPaths(await invite(streamer))).toEqual(["userId"]);
    await act(streamer, stream.id, "end");
    expect(expectProblem(await invite(people[0] as TestUser), 409, "conflict").reason).toBe("stream_over");
  });
});
