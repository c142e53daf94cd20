import { createServer, type Server } from "node:http";
import { type RunningStack, startLocalStack } from "../../scripts/local/stack";
import { runMigrations } from "../../scripts/migrate";
import { startFaultControl } from "./faults";
import { startHoldProxy } from "./hold-proxy";
import { currentTestStack } from "./plan";

let stack: RunningStack | undefined;
let jwksServer: Server | undefined;
let holdProxy: Server | undefined;
let faultControl: { stop(): Promise<void> } | undefined;

/** Starts the real local stack once for the whole test run and applies migrations. */
export async function setup(): Promise<void> {
  const { plan } = currentTestStack();
  // The OAuth providers' JWKS endpoints, as Google and Apple publish theirs.
  const jwks = JSON.stringify({ keys: [plan.oauth.publicJwk] });
  jwksServer = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
  await new Promise<void>((resolve) => jwksServer?.listen(plan.oauth.port, "127.0.0.1", resolve));
  stack = await startLocalStack(plan);
  holdProxy = await startHoldProxy(plan.holdProxyPort, plan.ports.gateway);
  faultControl = await startFaultControl(plan.faultControlPort, plan.dataDir);
  await runMigrations({
    DATA_API_URL: stack.workerEnv.DATA_API_URL!,
    DATA_API_KEY: plan.secrets.dataApiKey,
    DATA_API_DATA_SOURCE: "circle",
    MONGO_DATABASE: plan.database,
    CLICKHOUSE_URL: stack.workerEnv.CLICKHOUSE_URL!,
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: plan.secrets.clickhousePassword,
    CLICKHOUSE_DATABASE: "default",
  });
}

export async function teardown(): Promise<void> {
  holdProxy?.closeAllConnections();
  await new Promise((resolve) => holdProxy?.close(resolve));
  await faultControl?.stop();
  await stack?.stop();
  await new Promise((resolve) => jwksServer?.close(resolve));
}
