import type { Server } from "node:net";
import { createServer } from "node:net";

/** Asks the OS for a free TCP port on loopback (closed again before returning). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `server` listening on host:port; rejects (instead of throwing later) when the port is taken. Idle
 * keep-alive connections stay open longer than clients keep them: a server closing one just as a client
 * reuses it makes that request fail with "connection lost".
 */
export function listen(server: Server, port: number, host: string): Promise<void> {
  const http = server as Server & { keepAliveTimeout?: number; headersTimeout?: number };
  http.keepAliveTimeout = 120_000;
  http.headersTimeout = 121_000;
  return new Promise<void>((resolveListen, rejectListen) => {
    server.once("error", rejectListen);
    server.listen(port, host, () => {
      server.removeListener("error", rejectListen);
      resolveListen();
    });
  });
}
