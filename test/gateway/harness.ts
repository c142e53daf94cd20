import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { MongoClient } from "mongodb";
import { type GatewayOptions, type RunningGateway, startGateway } from "../../gateway/index";
import { freePort } from "../../scripts/local/ports";
import { DataApiTestClient } from "./client";

export type BackendKind = "embedded" | "mongodb";

export const API_KEY = "test-key-0123456789abcdef";
export const MONGODB_URI = process.env.MONGODB_URI;

export interface TestGateway {
  gateway: RunningGateway;
  client: DataApiTestClient;
  database: string;
  stop(): Promise<void>;
}

/** The backends the contract suite runs against: embedded always, MongoDB when MONGODB_URI is set. */
export const BACKENDS: { kind: BackendKind; available: boolean }[] = [
  { kind: "embedded", available: true },
  { kind: "mongodb", available: Boolean(MONGODB_URI) },
];

let sequence = 0;

/** A collection name no other test uses (tests share a gateway and a database). */
export function uniqueName(prefix: string): string {
  sequence += 1;
  return `${prefix}_${sequence}_${Math.random().toString(36).slice(2, 7)}`;
}

export async function tempDir(prefix = "gateway-test-"): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Starts a gateway over HTTP on a free loopback port. For MongoDB each gateway gets its own database (dropped
 * on stop), so runs never see each other's data.
 */
export async function startTestGateway(
  kind: BackendKind,
  overrides: Partial<Omit<GatewayOptions, "backend">> & { backend?: GatewayOptions["backend"]; database?: string } = {},
): Promise<TestGateway> {
  const database = overrides.database ?? (kind === "mongodb" ? uniqueName("circle_gateway_test") : "circle_test");
  const backend: GatewayOptions["backend"] =
    overrides.backend ?? (kind === "mongodb" ? { kind: "mongodb", uri: MONGODB_URI ?? "" } : { kind: "embedded" });
  const gateway = await startGateway({
    port: await freePort(),
    apiKeys: [API_KEY],
    databases: [database],
    allowDrop: true,
    ...overrides,
    backend,
  });
  const client = new DataApiTestClient(gateway.url, API_KEY, database);
  return {
    gateway,
    client,
    database,
    async stop() {
      await gateway.stop();
      if (kind === "mongodb" && MONGODB_URI && !overrides.database) {
        const mongo = new MongoClient(MONGODB_URI);
        try {
          await mongo.db(database).dropDatabase();
        } finally {
          await mongo.close();
        }
      }
    },
  };
}

/** Polls until `check` returns true or the time runs out (for TTL sweeps and other background work). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 3_000, everyMs = 25): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export interface GatewayProcess {
  child: ChildProcess;
  client: DataApiTestClient;
  exited: Promise<number | null>;
  stderr(): string;
}

/**
 * The gateway as a child process (test/gateway/gateway-process.ts) with the CLI's environment plus `env`,
 * for tests that kill it or must not share its event loop. Resolves once it listens.
 */
export async function startGatewayChild(env: Record<string, string>, database: string): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "test/gateway/gateway-process.ts"], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? "",
      DATA_API_KEYS: API_KEY,
      GATEWAY_PORT: String(port),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`gateway did not start: ${stderr}`));
    }, 30_000);
    lines.on("line", (line) => {
      const match = /"url":"([^"]+)"/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening: ${stderr}`));
    });
  });
  return { child, client: new DataApiTestClient(url, API_KEY, database), exited, stderr: () => stderr };
}

/** Sends `signal` and resolves with the exit code. */
export async function kill(gateway: GatewayProcess, signal: NodeJS.Signals): Promise<number | null> {
  gateway.child.kill(signal);
  return gateway.exited;
}
