/**
 * The gateway on Deno: `deno run --sloppy-imports --allow-net --allow-env --allow-read --allow-write --allow-sys
 * gateway/deno.ts`. Same settings as the Node CLI (config.ts), served with Deno.serve; the protocol layer
 * (app.ts) is web-standard and shared as is.
 */
import { createGatewayApp } from "./app";
import { openBackend } from "./backends/index";
import { GatewayConfigError, loadGatewayConfig } from "./config";

interface DenoServer {
  shutdown(): Promise<void>;
}

interface DenoRuntime {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen?: (address: { hostname: string; port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoServer;
  addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  exit(code: number): never;
}

declare const Deno: DenoRuntime;

function writeLine(line: string): void {
  console.log(line);
}

let options: ReturnType<typeof loadGatewayConfig>;
try {
  options = loadGatewayConfig(Deno.env.toObject());
} catch (error) {
  if (error instanceof GatewayConfigError) {
    console.error(error.message);
    Deno.exit(2);
  }
  throw error;
}

const backend = await openBackend(options.backend, {
  ...(options.maxTimeMS ? { maxTimeMS: options.maxTimeMS } : {}),
  log: writeLine,
});
const app = createGatewayApp(backend, { ...options, log: writeLine });
const server = Deno.serve(
  {
    port: options.port,
    hostname: options.host ?? "127.0.0.1",
    onListen: ({ hostname, port }) =>
      writeLine(
        JSON.stringify({
          msg: "data api gateway listening",
          url: `http://${hostname}:${port}/app/data-api/endpoint/data/v1`,
          backend: backend.kind,
          runtime: "deno",
        }),
      ),
  },
  app.fetch,
);

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await server.shutdown();
  await backend.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", () => void shutdown());
Deno.addSignalListener("SIGTERM", () => void shutdown());
