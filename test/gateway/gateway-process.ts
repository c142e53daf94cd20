/**
 * The gateway as a child process for tests that kill it: `node --import tsx test/gateway/gateway-process.ts`
 * with the CLI's environment (gateway/config.ts), plus `dropCollection`, which the CLI never enables. Prints
 * the same "listening" line as gateway/server.ts; SIGTERM stops it gracefully.
 */
import { loadGatewayConfig } from "../../gateway/config";
import { startGateway } from "../../gateway/node";

const gateway = await startGateway({
  ...loadGatewayConfig(process.env),
  allowDrop: true,
  log: (line) => {
    if (line.includes('"level"')) process.stderr.write(`${line}\n`);
  },
});
process.stdout.write(`${JSON.stringify({ msg: "data api gateway listening", url: gateway.url, pid: process.pid })}\n`);
process.on("SIGTERM", () => {
  gateway.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
