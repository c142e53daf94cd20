import type { Role, Tier } from "../db/documents/users";

/** The authenticated caller, from a verified access token and the account's current state. */
export interface Viewer {
  id: string;
  sessionId: string;
  role: Role;
  tier: Tier;
}

/** Where a request came from, for audit entries and session records (the IP is stored only as a keyed hash). */
export interface RequestMeta {
  ip: string;
  userAgent: string | null;
  requestId: string | null;
}
