import { Redis as UpstashSdk } from "@upstash/redis";
import { ObjectId } from "bson";
import { describe, expect, it } from "vitest";
import * as ops from "../../src/platform/redis-ops";
import {
  decodeReply,
  type Pipeline,
  parseStreamEvent,
  Redis,
  serializeArgument,
  streamLines,
} from "../../src/platform/upstash";

// The SDK is the reference: its pipeline is only built here, never sent (nothing listens on this address).
process.env.UPSTASH_DISABLE_TELEMETRY = "1";
const sdk = new UpstashSdk({ url: "http://127.0.0.1:9", token: "unused", enableTelemetry: false });

type SdkCommand = { command: unknown[]; deserialize(reply: unknown): unknown };

/** The commands an op queues on our pipeline and on the SDK's (same method names and arguments). */
function queuedBoth(op: ops.RedisOp<unknown>): { ours: unknown[][]; theirs: unknown[][] } {
  const ours = new Redis({ url: "http://127.0.0.1:9", token: "unused" }).pipeline();
  op.queue(ours);
  const theirs = sdk.pipeline();
  op.queue(theirs as unknown as Pipeline);
  const commands = (theirs as unknown as { commands: SdkCommand[] }).commands;
  return { ours: ours.commands, theirs: commands.map((c) => c.command) };
}

/** The SDK's automatic deserialization of a reply (what its GET hands back). */
function sdkDecodes(reply: unknown): unknown {
  const pipeline = sdk.pipeline().get("k");
  return (pipeline as unknown as { commands: SdkCommand[] }).commands[0]?.deserialize(reply);
}

const doc = { _id: new ObjectId("0123456789abcdef01234567"), at: new Date(0), n: 1 };
const boards: ops.CountedBoards = {
  counted: { key: "lb:counted", ttlSeconds: 90 },
  daily: { key: "lb:d", expireAt: 1_700_000_000 },
  weekly: { key: "lb:w", expireAt: 1_700_600_000 },
  alltime: { key: "lb:a" },
};

const audience: ops.StreamAudienceKeys = { live: "live", viewers: "viewers", uniques: "uniques" };

// Every named operation the API runs, with arguments of each kind it passes (objects, numbers, lists, options).
const everyOp: Record<string, ops.RedisOp<unknown>> = {
  getValue: ops.getValue("k"),
  getValues: ops.getValues(["a", "b"]),
  getDocument: ops.getDocument("k"),
  setDocument: ops.setDocument("k", doc, 60),
  setValueObject: ops.setValue("k", { name: "Zoë", list: [1, "2"], none: null }, 60),
  setValueNumber: ops.setValue("k", 42, 60),
  setValueString: ops.setValue("k", "plain, text", 60),
  setValueBoolean: ops.setValue("k", true, 60),
  getField: ops.getField("h", "f"),
  setField: ops.setField("h", "f", { v: 1 }, 60),
  deleteKeys: ops.deleteKeys(["a", "b", "c"]),
  countInWindow: ops.countInWindow("k", 60, 3),
  advanceGenerations: ops.advanceGenerations(["g1", "g2"], 60),
  addToCountedSet: ops.addToCountedSet("s", "m", 60),
  addMembers: ops.addMembers("s", ["a", "b"]),
  incrementIfPresent: ops.incrementIfPresent("c", -2, 60),
  seedCounter: ops.seedCounter("c", 7, 60),
  countViewOnce: ops.countViewOnce({
    viewerKey: "v",
    windowSeconds: 60,
    pendingKey: "p",
    pendingTtlSeconds: 120,
    dirtyKey: "d",
    member: "post",
    perIp: { key: "ip", cap: 5 },
  }),
  takeAndClear: ops.takeAndClear(["a", "b"]),
  moveRandomMembers: ops.moveRandomMembers("from", "to", 10),
  someMembers: ops.someMembers("s", 4),
  removeMembers: ops.removeMembers("s", ["a", "b"]),
  slidingWindow: ops.slidingWindow("rl", 300, 60),
  slidingWindowAdd: ops.slidingWindow("rl", 300, 60, "add"),
  addOncePerEntry: ops.addOncePerEntry(boards, [
    { id: "e1", member: "u1", amount: 5 },
    { id: "e2", member: "u2", amount: 1.5 },
  ]),
  standing: ops.standing("z", "m"),
  topMembers: ops.topMembers("z", 10),
  removeFromSortedSets: ops.removeFromSortedSets(["z1", "z2"], "m"),
  keysExist: ops.keysExist(["a", "b"]),
  mergeSortedSet: ops.mergeSortedSet(
    "z",
    [
      { member: "a", score: 3 },
      { member: "b", score: 2.5 },
      { member: "c", score: 1 },
    ],
    1_700_000_000,
    2,
  ),
  readGuardedSet: ops.readGuardedSet("s", "g"),
  fillGuardedSet: ops.fillGuardedSet("s", "g", "3", ["a", "b"], 60),
  changeGuardedSet: ops.changeGuardedSet("s", "g", { add: ["a"], remove: ["b"] }, 60),
  readGuardedValue: ops.readGuardedValue("k", "g"),
  fillGuardedValue: ops.fillGuardedValue("k", "g", "0", { a: [1] }, 60),
  dropGuardedValue: ops.dropGuardedValue("k", "g", 60),
  takeValue: ops.takeValue("k"),
  publish: ops.publish("channel", JSON.stringify({ type: "message" })),
  forgetGuardedSet: ops.forgetGuardedSet("s", "g", 60),
  areMembers: ops.areMembers("s", ["a", "b"]),
  reserveUpTo: ops.reserveUpTo("k", 10, 3, 3600),
  acquireLease: ops.acquireLease("lease", "owner", 30_000),
  releaseLease: ops.releaseLease("lease", "owner"),
  claimOrGet: ops.claimOrGet("idem", { state: "pending" }, 60),
  replaceValue: ops.replaceValue("idem", { state: "done" }, 60),
  takeDocument: ops.takeDocument("k"),
  takeTurn: ops.takeTurn("turn", "owner", 5_000),
  streamHeartbeat: ops.streamHeartbeat(audience, {
    viewerId: "v",
    nowMs: 1_700_000_000_000,
    lifetimeMs: 30_000,
    ttlSeconds: 3600,
    blockedIds: ["b1", "b2"],
  }),
  streamAudiences: ops.streamAudiences([audience, audience], 1_700_000_000_000, 30_000),
  markStreamLive: ops.markStreamLive("live", { hostId: "h", cohostIds: ["c1", "c2"] }, 1_700_000_000_000, 3600),
  setStreamCohosts: ops.setStreamCohosts("live", ["c1"]),
};

describe("the Upstash pipeline sends what @upstash/redis sends", () => {
  for (const [name, op] of Object.entries(everyOp)) {
    it(`${name}: the same commands, argument for argument`, () => {
      const { ours, theirs } = queuedBoth(op);
      expect(ours).toHaveLength(op.replies);
      expect(ours).toEqual(theirs);
      // And the same bytes on the wire.
      expect(JSON.stringify(ours)).toBe(JSON.stringify(theirs));
    });
  }

  it("covers every operation redis-ops exports", () => {
    const exported = Object.entries(ops)
      .filter(([name, value]) => typeof value === "function" && !/^(runOps?|batchOn|both|readOrMiss)$/.test(name))
      .map(([name]) => name);
    const covered = new Set(
      Object.keys(everyOp).map((name) => name.replace(/(Object|Number|String|Boolean|Add)$/, "")),
    );
    expect(exported.filter((name) => !covered.has(name))).toEqual([]);
  });

  it("serializes arguments as the SDK does: objects as JSON text, scalars as they are", () => {
    expect(serializeArgument("a,b")).toBe("a,b");
    expect(serializeArgument(1.5)).toBe(1.5);
    expect(serializeArgument(false)).toBe(false);
    expect(serializeArgument({ a: [1, null] })).toBe('{"a":[1,null]}');
    expect(serializeArgument(null)).toBe("null");
    expect(serializeArgument(["x"])).toBe('["x"]');
  });
});

describe("Upstash replies decode as @upstash/redis decodes them", () => {
  const replies: unknown[] = [
    '{"name":"Zoë","n":1}',
    "[1,2]",
    "42",
    "-3.25",
    "1.50",
    "007",
    "12345678901234567890",
    "1e3",
    "true",
    "null",
    "plain text",
    "",
    "OK",
    "PONG",
    '"quoted"',
    17,
    null,
    ["a", "5", null, 3, ["nested", "2.0", "[1]"]],
    ["member", "12.5", "other", "3"],
    [1, 0, 1],
  ];
  for (const reply of replies) {
    it(`decodes ${JSON.stringify(reply)} to what the SDK hands back`, () => {
      expect(decodeReply(reply)).toEqual(sdkDecodes(reply));
    });
  }

  it("keeps the number-looking strings whose text a number would change", () => {
    expect(decodeReply("1.50")).toBe("1.50");
    expect(decodeReply("12345678901234567890")).toBe("12345678901234567890");
    expect(decodeReply("42")).toBe(42);
    expect(decodeReply(["a", "1"])).toEqual(["a", 1]);
  });
});

describe("the pub/sub stream", () => {
  it("reads data lines across chunk boundaries and skips keep-alive comments", () => {
    let pending = "";
    const seen: string[] = [];
    for (const chunk of [
      "data: subscribe,ch",
      ",1\n\n: keep-alive\n\nda",
      'ta: message,ch,{"a":1}\n',
      "\ndata: mess",
    ]) {
      const read = streamLines(pending, chunk);
      pending = read.pending;
      seen.push(...read.data);
    }
    expect(seen).toEqual(["subscribe,ch,1", 'message,ch,{"a":1}']);
    expect(pending).toBe("data: mess");
  });

  it("parses confirmations and messages as the SDK's subscriber does", () => {
    expect(parseStreamEvent("subscribe,conv:1,1")).toEqual({ type: "subscribe", channel: "conv:1", count: 1 });
    expect(parseStreamEvent('message,conv:1,{"type":"message","text":"a, b"}')).toEqual({
      type: "message",
      channel: "conv:1",
      message: { type: "message", text: "a, b" },
    });
    expect(parseStreamEvent("message,conv:1,plain, with commas")).toEqual({
      type: "message",
      channel: "conv:1",
      message: "plain, with commas",
    });
    expect(parseStreamEvent("message,conv:1,42")).toMatchObject({ message: 42 });
    expect(parseStreamEvent("garbage")).toBeNull();
    expect(parseStreamEvent("message,only-channel")).toBeNull();
  });
});
