import { describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { signAccessToken, tokenSettingsOf } from "../../src/platform/tokens";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import {
  conversation,
  type Frame,
  history,
  markRead,
  openSocket,
  sent,
  settle,
  ticketFor,
  upgrade,
} from "../support/messaging";
import { expectProblem } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();
const isMessage = (f: Frame) => f.type === "message";
const textsOf = (frames: Frame[]) => frames.filter(isMessage).map((f) => f.message?.text);

describe("GET /v1/conversations/{id}/socket", () => {
  it("delivers each member's messages to the others, in order, after they are stored", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const [sa, sb] = await Promise.all([openSocket(a, conv.id), openSocket(b, conv.id)]);
    const sentTexts: string[] = [];
    for (let i = 0; i < 6; i++) {
      const who = i % 2 === 0 ? a : b;
      sentTexts.push(`${who === a ? "a" : "b"}${i}`);
      const msg = await sent(who, conv.id, sentTexts.at(-1) as string);
      // Stored before it is fanned out: the API has it by the time anyone hears of it.
      expect(await deps.db.messages.findOne({ _id: new ObjectId(msg.id) })).not.toBeNull();
    }
    await Promise.all([sa.waitFor(isMessage, 6), sb.waitFor(isMessage, 6)]);
    expect(textsOf(sa.frames)).toEqual(sentTexts);
    expect(textsOf(sb.frames)).toEqual(sentTexts);
    // Each frame names the conversation; the sender's own devices get the sender's view.
    const own = sa.frames.find((f) => f.message?.senderId === a.id);
    expect(own?.conversationId).toBe(conv.id);
    expect(own?.message?.clientMessageId).toBeTruthy();
    expect(sb.frames.find((f) => f.message?.senderId === a.id)?.message?.clientMessageId).toBeNull();
    sa.close();
    sb.close();
  });

  it("fans out edits, deletions and read markers", async () => {
    const [a, b] = await crowd(2);
    await call("PUT", `/v1/users/${a.id}/follow`, { token: b.accessToken });
    const conv = await conversation(a, [b]);
    const sa = await openSocket(a, conv.id);
    const msg = await sent(a, conv.id, "teh");
    await call("PATCH", `/v1/messages/${msg.id}`, { token: a.accessToken, body: { text: "the" } });
    await markRead(b, conv.id, msg.id);
    await call("DELETE", `/v1/messages/${msg.id}`, { token: a.accessToken });
    const [edited] = await sa.waitFor((f) => f.type === "message_edited");
    expect(edited?.message).toMatchObject({ id: msg.id, text: "the" });
    const [read] = await sa.waitFor((f) => f.type === "read");
    expect(read).toMatchObject({ userId: b.id, messageId: msg.id });
    const [deleted] = await sa.waitFor((f) => f.type === "message_deleted");
    expect(deleted?.message).toMatchObject({ id: msg.id });
    sa.close();
  });

  it("stops delivering to a removed member: their socket closes and the next messages never reach it", async () => {
    const [owner, stays, removed] = await crowd(3);
    const group = await conversation(owner, [stays, removed], { title: "Club" });
    const [kept, gone] = await Promise.all([openSocket(stays, group.id), openSocket(removed, group.id)]);
    await sent(owner, group.id, "everyone");
    await gone.waitFor(isMessage);
    expect(
      (await call("DELETE", `/v1/conversations/${group.id}/members/${removed.id}`, { token: owner.accessToken }))
        .status,
    ).toBe(204);
    expect((await gone.closed).code).toBe(4003);
    await sent(owner, group.id, "members only");
    await kept.waitFor((f) => f.message?.text === "members only");
    expect(textsOf(gone.frames)).toEqual(["everyone"]);
    // And they cannot come back in: no ticket, no socket.
    expectProblem(await ticketFor(removed, group.id), 404, "not_found");
    kept.close();
  });

  it("misses nothing across a reconnect: catch up with ?after=, then the new socket carries on", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const first = await openSocket(b, conv.id);
    await sent(a, conv.id, "one");
    const [seen] = await first.waitFor(isMessage);
    first.close();
    await first.closed;
    const whileAway = [await sent(a, conv.id, "two"), await sent(a, conv.id, "three"), await sent(a, conv.id, "four")];
    const again = await openSocket(b, conv.id);
    const caughtUp = await history(b, conv.id, `?after=${seen?.message?.id}`);
    expect(caughtUp.body.items.map((m) => m.id)).toEqual(whileAway.map((m) => m.id));
    await sent(a, conv.id, "five");
    await again.waitFor(isMessage);
    expect(textsOf(again.frames)).toEqual(["five"]);
    again.close();
  });

  it("sends nothing to members blocked with the author, and takes no frame but typing", async () => {
    const [a, b, c] = await crowd(3);
    const group = await conversation(a, [b, c], { title: "Three" });
    await call("PUT", `/v1/users/${a.id}/block`, { token: b.accessToken });
    const [sb, sc] = await Promise.all([openSocket(b, group.id), openSocket(c, group.id)]);
    await sent(a, group.id, "from a");
    await sent(c, group.id, "from c");
    await sb.waitFor((f) => f.message?.text === "from c");
    await sc.waitFor((f) => f.message?.text === "from a");
    expect(textsOf(sb.frames)).toEqual(["from c"]);
    // Typing reaches the others, not those blocked with the typist.
    const sa = await openSocket(a, group.id);
    sa.send(JSON.stringify({ type: "typing" }));
    const [typing] = await sc.waitFor((f) => f.type === "typing");
    expect(typing).toMatchObject({ userId: a.id, conversationId: group.id });
    await settle();
    expect(sb.frames.filter((f) => f.type === "typing")).toEqual([]);
    // Anything else is refused: the socket is no way around the HTTP rules.
    sc.send(JSON.stringify({ type: "message", text: "sneaky" }));
    expect((await sc.closed).code).toBe(1003);
    expect((await history(a, group.id)).body.items.map((m) => m.text)).not.toContain("sneaky");
    sa.close();
    sb.close();
  });

  it("rate-limits typing: frames closer than TYPING_MIN_INTERVAL_MS are dropped", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const [sa, sb] = await Promise.all([openSocket(a, conv.id), openSocket(b, conv.id)]);
    for (let i = 0; i < 5; i++) sa.send(JSON.stringify({ type: "typing" }));
    await sb.waitFor((f) => f.type === "typing");
    await settle(600);
    expect(sb.frames.filter((f) => f.type === "typing")).toHaveLength(1);
    sa.close();
    sb.close();
  });

  it("authenticates with a one-time ticket for that conversation only; never a token in the URL", async () => {
    const [a, b, stranger] = await crowd(3);
    const conv = await conversation(a, [b]);
    const other = await conversation(a, [stranger]);
    expectProblem(await ticketFor(stranger, conv.id), 404, "not_found");
    const ticket = await ticketFor(a, conv.id);
    expect(ticket.status).toBe(201);
    expect(ticket.body.url).not.toContain(a.accessToken);
    // For another conversation: refused (and used up).
    const wrong = await upgrade(`/v1/conversations/${other.id}/socket?ticket=${ticket.body.ticket}`);
    expect(wrong.status).toBe(401);
    const fresh = await ticketFor(a, conv.id);
    expect((await upgrade(fresh.body.url)).status).toBe(101);
    // A second use of the same ticket is refused.
    expect((await upgrade(fresh.body.url)).status).toBe(401);
    expect((await upgrade(`/v1/conversations/${conv.id}/socket?ticket=${"x".repeat(43)}`)).status).toBe(401);
    // Without an upgrade it is a 400, not a socket.
    const plain = await call("GET", `/v1/conversations/${conv.id}/socket?ticket=${"y".repeat(43)}`);
    expectProblem(plain, 400, "validation_failed");
  });

  it("closes a socket when the access token it was opened with expires", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    // A token issued long ago: two seconds of its lifetime left.
    const settings = tokenSettingsOf(deps.config.auth);
    const issued = new Date(Date.now() - (settings.ttlSeconds - 2) * 1000);
    const token = await signAccessToken(
      { sub: a.id, sid: new ObjectId().toHexString(), role: "user", tier: "free" },
      settings,
      issued,
    );
    const short: TestUser = { ...a, accessToken: token };
    const socket = await openSocket(short, conv.id);
    expect((await socket.closed).code).toBe(4001);
  });

  it("is not open to a member of a direct conversation once either blocks the other", async () => {
    const [a, b] = await crowd(2);
    const conv = await conversation(a, [b]);
    const ticket = await ticketFor(b, conv.id);
    await call("PUT", `/v1/users/${b.id}/block`, { token: a.accessToken });
    expect((await upgrade(ticket.body.url)).status).toBe(404);
    expectProblem(await ticketFor(b, conv.id), 404, "not_found");
  });
});
