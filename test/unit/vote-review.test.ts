import { describe, expect, it } from "vitest";
import {
  type AccountTraces,
  reviewVotes,
  type VoterHistory,
  type VoteUnderReview,
} from "../../src/features/fraud/rules";

const now = new Date("2026-12-01T12:00:00Z");
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);
const rules = { accountsPerIp: 3, ringMinAccounts: 3, ringMinVotes: 2, ringAuthorShare: 0.9, youngAccountDays: 14 };
const AUTHOR = "author";

function voter(over: Partial<VoterHistory> = {}): VoterHistory {
  return {
    deviceIds: [],
    ipHashes: [],
    createdAt: daysAgo(400),
    totalPosts: 12,
    votesByAuthor: new Map([
      [AUTHOR, 1],
      ["someone", 4],
      ["else", 3],
    ]),
    ...over,
  };
}
const vote = (id: string, ipHash: string | null = `ip-${id}`): VoteUnderReview => ({
  id: `v-${id}`,
  voterId: id,
  authorId: AUTHOR,
  ipHash,
});
const author: AccountTraces = { deviceIds: ["owner-phone"], ipHashes: ["owner-home"] };

function review(votes: VoteUnderReview[], voters: Record<string, VoterHistory>, byIp = new Map<string, Set<string>>()) {
  return reviewVotes(
    {
      votes,
      voters: new Map(Object.entries(voters)),
      authors: new Map([[AUTHOR, author]]),
      votersByIpAndAuthor: byIp,
      now,
    },
    rules,
  );
}

describe("settlement's fraud review", () => {
  it("pays an established voter, even from the author's address (carrier NAT)", () => {
    expect(review([vote("a", "owner-home")], { a: voter({ ipHashes: ["owner-home"] }) }).size).toBe(0);
  });

  it("withholds a second account on the owner's phone, and a new one on the owner's address", () => {
    const out = review([vote("phone"), vote("wifi", "owner-home")], {
      phone: voter({ deviceIds: ["owner-phone"] }),
      wifi: voter({ createdAt: daysAgo(1), totalPosts: 0 }),
    });
    expect(out.get("v-phone")).toEqual(["linked_device"]);
    expect(out.get("v-wifi")).toEqual(["linked_ip"]);
  });

  it("withholds young accounts crowding one address for one author, whatever devices they claim", () => {
    const ids = ["p1", "p2", "p3", "p4"];
    const byIp = new Map([[`farm|${AUTHOR}`, new Set(ids)]]);
    const young = Object.fromEntries(ids.map((id) => [id, voter({ createdAt: daysAgo(0.01), totalPosts: 0 })]));
    const out = review(
      ids.map((id) => vote(id, "farm")),
      young,
      byIp,
    );
    expect([...out.keys()].sort()).toEqual(ids.map((id) => `v-${id}`));
    // Three are what one household explains.
    expect(
      review(
        ids.slice(0, 3).map((id) => vote(id, "farm")),
        young,
        new Map([[`farm|${AUTHOR}`, new Set(ids.slice(0, 3))]]),
      ).size,
    ).toBe(0);
  });

  it("withholds a ring of young one-author voters spread over many addresses, not a lone new fan", () => {
    const ring = ["r1", "r2", "r3"];
    const oneAuthor = () => voter({ createdAt: daysAgo(3), totalPosts: 0, votesByAuthor: new Map([[AUTHOR, 4]]) });
    const out = review(
      ring.map((id) => vote(id)),
      Object.fromEntries(ring.map((id) => [id, oneAuthor()])),
    );
    expect([...out.values()]).toEqual(ring.map(() => ["single_author_ring"]));
    expect(review([vote("r1"), vote("r2")], { r1: oneAuthor(), r2: oneAuthor() }).size).toBe(0);
    // A newcomer's first vote is not a ring's.
    const firstVotes = ring.map(() =>
      voter({ createdAt: daysAgo(1), totalPosts: 0, votesByAuthor: new Map([[AUTHOR, 1]]) }),
    );
    expect(
      review(
        ring.map((id) => vote(id)),
        Object.fromEntries(ring.map((id, i) => [id, firstVotes[i]!])),
      ).size,
    ).toBe(0);
  });
});
