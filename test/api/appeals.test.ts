import { beforeAll, describe, expect, it } from "vitest";
import { ObjectId } from "../../src/platform/ids";
import { call } from "../support/api";
import { testDeps } from "../support/deps";
import { publishedPost } from "../support/posts";
import { expectProblem, fieldPaths } from "../support/problems";
import { crowd, signupUser, TEST_EMAIL_DOMAIN, type TestUser, userWithRole } from "../support/users";

const deps = testDeps();
const DAY_MS = 86_400_000;

interface ActionBody {
  id: string;
  action: string;
}
interface AppealBody {
  id: string;
  status: string;
  moderationActionId: string;
  moderationAction?: { id: string; reversedAt: string | null };
}
interface MyModeration {
  account: { banned: boolean; shadowBanned: boolean; trustScore: number };
  items: {
    id: string;
    action: string;
    appealable: boolean;
    appealDeadline: string | null;
    reversed: boolean;
    appeal: { id: string; status: string } | null;
  }[];
}
interface AuditPage {
  items: { action: string; userId: string; actorId: string; metadata: Record<string, unknown> }[];
}

const act = (moderator: TestUser, body: Record<string, unknown>) =>
  call<ActionBody>("POST", "/v1/admin/moderation-actions", { token: moderator.accessToken, body });
const appeal = (u: TestUser, moderationActionId: string, reason = "I did nothing wrong") =>
  call<AppealBody>("POST", "/v1/appeals", { token: u.accessToken, body: { moderationActionId, reason } });
const decide = (moderator: TestUser, id: string, decision: string, notes?: string) =>
  call<AppealBody>("POST", `/v1/admin/appeals/${id}/decision`, {
    token: moderator.accessToken,
    body: { decision, ...(notes ? { notes } : {}) },
  });
const mine = (u: TestUser) => call<MyModeration>("GET", "/v1/me/moderation", { token: u.accessToken });

/** A new author's post, removed by the moderator: the action most appeals here contest. */
async function removedPost(moderator: TestUser) {
  const [author] = await crowd(1);
  const post = await publishedPost(author);
  const removed = await act(moderator, {
    targetType: "post",
    targetId: post.id,
    action: "remove_content",
    reason: "x",
  });
  return { author, post, removed };
}

describe("appeals", () => {
  let moderator: TestUser;
  beforeAll(async () => {
    moderator = await userWithRole("moderator");
  });

  it("an approved appeal of a ban restores access; ban and reversal are both in the audit log", async () => {
    const target = await signupUser();
    const ban = await act(moderator, { targetType: "user", targetId: target.id, action: "ban", reason: "spam" });
    expect(ban.status, ban.text).toBe(201);
    expectProblem(await call("GET", "/v1/me", { token: target.accessToken }), 401, "unauthorized");

    // The banned user can still see why and contest it with the token they hold.
    const standing = await mine(target);
    expect(standing.status, standing.text).toBe(200);
    expect(standing.body.account.banned).toBe(true);
    expect(standing.body.items[0]).toMatchObject({ id: ban.body.id, action: "ban", appealable: true, appeal: null });
    const filed = await appeal(target, ban.body.id);
    expect(filed.status, filed.text).toBe(201);
    expect(filed.body).toMatchObject({ status: "pending", moderationActionId: ban.body.id });

    const queue = await call<{ items: AppealBody[] }>("GET", "/v1/admin/appeals?status=pending&limit=100", {
      token: moderator.accessToken,
    });
    expect(queue.body.items.find((a) => a.id === filed.body.id)?.moderationAction?.id).toBe(ban.body.id);

    const decided = await decide(moderator, filed.body.id, "approved", "benefit of the doubt");
    expect(decided.status, decided.text).toBe(200);
    expect(decided.body.status).toBe("approved");
    expect(decided.body.moderationAction?.reversedAt).not.toBeNull();

    const login = await call<{ accessToken: string }>("POST", "/v1/auth/login", {
      body: { login: target.username, password: target.password },
    });
    expect(login.status, login.text).toBe(200);
    expect((await call("GET", "/v1/me", { token: login.body.accessToken })).status).toBe(200);
    const after = await mine(target);
    expect(after.body.account.banned).toBe(false);
    expect(after.body.account.trustScore).toBe(50);
    const banItem = after.body.items.find((i) => i.id === ban.body.id);
    expect(banItem).toMatchObject({ reversed: true, appealable: false, appeal: { status: "approved" } });
    expect(after.body.items.map((i) => i.action)).toContain("unban");

    const audit = await call<AuditPage>("GET", `/v1/admin/audit?userId=${target.id}&limit=100`, {
      token: moderator.accessToken,
    });
    const entries = audit.body.items.map((e) => `${e.action}:${String(e.metadata.action ?? e.metadata.decision)}`);
    expect(entries).toEqual(
      expect.arrayContaining(["moderation_action:ban", "appeal_decided:approved", "moderation_action:unban"]),
    );
    expect(audit.text).not.toContain(TEST_EMAIL_DOMAIN);
    const notices = await deps.db.notifications.find({ userId: new ObjectId(target.id), type: "moderation" });
    expect(notices.map((n) => n.title)).toContain("Your appeal was approved");
  });

  it("an approved appeal of a removal restores the content to feeds", async () => {
    const { author, post, removed } = await removedPost(moderator);
    expect((await call("GET", `/v1/posts/${post.id}`)).status).toBe(404);
    const filed = await appeal(author, removed.body.id);
    expect(filed.status).toBe(201);
    expect((await decide(moderator, filed.body.id, "approved")).status).toBe(200);
    expect((await call("GET", `/v1/posts/${post.id}`)).status).toBe(200);
    const feed = await call<{ items: { id: string }[] }>("GET", `/v1/users/${author.id}/posts`);
    expect(feed.body.items.map((p) => p.id)).toContain(post.id);
    expect((await deps.db.users.findOne({ _id: new ObjectId(author.id) }))?.trustScore).toBe(50);
  });

  it("a denied appeal changes nothing but its status; a decided appeal cannot be decided again (409)", async () => {
    const [author] = await crowd(1);
    const post = await publishedPost(author);
    const removed = await act(moderator, { targetType: "post", targetId: post.id, action: "reject", reason: "x" });
    const filed = await appeal(author, removed.body.id);
    const denied = await decide(moderator, filed.body.id, "denied", "stands");
    expect(denied.status).toBe(200);
    expect(denied.body.status).toBe("denied");
    expect((await call("GET", `/v1/posts/${post.id}`)).status).toBe(404);
    expectProblem(await decide(moderator, filed.body.id, "approved"), 409, "conflict");
    const item = (await mine(author)).body.items.find((i) => i.id === removed.body.id);
    expect(item).toMatchObject({ appealable: false, appeal: { status: "denied" } });
  });

  it("accepts one appeal per action, even when sent 10 times at once", async () => {
    const [author] = await crowd(1);
    const warned = await act(moderator, { targetType: "user", targetId: author.id, action: "warn", reason: "tone" });
    const responses = await Promise.all(Array.from({ length: 10 }, () => appeal(author, warned.body.id)));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of responses.filter((x) => x.status !== 201)) expectProblem(r, 409, "conflict");
  });

  it("refuses other users (404), unappealable actions and closed windows (409), bad input (400)", async () => {
    const [author, stranger] = await crowd(2);
    const post = await publishedPost(author);
    const approved = await act(moderator, { targetType: "post", targetId: post.id, action: "approve", reason: "ok" });
    const warned = await act(moderator, { targetType: "user", targetId: author.id, action: "warn", reason: "tone" });
    expectProblem(await appeal(stranger, warned.body.id), 404, "not_found");
    expectProblem(await appeal(author, new ObjectId().toHexString()), 404, "not_found");
    expectProblem(await appeal(author, approved.body.id), 409, "conflict");

    await deps.db.moderationActions.updateOne(
      { _id: new ObjectId(warned.body.id) },
      { $set: { createdAt: new Date(Date.now() - 21 * DAY_MS) } },
    );
    expectProblem(await appeal(author, warned.body.id), 409, "conflict");
    const item = (await mine(author)).body.items.find((i) => i.id === warned.body.id);
    expect(item?.appealable).toBe(false);

    const long = await appeal(author, warned.body.id, "x".repeat(1001));
    expectProblem(long, 400, "validation_failed");
    expect(fieldPaths(long)).toEqual(["reason"]);
    expect(fieldPaths(await appeal(author, "abc"))).toEqual(["moderationActionId"]);
    const badDecision = await call("POST", `/v1/admin/appeals/${new ObjectId().toHexString()}/decision`, {
      token: moderator.accessToken,
      body: { decision: "maybe" },
    });
    expect(fieldPaths(badDecision)).toEqual(["decision"]);
    expectProblem(await decide(moderator, new ObjectId().toHexString(), "denied"), 404, "not_found");
    expectProblem(
      await call("POST", "/v1/appeals", { body: { moderationActionId: warned.body.id, reason: "x" } }),
      401,
      "unauthorized",
    );
  });

  it("GET /v1/me/moderation lists actions on the caller's content with the appeal deadline", async () => {
    const { author, removed } = await removedPost(moderator);
    const res = await mine(author);
    expect(res.status).toBe(200);
    const item = res.body.items.find((i) => i.id === removed.body.id);
    expect(item).toMatchObject({ action: "remove_content", appealable: true, reversed: false, appeal: null });
    const deadline = new Date(item!.appealDeadline!).getTime();
    expect(Math.abs(deadline - (Date.now() + 20 * DAY_MS))).toBeLessThan(60_000);
    expect(res.text).not.toContain(moderator.id);
    expectProblem(await call("GET", "/v1/me/moderation"), 401, "unauthorized");
  });
});
