import { createServer, request as forward, type Server } from "node:http";

/**
 * A test-only stand-in for "the Data API applied the write, but its answer came too late": requests to
 * `/hold/{ms}/…` are forwarded to the gateway at once and, for write actions (or only the actions listed, as in
 * `/hold/{ms}:batch,insertOne/…`), the gateway's answer is held back `ms` milliseconds before it is passed on. A Worker whose STORE_TIMEOUT_MS is shorter answers 503 while the
 * write has been (or is being) applied, which is exactly what a client then retries. Reads pass straight through,
 * so a request gets as far as its write.
 */
const WRITE_ACTIONS = new Set([
  "insertOne",
  "insertMany",
  "updateOne",
  "updateMany",
  "replaceOne",
  "deleteOne",
  "deleteMany",
  "findOneAndUpdate",
  "findOneAndDelete",
  "bulkWrite",
  "batch",
]);

export function startHoldProxy(port: number, gatewayPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const match = /^\/hold\/(\d+)(?::([A-Za-z,]+))?(\/.*)$/.exec(req.url ?? "");
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    const holdMs = Number(match[1]);
    const held = match[2] ? new Set(match[2].split(",")) : WRITE_ACTIONS;
    const path = match[3] as string;
    const action = /\/action\/([A-Za-z]+)$/.exec(path)?.[1] ?? "";
    const upstream = forward(
      { host: "127.0.0.1", port: gatewayPort, path, method: req.method, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on("data", (chunk: Buffer) => chunks.push(chunk));
        answer.on("end", () => {
          const deliver = () => {
            if (res.destroyed) return;
            res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(chunks));
          };
          if (held.has(action)) setTimeout(deliver, holdMs);
          else deliver();
        });
      },
    );
    upstream.on("error", () => {
      if (!res.destroyed) res.writeHead(502).end();
    });
    // The caller may give up (its timeout); the gateway still gets, and applies, the whole request.
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}
