import type { VoteDoc } from "../../db";

/**
 * Vote fraud score in [0, 1], computed at vote time from the seed's fraud sets: how many accounts voted from
 * this IP today (`fraud:ip:{ipHash}:{date}`) and from this device in the last 30 days
 * (`fraud:device:{deviceId}`), the voter's trust score and account age. Each signal grows linearly once it
 * exceeds what one household or one shared phone explains, and they combine as independent probabilities.
 * Device ids are whatever the client sends, so this is only the first look: settlement reviews every vote
 * again with signals a client cannot rotate (`reviewVotes` below) before paying.
 */
export interface FraudSignals {
  accountsOnIp: number;
  accountsOnDevice: number;
  trustScore: number;
  hasDevice: boolean;
  /** Days since the voter signed up: a fresh account is cheap to make, so it counts for less. */
  accountAgeDays: number;
}

export interface FraudRules {
  accountsPerIp: number;
  accountsPerDevice: number;
  /** Accounts younger than this add up to 0.3, shrinking to nothing at this age. */
  youngAccountDays: number;
}

export function voteFraudScore(s: FraudSignals, rules: FraudRules): number {
  const ip = Math.min(1, Math.max(0, s.accountsOnIp - rules.accountsPerIp) / (rules.accountsPerIp * 2));
  const device = Math.min(1, Math.max(0, s.accountsOnDevice - rules.accountsPerDevice) / rules.accountsPerDevice);
  // Low trust (under 50) adds up to 0.3; a missing device id adds a little (scripts often send none).
  const trust = Math.max(0, (50 - s.trustScore) / 50) * 0.3;
  const anonymousDevice = s.hasDevice ? 0 : 0.1;
  const young =
    rules.youngAccountDays > 0
      ? Math.max(0, (rules.youngAccountDays - s.accountAgeDays) / rules.youngAccountDays) * 0.3
      : 0;
  const clean = (1 - ip) * (1 - device) * (1 - trust) * (1 - anonymousDevice) * (1 - young);
  return Math.round((1 - clean) * 1000) / 1000;
}

/**
 * The second look settlement takes before paying (votes/fraud-review.ts gathers the data): signals a client
 * cannot rotate for free, read from what the store already holds.
 * - `linked_device`: the voter signed in on a device the author also uses (a second account on the owner's
 *   phone);
 * - `linked_ip`: a young or inactive voter voting from an address the author signed in from, or sharing
 *   sign-in addresses (sessions' IP hashes) with the author in the window;
 * - `ip_cluster`: a young or inactive voter among more accounts than one household explains
 *   (VOTE_FRAUD_ACCOUNTS_PER_IP) voting for this author from one address in the window, whatever device ids
 *   they sent;
 * - `single_author_ring`: at least FRAUD_RING_MIN_ACCOUNTS young or inactive accounts, each with at least
 *   FRAUD_RING_MIN_VOTES votes in the window, (almost) all for this author, from any addresses.
 * Address signals alone never withhold an established account's vote (older than FRAUD_YOUNG_ACCOUNT_DAYS,
 * with posts of its own): carrier NAT puts many strangers behind one address.
 */
export type ReviewReason = NonNullable<VoteDoc["fraudReasons"]>[number];

export interface VoteUnderReview {
  id: string;
  voterId: string;
  authorId: string;
  ipHash: string | null;
}

export interface AccountTraces {
  /** Devices the account signed in on (users.devices). */
  deviceIds: string[];
  /** Addresses (hashed) of the account's sessions in the window. */
  ipHashes: string[];
}

export interface VoterHistory extends AccountTraces {
  createdAt: Date;
  totalPosts: number;
  /** The voter's votes in the window, per author. */
  votesByAuthor: Map<string, number>;
}

export interface ReviewRules {
  accountsPerIp: number;
  ringMinAccounts: number;
  /** Votes a weak account must have cast in the window before it can count as a one-author voter. */
  ringMinVotes: number;
  /** Share of a voter's votes going to one author that makes them a one-author voter (e.g. 0.9). */
  ringAuthorShare: number;
  youngAccountDays: number;
}

export interface ReviewInput {
  votes: VoteUnderReview[];
  voters: Map<string, VoterHistory>;
  authors: Map<string, AccountTraces>;
  /** Distinct voters per (address, author) in the window: `${ipHash}|${authorId}` → voter ids. */
  votersByIpAndAuthor: Map<string, Set<string>>;
  now: Date;
}

/** The votes to withhold and why (votes not in the map pay). */
export function reviewVotes(input: ReviewInput, rules: ReviewRules): Map<string, ReviewReason[]> {
  const { votes, voters, authors, votersByIpAndAuthor, now } = input;
  const isWeak = (v: VoterHistory) =>
    (now.getTime() - v.createdAt.getTime()) / 86_400_000 < rules.youngAccountDays || v.totalPosts === 0;
  const oneAuthorVoters = new Map<string, Set<string>>();
  const isOneAuthorVoter = (voterId: string, authorId: string): boolean => {
    const v = voters.get(voterId);
    if (!v || !isWeak(v)) return false;
    const total = [...v.votesByAuthor.values()].reduce((a, b) => a + b, 0);
    const forAuthor = v.votesByAuthor.get(authorId) ?? 0;
    return total >= rules.ringMinVotes && forAuthor / total >= rules.ringAuthorShare;
  };
  for (const vote of votes) {
    if (!isOneAuthorVoter(vote.voterId, vote.authorId)) continue;
    const ring = oneAuthorVoters.get(vote.authorId) ?? new Set<string>();
    ring.add(vote.voterId);
    oneAuthorVoters.set(vote.authorId, ring);
  }
  const out = new Map<string, ReviewReason[]>();
  for (const vote of votes) {
    const reasons: ReviewReason[] = [];
    const voter = voters.get(vote.voterId);
    const author = authors.get(vote.authorId);
    const weak = voter ? isWeak(voter) : false;
    if (voter && author) {
      if (voter.deviceIds.some((d) => author.deviceIds.includes(d))) reasons.push("linked_device");
      const sharedAddress = voter.ipHashes.some((ip) => author.ipHashes.includes(ip));
      const fromAuthorsAddress = vote.ipHash !== null && author.ipHashes.includes(vote.ipHash);
      if (weak && (sharedAddress || fromAuthorsAddress)) reasons.push("linked_ip");
    }
    const crowd = vote.ipHash ? (votersByIpAndAuthor.get(`${vote.ipHash}|${vote.authorId}`)?.size ?? 0) : 0;
    if (weak && crowd > rules.accountsPerIp) reasons.push("ip_cluster");
    const ring = oneAuthorVoters.get(vote.authorId);
    if (ring && ring.size >= rules.ringMinAccounts && ring.has(vote.voterId)) reasons.push("single_author_ring");
    if (reasons.length) out.set(vote.id, reasons);
  }
  return out;
}
