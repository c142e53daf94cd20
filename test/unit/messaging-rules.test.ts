import { Query } from "mingo";
import { describe, expect, it } from "vitest";
import type { MessageDoc } from "../../src/db";
import {
  canManage,
  canRemove,
  compareIds,
  directKeyOf,
  expiresFor,
  isVisibleTo,
  nextOwner,
  type Reader,
  visibleTo,
} from "../../src/features/messaging/rules";
import { ObjectId } from "../../src/platform/ids";

const sender = new ObjectId();
const reader = new ObjectId();
const sentAt = new Date("2026-06-01T12:00:00Z");

function message(overrides: Partial<MessageDoc> = {}): MessageDoc {
  return {
    _id: ObjectId.createFromTime(sentAt.getTime() / 1000),
    conversationId: new ObjectId(),
    senderId: sender,
    kind: "text",
    text: "hi",
    media: null,
    clientMessageId: null,
    storyId: null,
    system: null,
    createdAt: sentAt,
    editedAt: null,
    deletedAt: null,
    timerSeconds: 300,
    senderExpiresAt: new Date(sentAt.getTime() + 300_000),
    recipientIds: [reader],
    reads: [],
    purgeAt: null,
    ...overrides,
  };
}

const readerOf = (id: ObjectId, hidden: ObjectId[] = []): Reader => ({
  id,
  visibleFrom: ObjectId.createFromTime(sentAt.getTime() / 1000 - 60),
  hiddenSenders: hidden,
});

/** mingo takes plain records; a stored document is one. */
const plainObject = (doc: object) => doc as Record<string, unknown>;

describe("disappearing messages", () => {
  it("expire for the sender `timer` after sending, for a reader `timer` after they read, never without a timer", () => {
    const readAt = new Date(sentAt.getTime() + 3_600_000);
    const read = message({ reads: [{ userId: reader, at: readAt, expiresAt: new Date(readAt.getTime() + 300_000) }] });
    expect(expiresFor(read, sender)?.getTime()).toBe(sentAt.getTime() + 300_000);
    expect(expiresFor(read, reader)?.getTime()).toBe(readAt.getTime() + 300_000);
    expect(expiresFor(message(), reader)).toBeNull();
    expect(expiresFor(message({ timerSeconds: 0, senderExpiresAt: null }), sender)).toBeNull();
  });

  it("are invisible to a reader from the very moment their copy expires (query and memory agree)", () => {
    const readAt = new Date(sentAt.getTime() + 60_000);
    const doc = message({ reads: [{ userId: reader, at: readAt, expiresAt: new Date(readAt.getTime() + 300_000) }] });
    const cases: [ObjectId, number, boolean][] = [
      [sender, sentAt.getTime() + 300_000 - 1, true],
      [sender, sentAt.getTime() + 300_000, false],
      [reader, readAt.getTime() + 300_000 - 1, true],
      [reader, readAt.getTime() + 300_000, false],
    ];
    for (const [who, at, visible] of cases) {
      const now = new Date(at);
      expect(isVisibleTo(doc, readerOf(who), now)).toBe(visible);
      expect(new Query(visibleTo(readerOf(who), now)).test(plainObject(doc))).toBe(visible);
    }
    // Unread: the reader's copy has not started its timer.
    const unread = message();
    const muchLater = new Date(sentAt.getTime() + 90 * 86_400_000);
    expect(isVisibleTo(unread, readerOf(reader), muchLater)).toBe(true);
    expect(new Query(visibleTo(readerOf(reader), muchLater)).test(plainObject(unread))).toBe(true);
  });

  it("hide messages from before the reader joined and from people they are blocked with", () => {
    const now = sentAt;
    const early = message({ _id: ObjectId.createFromTime(sentAt.getTime() / 1000 - 3_600), timerSeconds: 0 });
    expect(isVisibleTo(early, readerOf(reader), now)).toBe(false);
    expect(new Query(visibleTo(readerOf(reader), now)).test(plainObject(early))).toBe(false);
    const plain = message({ timerSeconds: 0, senderExpiresAt: null });
    expect(isVisibleTo(plain, readerOf(reader, [sender]), now)).toBe(false);
    expect(new Query(visibleTo(readerOf(reader, [sender]), now)).test(plainObject(plain))).toBe(false);
    expect(new Query(visibleTo(readerOf(reader), now)).test(plainObject(plain))).toBe(true);
  });
});

describe("roles", () => {
  it("lets owners and admins manage; the owner removes anyone, admins only members, everyone may leave", () => {
    expect([canManage("owner"), canManage("admin"), canManage("member")]).toEqual([true, true, false]);
    const owner = { id: "o", role: "owner" as const };
    const admin = { id: "a", role: "admin" as const };
    const member = { id: "m", role: "member" as const };
    expect(canRemove(owner, admin)).toBe(true);
    expect(canRemove(admin, member)).toBe(true);
    expect(canRemove(admin, owner)).toBe(false);
    expect(canRemove(admin, { id: "a2", role: "admin" })).toBe(false);
    expect(canRemove(member, { id: "m2", role: "member" })).toBe(false);
    expect(canRemove(member, member)).toBe(true);
  });

  it("hands a group to the longest-standing admin, else the longest-standing member", () => {
    const members = [
      { userId: "owner", role: "owner" as const, joinedAt: 1 },
      { userId: "m-old", role: "member" as const, joinedAt: 2 },
      { userId: "a-new", role: "admin" as const, joinedAt: 5 },
      { userId: "a-old", role: "admin" as const, joinedAt: 3 },
    ];
    expect(nextOwner(members, "owner")?.userId).toBe("a-old");
    expect(
      nextOwner(
        members.filter((m) => m.role !== "admin"),
        "owner",
      )?.userId,
    ).toBe("m-old");
    expect(nextOwner([members[0] as (typeof members)[number]], "owner")).toBeUndefined();
  });
});

describe("ids", () => {
  it("gives a pair of people one direct key, whatever the order", () => {
    const a = new ObjectId().toHexString();
    const b = new ObjectId().toHexString();
    expect(directKeyOf(a, b)).toBe(directKeyOf(b, a));
    expect(directKeyOf(a, b)).not.toBe(directKeyOf(a, new ObjectId().toHexString()));
  });

  it("orders markers by id", () => {
    const older = ObjectId.createFromTime(1_000);
    const newer = ObjectId.createFromTime(2_000);
    expect([compareIds(older, newer), compareIds(newer, older), compareIds(older, older)]).toEqual([-1, 1, 0]);
  });
});
