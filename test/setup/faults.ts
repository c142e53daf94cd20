import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { freePort, listen } from "../../scripts/local/ports";
import { type RunningRedis, startRedisServer } from "../../scripts/local/redis";
import type { RigInfo } from "./rig-info";

/**
 * Fault rigs for outage tests: each is a store stack of its own made of real processes — a redis-server, the
 * Upstash REST server in its own Node process in front of it, and optionally a Data API gateway process — that
 * a test (inside workerd, which cannot spawn processes) pauses with SIGSTOP, resumes, kills, restarts or
 * flushes through a small control server on loopback. Rigs are made on demand, one per test file, so no other
 * suite shares the stores a test breaks, and the rest of the suite never pays for them.
 *
 * Control API (JSON): `POST /rigs {gateway?: boolean}` → a rig's URLs and secrets; `POST /rigs/{id}/{part}/{action}`
 * with part `redis` | `upstash` | `gateway` and action `pause` | `resume` | `kill` | `restart`, and
 * `POST /rigs/{id}/redis/flushall`; `DELETE /rigs/{id}`.
 */

type Part = "redis" | "upstash" | "gateway";
type Action = "pause" | "resume" | "kill" | "restart" | "flushall";

const ROOT = join(import.meta.dirname, "..", "..");
const START_TIMEOUT_MS = 20_000;

/** A Node process of ours (the Upstash server, the gateway), restartable on its port. */
class NodeService {
  private child: ChildProcess | undefined;
  private output = "";

  constructor(
    private readonly name: string,
    private readonly script: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    this.output = "";
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, this.script)], {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-8_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`${this.name} exited at start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not start in time:\n${this.output}`);
      await sleep(50);
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await exited;
  }
}

class Rig {
  private redis: RunningRedis | undefined;

  private constructor(
    readonly id: string,
    private readonly dir: string,
    private readonly redisPort: number,
    private readonly upstash: NodeService,
    private readonly token: string,
    private readonly gateway: { service: NodeService; apiKey: string } | undefined,
  ) {}

  static async create(dataDir: string, withGateway: boolean): Promise<Rig> {
    const id = randomBytes(6).toString("hex");
    const [redisPort, upstashPort] = [await freePort(), await freePort()];
    const token = randomBytes(18).toString("base64url");
    const upstash = new NodeService("upstash rest server", "scripts/local/upstash-server.ts", upstashPort, {
      UPSTASH_PORT: String(upstashPort),
      UPSTASH_TOKEN: token,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      UPSTASH_QUIET: "1",
    });
    let gateway: { service: NodeService; apiKey: string } | undefined;
    if (withGateway) {
      const port = await freePort();
      const apiKey = randomBytes(18).toString("base64url");
      gateway = {
        apiKey,
        service: new NodeService("data api gateway", "gateway/server.ts", port, {
          GATEWAY_PORT: String(port),
          DATA_API_KEYS: apiKey,
          DATA_API_DATABASES: "circle",
          MONGODB_URI: "",
        }),
      };
    }
    const rig = new Rig(id, join(dataDir, `fault-rig-${id}`), redisPort, upstash, token, gateway);
    await rig.startRedis();
    await Promise.all([upstash.start(), gateway?.service.start()]);
    return rig;
  }

  info(): RigInfo {
    return {
      id: this.id,
      upstashUrl: `http://127.0.0.1:${this.upstash.port}`,
      upstashToken: this.token,
      ...(this.gateway
        ? {
            gateway: {
              url: `http://127.0.0.1:${this.gateway.service.port}/app/data-api/endpoint/data/v1`,
              apiKey: this.gateway.apiKey,
            },
          }
        : {}),
    };
  }

  private async startRedis(): Promise<void> {
    this.redis = await startRedisServer({ port: this.redisPort, dir: this.dir });
  }

  async act(part: Part, action: Action): Promise<void> {
    if (part === "redis") return this.actOnRedis(action);
    const service = part === "upstash" ? this.upstash : this.gateway?.service;
    if (!service) throw new Error(`this rig has no ${part}`);
    if (action === "pause") service.signal("SIGSTOP");
    else if (action === "resume") service.signal("SIGCONT");
    else if (action === "kill") await service.kill();
    else if (action === "restart") {
      await service.kill();
      await service.start();
    } else throw new Error(`cannot ${action} the ${part}`);
  }

  private async actOnRedis(action: Action): Promise<void> {
    const pid = this.redis?.pid;
    if (action === "pause" && pid) process.kill(pid, "SIGSTOP");
    else if (action === "resume" && pid) process.kill(pid, "SIGCONT");
    else if (action === "kill") await this.killRedis();
    else if (action === "restart") {
      await this.killRedis();
      await this.startRedis();
    } else if (action === "flushall") await redisCommand(this.redisPort, "FLUSHALL");
    else throw new Error(`cannot ${action} redis now`);
  }

  private async killRedis(): Promise<void> {
    const redis = this.redis;
    if (!redis) return;
    this.redis = undefined;
    process.kill(redis.pid, "SIGCONT");
    process.kill(redis.pid, "SIGKILL");
    await redis.stop();
  }

  async stop(): Promise<void> {
    await Promise.all([this.upstash.kill(), this.gateway?.service.kill(), this.killRedis()]);
  }
}

/** Starts the control server; `stop` tears down every rig still standing. */
export async function startFaultControl(port: number, dataDir: string): Promise<{ stop(): Promise<void> }> {
  const rigs = new Map<string, Rig>();
  const server: Server = createServer((req, res) => {
    void route(req, res).catch((error: unknown) => reply(res, 500, { error: String(error) }));
  });
  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const parts = (req.url ?? "/").split("/").filter(Boolean);
    const body = await readJson(req);
    if (req.method === "POST" && parts.length === 1 && parts[0] === "rigs") {
      const rig = await Rig.create(dataDir, body.gateway === true);
      rigs.set(rig.id, rig);
      return reply(res, 201, rig.info());
    }
    const rig = parts[0] === "rigs" && parts[1] ? rigs.get(parts[1]) : undefined;
    if (!rig) return reply(res, 404, { error: "no such rig" });
    if (req.method === "DELETE" && parts.length === 2) {
      rigs.delete(rig.id);
      await rig.stop();
      return reply(res, 204, null);
    }
    if (req.method === "POST" && parts.length === 4) {
      await rig.act(parts[2] as Part, parts[3] as Action);
      return reply(res, 204, null);
    }
    return reply(res, 404, { error: "no such action" });
  };
  await listen(server, port, "127.0.0.1");
  const stopAll = () => Promise.all([...rigs.values()].map((rig) => rig.stop().catch(() => {})));
  return {
    async stop() {
      await stopAll();
      rigs.clear();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, body === null ? {} : { "content-type": "application/json" });
  res.end(body === null ? undefined : JSON.stringify(body));
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** One inline command over raw RESP (FLUSHALL), answered with +OK. */
function redisCommand(port: number, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error(`${command}: no answer`));
    });
    socket.once("error", reject);
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.once("data", (chunk) => {
      socket.destroy();
      const text = chunk.toString("utf8");
      if (text.startsWith("+OK")) resolve();
      else reject(new Error(`${command}: ${text.trim()}`));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
