import { describe, expect, it } from "vitest";
import { storyPurgeJob } from "../../src/features/stories/purge";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { expectEvery } from "../support/expect";
import { runUntilDone } from "../support/jobs";
import type { ConversationBody, MessageBody, Page } from "../support/messaging";
import { completedGeneration } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, type TestUser } from "../support/users";

const deps = testDeps();

interface StoryBody {
  id: string;
  userId: string;
  mediaUrl: string;
  caption: string | null;
  createdAt: string;
  expiresAt: string;
  viewCount?: number;
  seen?: boolean;
}
interface Tray {
  items: { user: { id: string }; stories: StoryBody[]; unseen: boolean }[];
}

async function story(author: TestUser, caption?: string): Promise<StoryBody> {
  const generationId = await completedGeneration(author);
  const res = await call<StoryBody>("POST", "/v1/stories", {
    token: author.accessToken,
    body: { generationId, ...(caption ? { caption } : {}) },
  });
  if (res.status !== 201) throw new Error(`story failed: ${res.status} ${res.text}`);
  return res.body;
}
const follow = (who: TestUser, target: TestUser) =>
  call("PUT", `/v1/users/${target.id}/follow`, { token: who.accessToken });
const view = (who: TestUser, id: string) => call("POST", `/v1/stories/${id}/view`, { token: who.accessToken });
const tray = async (who: TestUser) => (await call<Tray>("GET", "/v1/stories/tray", { token: who.accessToken })).body;
const storiesOf = (author: TestUser, viewer?: TestUser) =>
  call<{ items: StoryBody[] }>("GET", `/v1/users/${author.id}/stories`, { token: viewer?.accessToken });
const expire = (id: string) =>
  deps.db.stories.updateOne({ _id: new ObjectId(id) }, { $set: { expiresAt: new Date(Date.now() - 1) } });

describe("POST /v1/stories", () => {
  it("posts one of the author's generations for STORY_TTL_HOURS", async () => {
    const [author, other] = await crowd(2);
    const posted = await story(author, "sunset");
    expect(posted).toMatchObject({ userId: author.id, caption: "sunset", viewCount: 0 });
    expect(Date.parse(posted.expiresAt) - Date.parse(posted.createdAt)).toBe(24 * 3_600_000);
    const theirs = await completedGeneration(other);
    expectProblem(
      await call("POST", "/v1/stories", { token: author.accessToken, body: { generationId: theirs } }),
      404,
      "not_found",
    );
    const upload = await call("POST", "/v1/stories", {
      token: author.accessToken,
      body: { mediaId: new ObjectId().toHexString() },
    });
    expect(fieldPaths(upload)).toEqual(["mediaId"]);
  });
});

describe("GET /v1/stories/tray", () => {
  it("shows the caller's own stories first, then followed people with unseen stories before seen ones", async () => {
    const [me, seenOne, unseenOne, stranger, muted] = await crowd(5);
    for (const p of [seenOne, unseenOne, muted]) await follow(me, p);
    const mine = await story(me);
    const old = await story(seenOne);
    await story(unseenOne);
    await story(stranger);
    await story(muted);
    await call("PUT", `/v1/users/${muted.id}/mute`, { token: me.accessToken });
    // seenOne posted most recently, but I have seen all of it.
    const newest = await story(seenOne);
    await view(me, old.id);
    await view(me, newest.id);
    const items = (await tray(me)).items;
    expect(items.map((i) => i.user.id)).toEqual([me.id, unseenOne.id, seenOne.id]);
    expect(items.map((i) => i.unseen)).toEqual([false, true, false]);
    expect(items[0]?.stories.map((s) => s.id)).toEqual([mine.id]);
    expect(items[2]?.stories.map((s) => s.seen)).toEqual([true, true]);
  });
});

describe("POST /v1/stories/{id}/view", () => {
  it("records one view per viewer, also when one viewer's views race, and never the owner's own", async () => {
    const [author, fan, other] = await crowd(3);
    const posted = await story(author);
    const views = await Promise.all(Array.from({ length: 15 }, () => view(fan, posted.id)));
    expectEvery(views, (r) => r.status === 204);
    await view(other, posted.id);
    await view(author, posted.id);
    const viewers = await call<{ items: { user: { id: string } }[]; viewCount: number }>(
      "GET",
      `/v1/stories/${posted.id}/viewers`,
      { token: author.accessToken },
    );
    expect(viewers.body.viewCount).toBe(2);
    expect(viewers.body.items.map((v) => v.user.id).sort()).toEqual([fan.id, other.id].sort());
    expect(await deps.db.storyViews.find({ storyId: new ObjectId(posted.id) })).toHaveLength(2);
  });

  it("lets only the owner see who viewed and how many", async () => {
    const [author, fan] = await crowd(2);
    const posted = await story(author);
    await view(fan, posted.id);
    expectProblem(await call("GET", `/v1/stories/${posted.id}/viewers`, { token: fan.accessToken }), 404, "not_found");
    const seenByFan = (await storiesOf(author, fan)).body.items[0];
    expect(seenByFan).not.toHaveProperty("viewCount");
    expect(seenByFan?.seen).toBe(true);
    expect((await storiesOf(author, author)).body.items[0]?.viewCount).toBe(1);
  });
});

describe("expiry", () => {
  it("never returns a story after expiresAt, and the purge job deletes it with its views", async () => {
    const [author, fan] = await crowd(2);
    await follow(fan, author);
    const gone = await story(author);
    const live = await story(author);
    await view(fan, gone.id);
    await expire(gone.id);
    expect((await storiesOf(author, fan)).body.items.map((s) => s.id)).toEqual([live.id]);
    expect((await tray(fan)).items.flatMap((i) => i.stories.map((s) => s.id))).toEqual([live.id]);
    expectProblem(await view(fan, gone.id), 404, "not_found");
    expectProblem(await call("GET", `/v1/stories/${gone.id}/viewers`, { token: author.accessToken }), 404, "not_found");
    expectProblem(
      await call("POST", `/v1/stories/${gone.id}/reply`, { token: fan.accessToken, body: { text: "nice" } }),
      404,
      "not_found",
    );
    expect((await runUntilDone(storyPurgeJob)).counts).toMatchObject({ stories: expect.any(Number) });
    expect(await deps.db.stories.findOne({ _id: new ObjectId(gone.id) })).toBeNull();
    expect(await deps.db.storyViews.find({ storyId: new ObjectId(gone.id) })).toEqual([]);
    expect(await deps.db.stories.findOne({ _id: new ObjectId(live.id) })).not.toBeNull();
  });
});

describe("POST /v1/stories/{id}/reply", () => {
  it("becomes a direct message to the author, a request when the author does not follow the replier", async () => {
    const [author, fan] = await crowd(2);
    const posted = await story(author);
    const reply = await call<MessageBody>("POST", `/v1/stories/${posted.id}/reply`, {
      token: fan.accessToken,
      body: { text: "love this" },
    });
    expect(reply.status).toBe(201);
    expect(reply.body).toMatchObject({ storyId: posted.id, text: "love this", senderId: fan.id });
    const requests = await call<Page<ConversationBody>>("GET", "/v1/conversations?inbox=requests", {
      token: author.accessToken,
    });
    expect(requests.body.items.map((c) => c.id)).toEqual([reply.body.conversationId]);
    expect(requests.body.items[0]?.lastMessage).toMatchObject({ storyId: posted.id, text: "love this" });
    // A second reply lands in the same conversation.
    const again = await call<MessageBody>("POST", `/v1/stories/${posted.id}/reply`, {
      token: fan.accessToken,
      body: { text: "really" },
    });
    expect(again.body.conversationId).toBe(reply.body.conversationId);
    const own = await call("POST", `/v1/stories/${posted.id}/reply`, {
      token: author.accessToken,
      body: { text: "me" },
    });
    expect(fieldPaths(own)).toEqual(["id"]);
  });

  it("names the text when it is too long, before whose story it is", async () => {
    const [author, fan] = await crowd(2);
    const posted = await story(author);
    const long = "x".repeat(deps.config.messaging.maxTextLength + 1);
    for (const who of [fan, author]) {
      const res = await call("POST", `/v1/stories/${posted.id}/reply`, {
        token: who.accessToken,
        body: { text: long },
      });
      expect(res.status).toBe(400);
      expect(fieldPaths(res)).toEqual(["text"]);
    }
  });
});

describe("blocks and deletion", () => {
  it("hides each from the other's stories, refuses views and replies (404)", async () => {
    const [author, blocked] = await crowd(2);
    await follow(blocked, author);
    const posted = await story(author);
    await call("PUT", `/v1/users/${blocked.id}/block`, { token: author.accessToken });
    expectProblem(await storiesOf(author, blocked), 404, "not_found");
    expect((await tray(blocked)).items).toEqual([]);
    expectProblem(await view(blocked, posted.id), 404, "not_found");
    expectProblem(
      await call("POST", `/v1/stories/${posted.id}/reply`, { token: blocked.accessToken, body: { text: "hi" } }),
      404,
      "not_found",
    );
    const theirs = await story(blocked);
    expectProblem(await storiesOf(blocked, author), 404, "not_found");
    expectProblem(await view(author, theirs.id), 404, "not_found");
  });

  it("deletes only the owner's story, with its views", async () => {
    const [author, fan] = await crowd(2);
    const posted = await story(author);
    await view(fan, posted.id);
    expectProblem(await call("DELETE", `/v1/stories/${posted.id}`, { token: fan.accessToken }), 404, "not_found");
    expect((await call("DELETE", `/v1/stories/${posted.id}`, { token: author.accessToken })).status).toBe(204);
    expect((await storiesOf(author)).body.items).toEqual([]);
    expect(await deps.db.storyViews.find({ storyId: new ObjectId(posted.id) })).toEqual([]);
  });
});
