import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/** What a stand-in delivered to the receiver: the raw body bytes matter, signatures are computed over them. */
export interface ReceivedDelivery {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Receiver {
  url: string;
  deliveries: ReceivedDelivery[];
  /** Answers the next deliveries with this status and body (default 200 `{"ok":true}`). */
  answer(status: number, body: unknown): void;
  stop(): Promise<void>;
}

/** A webhook endpoint on loopback that records every request, standing in for the Worker in these tests. */
export async function startReceiver(): Promise<Receiver> {
  const deliveries: ReceivedDelivery[] = [];
  let reply: { status: number; body: unknown } = { status: 200, body: { ok: true } };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      deliveries.push({
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      const text = JSON.stringify(reply.body);
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    deliveries,
    answer: (status, body) => {
      reply = { status, body };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
