import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createGatewayApp, type GatewayAppOptions } from "./app";
import { type BackendConfig, openBackend } from "./backends/index";
import type { Backend } from "./backends/types";

export interface GatewayOptions extends GatewayAppOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  backend: BackendConfig;
  /** Server-side time limit of each operation. Default 10,000 ms. */
  maxTimeMS?: number;
}

export interface RunningGateway {
  /** Base URL to use as DATA_API_URL, e.g. http://127.0.0.1:8081/app/data-api/endpoint/data/v1 */
  url: string;
  /** Origin of the server (for /health and the short /v1 paths). */
  origin: string;
  backend: Backend;
  stop(): Promise<void>;
}

/** In-flight requests get this long to finish on stop before their connections are cut. */
const STOP_GRACE_MS = 5_000;

const IDLE_KEEP_ALIVE_MS = 120_000;

/** Starts the gateway over HTTP on Node (node:http through @hono/node-server). */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const backend = await openBackend(options.backend, {
    ...(options.maxTimeMS ? { maxTimeMS: options.maxTimeMS } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const host = options.host ?? "127.0.0.1";
  let server: ReturnType<typeof serve>;
  try {
    const app = createGatewayApp(backend, options);
    server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const created = serve({ fetch: app.fetch, port: options.port, hostname: host }, () => resolve(created));
      created.once("error", reject);
    });
  } catch (error) {
    await backend.close();
    throw error;
  }
  // Keep idle connections open longer than clients do: when the server closes a keep-alive connection at the
  // moment a client reuses it, the client's write fails ("connection lost") and a write cannot be retried.
  const http = server as { keepAliveTimeout?: number; headersTimeout?: number };
  http.keepAliveTimeout = IDLE_KEEP_ALIVE_MS;
  http.headersTimeout = IDLE_KEEP_ALIVE_MS + 1_000;
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        }, STOP_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        // Keep-alive connections with no request in flight would otherwise hold close() open.
        (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      await backend.close();
    })();
    return stopping;
  };
  return { url: `${origin}/app/data-api/endpoint/data/v1`, origin, backend, stop };
}
