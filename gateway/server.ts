/**
 * `npm run gateway`: the Data API gateway as a process. Settings come from the environment (see config.ts);
 * one JSON line per request goes to stdout; SIGINT / SIGTERM stop it gracefully (in-flight requests finish,
 * the embedded engine writes its last snapshot).
 */
import { GatewayConfigError, loadGatewayConfig } from "./config";
import { startGateway } from "./node";

function writeLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  let options: ReturnType<typeof loadGatewayConfig>;
  try {
    options = loadGatewayConfig(process.env);
  } catch (error) {
    if (error instanceof GatewayConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const gateway = await startGateway({ ...options, log: writeLine });
  writeLine(
    JSON.stringify({
      msg: "data api gateway listening",
      url: gateway.url,
      backend: gateway.backend.kind,
      databases: options.databases,
    }),
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    writeLine(JSON.stringify({ msg: "shutting down", signal }));
    gateway.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
