import type { Deps } from "../deps";
import type { IoTally } from "../platform/io";

/** What middleware puts on the Hono context for routes. */
/** The authenticated caller, from a verified access token. */
export interface Viewer {
  id: string;
  sessionId: string;
  role: "user" | "creator" | "moderator" | "admin";
  tier: "free" | "pro" | "premium";
}

export interface AppVariables {
  viewer: Viewer | undefined;
  deps: Deps;
  requestId: string;
  clientIp: string;
  io: IoTally;
  /**
   * `session:{userId}` for the user a bearer token names, read (unverified) alongside the rate limit so that
   * `requireAuth` needs no round trip of its own; it is used only once the token is verified for that user.
   */
  sessionCutoff: { userId: string; value: number | string | null } | undefined;
}

export type AppEnv = { Bindings: Record<string, unknown>; Variables: AppVariables };

/** Where the request came from, for audit entries and session records. */
export function requestMetaOf(c: { var: AppVariables; req: { header(name: string): string | undefined } }) {
  return { ip: c.var.clientIp, userAgent: c.req.header("user-agent") ?? null, requestId: c.var.requestId };
}
