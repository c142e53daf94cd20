import type { ChdbEngine, ChdbSession } from "./clickhouse-chdb";
import { ClickHouseHttpError } from "./clickhouse-errors";

/**
 * Named HTTP sessions as clickhouse-server keeps them (src/Interpreters/Session.cpp): `session_id` picks
 * the session, one request at a time may use it, and it closes `session_timeout` seconds after its last
 * request ended (the timeout given when it was created), or at once after a request with `close_session=1`.
 */

export interface SessionLimits {
  /** clickhouse-server's `default_session_timeout`. */
  defaultTimeoutSeconds: number;
  /** clickhouse-server's `max_session_timeout`. */
  maxTimeoutSeconds: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { defaultTimeoutSeconds: 60, maxTimeoutSeconds: 3600 };

export interface SessionRequest {
  id: string;
  timeoutSeconds: number;
  /** `session_check=1`: the session must exist already. */
  check: boolean;
  /** `close_session=1`: close it once this request is done. */
  close: boolean;
}

/** The session a request names, or undefined without `session_id`; a bad `session_timeout` is refused. */
export function sessionRequest(params: URLSearchParams, limits: SessionLimits): SessionRequest | undefined {
  const id = params.get("session_id");
  if (id === null) return undefined;
  let timeoutSeconds = limits.defaultTimeoutSeconds;
  const timeout = params.get("session_timeout");
  if (timeout !== null) {
    if (!/^\d+$/.test(timeout)) {
      throw new ClickHouseHttpError(374, "INVALID_SESSION_TIMEOUT", `Invalid session timeout: '${timeout}'`);
    }
    timeoutSeconds = Number(timeout);
    if (timeoutSeconds > limits.maxTimeoutSeconds) {
      throw new ClickHouseHttpError(
        374,
        "INVALID_SESSION_TIMEOUT",
        `Session timeout '${timeout}' is larger than max_session_timeout: ${limits.maxTimeoutSeconds}. ` +
          "Maximum session timeout could be modified in configuration file",
      );
    }
  }
  return {
    id,
    timeoutSeconds,
    check: params.get("session_check") === "1",
    close: isTrue(params.get("close_session")),
  };
}

function isTrue(value: string | null): boolean {
  return value !== null && /^(1|true)$/i.test(value);
}

/** The hold one request has on its session; release it exactly once, when the query is done. */
export interface SessionLease {
  readonly session: ChdbSession;
  release(): void;
}

interface NamedSession {
  id: string;
  session: ChdbSession;
  timeoutMs: number;
  inUse: boolean;
  expiry?: NodeJS.Timeout;
}

export class NamedSessions {
  private readonly sessions = new Map<string, NamedSession>();

  constructor(private readonly engine: ChdbEngine) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Takes the session for one request, creating it unless `session_check`; refuses a session in use. */
  acquire(request: SessionRequest): SessionLease {
    let named = this.sessions.get(request.id);
    if (!named) {
      if (request.check) throw new ClickHouseHttpError(372, "SESSION_NOT_FOUND", `Session ${request.id} not found`);
      named = {
        id: request.id,
        session: this.engine.openSession(),
        timeoutMs: request.timeoutSeconds * 1000,
        inUse: false,
      };
      this.sessions.set(request.id, named);
      const opening = named;
      // A session whose connection could not be opened is not kept: the next request tries afresh.
      void opening.session.connection.catch(() => {
        if (this.sessions.get(opening.id) === opening) this.sessions.delete(opening.id);
      });
    } else if (named.inUse) {
      throw new ClickHouseHttpError(373, "SESSION_IS_LOCKED", `Session ${request.id} is locked by a concurrent client`);
    }
    clearTimeout(named.expiry);
    named.inUse = true;
    const held = named;
    let released = false;
    return {
      session: held.session,
      release: () => {
        if (released) return;
        released = true;
        held.inUse = false;
        if (request.close) this.end(held);
        else {
          held.expiry = setTimeout(() => this.end(held), held.timeoutMs);
          held.expiry.unref();
        }
      },
    };
  }

  /** Forgets every session (the engine closes their connections when it closes). */
  clear(): void {
    for (const named of this.sessions.values()) clearTimeout(named.expiry);
    this.sessions.clear();
  }

  private end(named: NamedSession): void {
    if (this.sessions.get(named.id) === named) this.sessions.delete(named.id);
    void this.engine.closeSession(named.session).catch(() => {});
  }
}
