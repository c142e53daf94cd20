import { readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Readable } from "node:stream";
import { Log, LogLevel, Miniflare } from "miniflare";

/**
 * Runs a built Worker bundle in workerd through Miniflare's API (what `wrangler dev` uses underneath, without
 * its Node proxy in front): requests go straight to workerd's socket. For benchmarks and for checking that
 * the production bundle starts and answers.
 */

export interface MiniflareWorkerOptions {
  /** The bundle (an ES module) to run, e.g. dist/worker.js. */
  scriptPath: string;
  /** Plain-text bindings (the Worker's settings). */
  bindings: Record<string, string>;
  /** A directory of static assets, matched before the Worker runs (as `wrangler deploy --assets <dir>`). */
  assets?: string;
  /** Defaults to wrangler.toml's `compatibility_date` and `compatibility_flags`. */
  compatibilityDate?: string;
  compatibilityFlags?: string[];
  port?: number;
  /** Opens workerd's V8 inspector on this port (DevTools, CPU profiles). */
  inspectorPort?: number;
  /** Polled after start until it answers 200 (the start-up time includes it); null to skip. */
  readyPath?: string | null;
  timeoutMs?: number;
}

export interface MiniflareWorker {
  url: string;
  miniflare: Miniflare;
  /** workerd's process id (Linux: read from /proc), to measure its CPU time; undefined elsewhere. */
  workerdPid: number | undefined;
  /**
   * From `new Miniflare()` to workerd listening with the script loaded, and to the first 200 on readyPath (wall
   * time); and the CPU time workerd had used when it was ready (Linux only), which a loaded machine does not blur.
   */
  startup: { readyMs: number; firstAnswerMs: number | undefined; readyCpuMs: number | undefined };
  /** What the Worker wrote to stdout/stderr lately (console output), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

/** The runtime settings wrangler.toml gives the Worker (compatibility date and flags). */
export function wranglerCompatibility(path = "wrangler.toml"): { date: string; flags: string[] } {
  const toml = readFileSync(resolve(path), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1];
  if (!date) throw new Error(`${path} has no compatibility_date`);
  return { date, flags: [...(flags ?? "").matchAll(/"([^"]+)"/g)].map((m) => m[1]!) };
}

export async function startMiniflareWorker(opts: MiniflareWorkerOptions): Promise<MiniflareWorker> {
  const compat = opts.compatibilityDate ? undefined : wranglerCompatibility();
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  const before = workerdChildren();
  const started = performance.now();
  const miniflare = new Miniflare({
    modules: true,
    scriptPath: resolve(opts.scriptPath),
    // Module names are relative to this; the bundle may live outside the working directory.
    modulesRoot: dirname(resolve(opts.scriptPath)),
    compatibilityDate: opts.compatibilityDate ?? compat!.date,
    compatibilityFlags: opts.compatibilityFlags ?? compat!.flags,
    bindings: opts.bindings,
    // As `wrangler deploy <script> --assets <dir>` configures the router: the Worker answers what no asset does.
    ...(opts.assets ? { assets: { directory: resolve(opts.assets), routerConfig: { has_user_worker: true } } } : {}),
    host: "127.0.0.1",
    port: opts.port ?? 0,
    ...(opts.inspectorPort === undefined ? {} : { inspectorPort: opts.inspectorPort }),
    // No request to Cloudflare for `request.cf` data (offline, and nothing here reads it).
    cf: false,
    log: new Log(LogLevel.WARN),
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      stdout.on("data", keep);
      stderr.on("data", keep);
    },
  });
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= miniflare.dispose();
    return stopped;
  };
  let url: string;
  try {
    url = (await miniflare.ready).origin;
  } catch (error) {
    await stop().catch(() => {});
    throw new Error(`the Worker did not start in workerd: ${String(error)}\n${output}`);
  }
  const readyMs = performance.now() - started;
  const added = workerdChildren().filter((pid) => !before.includes(pid));
  const workerdPid = added.length === 1 ? added[0] : undefined;
  // A fresh process: everything it has used so far is start-up (runtime boot, script compile and evaluation).
  const readyCpuSeconds = workerdPid === undefined ? undefined : processCpuSeconds(workerdPid);
  let firstAnswerMs: number | undefined;
  if (opts.readyPath !== null) {
    const path = opts.readyPath ?? "/health";
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      const status = await fetch(`${url}${path}`).then(
        async (res) => {
          await res.arrayBuffer();
          return res.status;
        },
        () => 0,
      );
      if (status === 200) break;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`${path} did not answer 200 within the time limit (last: ${status})\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    firstAnswerMs = performance.now() - started;
  }
  return {
    url,
    miniflare,
    workerdPid,
    startup: { readyMs, firstAnswerMs, readyCpuMs: readyCpuSeconds === undefined ? undefined : readyCpuSeconds * 1000 },
    output: () => output,
    stop,
  };
}

/** Process ids of this process's workerd children (Linux /proc; empty elsewhere). */
function workerdChildren(): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of entries) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === process.pid && comm === "workerd") pids.push(Number(name));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

/** User + system CPU seconds a process has used so far (Linux /proc; undefined elsewhere). */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat(5) (utime, stime), in clock ticks; USER_HZ is 100 on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
