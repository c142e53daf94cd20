import type { Role, Tier } from "../db/documents/users";
import type { Relations } from "./relations";

/** The authenticated caller, from a verified access token and the account's current state. */
export interface Viewer {
  id: string;
  sessionId: string;
  role: Role;
  tier: Tier;
  /** The user's IANA zone and private mode (settings), once the account's standing applied (every signed-in route). */
  timezone?: string;
  privateMode?: boolean;
  /** Blocks and mutes, when read with the rate limit (features/relations loads them otherwise). */
  relations?: Relations;
  /** Set when that read found them not cached: the generation to rebuild them against, without reading again. */
  relationsMissAt?: string;
  /** Facts about the account from its standing (every signed-in route), so a write needs no read for them. */
  account?: AccountFacts;
}

export interface AccountFacts {
  username: string;
  createdAt: Date;
  shadowBanned: boolean;
  trustScore: number;
  /** The avatar a comment copies (PATCH /v1/me drops the standing when it changes). */
  avatarUrl: string | null;
}

/** Where a request came from, for audit entries and session records (the IP is stored only as a keyed hash). */
export interface RequestMeta {
  ip: string;
  userAgent: string | null;
  requestId: string | null;
}
