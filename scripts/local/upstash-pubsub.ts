import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Upstash's pub/sub over REST: `POST /subscribe/<channel>` or `/psubscribe/<pattern>` with
 * `Accept: text/event-stream` answers a server-sent-events stream of `data: subscribe,<channel>,<count>`,
 * `data: message,<channel>,<message>` and `data: pmessage,<pattern>,<channel>,<message>` lines, the format
 * `@upstash/redis` parses (its Subscriber opens one stream per channel and unsubscribes by aborting it).
 * Each stream holds a Redis connection of its own in SUBSCRIBE mode and closes it when the client goes.
 * Messages are sent as text even to a client that asked for `Upstash-Encoding: base64`: the client reads
 * stream lines verbatim (base64 applies to command replies only).
 */

export type SubscriptionKind = "subscribe" | "psubscribe";

type Listener = (message: string, channel: string) => unknown;

/** The part of a node-redis client a stream uses. */
export interface SubscriberConnection {
  subscribe(channel: string, listener: Listener): Promise<unknown>;
  pSubscribe(pattern: string, listener: Listener): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
}

// Comment lines keep idle streams alive through proxies and make a vanished client show up as a write error.
const HEARTBEAT_MS = 15_000;

export class PubSubStreams {
  private readonly open = new Set<Promise<void>>();
  private readonly responses = new Set<ServerResponse>();
  private closing = false;

  constructor(
    private readonly connect: () => Promise<SubscriberConnection>,
    private readonly log: (line: string) => void,
  ) {}

  /** Streams currently served (each holds one Redis connection). */
  get size(): number {
    return this.open.size;
  }

  /** Serves one stream; resolves once the client has gone and its Redis connection is closed. */
  serve(req: IncomingMessage, res: ServerResponse, kind: SubscriptionKind, names: string[]): Promise<void> {
    const done = this.stream(req, res, kind, names);
    this.open.add(done);
    return done.finally(() => this.open.delete(done));
  }

  /** Ends every stream the way a client sees as a normal end (not a broken connection), and waits for them. */
  async closeAll(): Promise<void> {
    this.closing = true;
    for (const res of this.responses) res.end();
    await Promise.allSettled([...this.open]);
  }

  private async stream(
    req: IncomingMessage,
    res: ServerResponse,
    kind: SubscriptionKind,
    names: string[],
  ): Promise<void> {
    const gone = new Promise<void>((resolveGone) => {
      res.once("close", () => resolveGone());
      res.once("finish", () => resolveGone());
      req.once("error", () => resolveGone());
    });
    let connection: SubscriberConnection;
    try {
      connection = await this.connect();
    } catch (error) {
      if (!res.headersSent && !res.destroyed) sendError(res, 500, `ERR ${String(error)}`);
      return;
    }
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      if (res.destroyed) return;
      // A stream that finished connecting while the server stops must not hold the stop up.
      if (this.closing) return sendError(res, 503, "ERR server is shutting down");
      this.responses.add(res);
      res.writeHead(200, {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        Connection: "keep-alive",
      });
      res.flushHeaders();
      const writable = () => !res.destroyed && !res.writableEnded;
      const send = (line: string) => {
        if (writable()) res.write(`data: ${line}\n\n`);
      };
      // node-redis may deliver a message from the same read as the subscribe confirmation, before our await
      // resumes: hold messages until the confirmation line is out, as Redis orders them.
      let held: string[] | null = [];
      const deliver = (line: string) => (held ? held.push(line) : send(line));
      const subscribed = new Set<string>();
      for (const name of names) {
        if (kind === "subscribe") {
          await connection.subscribe(name, (message, channel) => deliver(`message,${channel},${message}`));
        } else {
          await connection.pSubscribe(name, (message, channel) => deliver(`pmessage,${name},${channel},${message}`));
        }
        subscribed.add(name);
        send(`${kind},${name},${subscribed.size}`);
        for (const line of held ?? []) send(line);
        held = [];
      }
      held = null;
      this.log(`upstash ${kind} ${names.join(" ")}: streaming`);
      heartbeat = setInterval(() => {
        if (writable()) res.write(": keep-alive\n\n");
      }, HEARTBEAT_MS);
      heartbeat.unref();
      await gone;
    } catch (error) {
      this.log(`upstash ${kind} ${names.join(" ")}: ${String(error)}`);
      if (!res.destroyed && !res.writableEnded) res.end();
    } finally {
      this.responses.delete(res);
      clearInterval(heartbeat);
      // Closing the connection ends its subscriptions in Redis.
      await connection.close().catch(() => connection.destroy());
    }
  }
}

function sendError(res: ServerResponse, status: number, error: string): void {
  const text = JSON.stringify({ error });
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}
