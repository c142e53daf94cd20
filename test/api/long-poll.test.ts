import { describe, expect, it } from "vitest";
import { call } from "../support/api";
import { appWith } from "../support/deps";
import { type ConversationBody, clientId, type MessageBody, type Page } from "../support/messaging";
import { expectProblem } from "../support/problems";
import { crowd } from "../support/users";

// The app as the Deno entry runs it: no Durable Objects, so conversation events go over Upstash pub/sub
// (REALTIME_UPSTASH_PUBSUB=auto) and catch-up reads can wait for them.
const deno = appWith({});

describe("catch-up without Durable Objects (the Deno entry)", () => {
  it("holds GET …/messages?after=&waitSeconds= until a message is stored, then answers with it", async () => {
    const [a, b] = await crowd(2);
    const conv = (
      await call<ConversationBody>(
        "POST",
        "/v1/conversations",
        { token: a.accessToken, body: { memberIds: [b.id] } },
        deno,
      )
    ).body;
    const first = await call<MessageBody>(
      "POST",
      `/v1/conversations/${conv.id}/messages`,
      { token: a.accessToken, body: { clientMessageId: clientId(), kind: "text", text: "first" } },
      deno,
    );
    const started = Date.now();
    const waiting = call<Page<MessageBody>>(
      "GET",
      `/v1/conversations/${conv.id}/messages?after=${first.body.id}&waitSeconds=20`,
      { token: b.accessToken },
      deno,
    );
    await new Promise((r) => setTimeout(r, 500));
    await call(
      "POST",
      `/v1/conversations/${conv.id}/messages`,
      { token: a.accessToken, body: { clientMessageId: clientId(), kind: "text", text: "second" } },
      deno,
    );
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.items.map((m) => m.text)).toEqual(["second"]);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("answers an empty page when nothing comes within the wait, and has no sockets to offer", async () => {
    const [a, b] = await crowd(2);
    const conv = (
      await call<ConversationBody>(
        "POST",
        "/v1/conversations",
        { token: a.accessToken, body: { memberIds: [b.id] } },
        deno,
      )
    ).body;
    const msg = await call<MessageBody>(
      "POST",
      `/v1/conversations/${conv.id}/messages`,
      { token: a.accessToken, body: { clientMessageId: clientId(), kind: "text", text: "only" } },
      deno,
    );
    const started = Date.now();
    const res = await call<Page<MessageBody>>(
      "GET",
      `/v1/conversations/${conv.id}/messages?after=${msg.body.id}&waitSeconds=1`,
      { token: b.accessToken },
      deno,
    );
    expect(res.body.items).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expectProblem(
      await call("POST", `/v1/conversations/${conv.id}/socket-ticket`, { token: b.accessToken }, deno),
      404,
      "not_found",
    );
  });
});
