import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync } from "node:fs";
import { connect } from "node:net";
import { delimiter, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const EXTRA_DIRS = ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"];
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_LIMIT = 16 * 1024;

export interface RunningRedis {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Path of the `redis-server` binary (PATH first, then the usual install dirs), or null. */
export function findRedisServer(): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: keep looking
    }
  }
  return null;
}

/**
 * Starts a throwaway redis-server on loopback (no RDB/AOF persistence) and resolves once it answers PING.
 * The process is killed if this process exits without calling stop().
 */
export async function startRedisServer(opts: { port: number; dir: string; host?: string }): Promise<RunningRedis> {
  const host = opts.host ?? "127.0.0.1";
  const binary = findRedisServer();
  if (!binary) {
    throw new Error(
      "redis-server not found. Install it: `apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), or set REDIS_URL to use an existing Redis.",
    );
  }
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });

  const child = spawn(
    binary,
    [
      "--port",
      String(opts.port),
      "--bind",
      host,
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const exited = new Promise<number | null>((resolveExit) => {
    child.once("exit", (code) => resolveExit(code));
    child.once("error", (error) => {
      collect(Buffer.from(String(error)));
      resolveExit(-1);
    });
  });
  // A crashed test run must not leave redis-server behind.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.removeListener("exit", killOnExit);
    await stopChild(child, exited);
  };

  try {
    await waitForPing(host, opts.port, child.pid, exited);
  } catch (error) {
    await stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`redis-server on ${host}:${opts.port} did not start: ${reason}\n${output.trim()}`);
  }
  if (child.pid === undefined) throw new Error("redis-server has no pid");
  return { url: `redis://${host}:${opts.port}`, pid: child.pid, stop };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function waitForPing(host: string, port: number, pid: number | undefined, exited: Promise<number | null>) {
  let processExit: number | null | undefined;
  void exited.then((code) => {
    processExit = code;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (processExit !== undefined) throw new Error(`process exited with code ${processExit}`);
    // Another Redis already on this port would answer too: only our own process counts.
    if ((await answeringPid(host, port)) === pid) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no answer to PING within ${START_TIMEOUT_MS / 1000} s`);
}

/** PING then INFO over raw RESP; resolves with the answering server's process_id, or null. */
function answeringPid(host: string, port: number): Promise<number | null> {
  return new Promise((resolvePid) => {
    const socket = connect({ host, port });
    let reply = "";
    const done = (pid: number | null) => {
      socket.destroy();
      resolvePid(pid);
    };
    socket.setTimeout(1000, () => done(null));
    socket.once("error", () => done(null));
    socket.once("connect", () => socket.write("PING\r\nINFO server\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      if (!reply.startsWith("+PONG") && reply.includes("\r\n")) return done(null);
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match) done(Number(match[1]));
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.REDIS_PORT ?? 6379);
  const dir = process.env.REDIS_DIR ?? ".data/redis";
  const redis = await startRedisServer({ port, dir, host: process.env.REDIS_HOST });
  console.log(`redis-server ${redis.url} (pid ${redis.pid}, dir ${dir})`);
  const shutdown = () => {
    void redis.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
