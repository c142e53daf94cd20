import { type ChildProcess, spawn } from "node:child_process";

export interface RunningWorker {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs the Worker in workerd with `wrangler dev` on loopback and waits until /health answers 200.
 * Settings come from `.dev.vars`, or from `envFile` when given.
 */
export async function startWranglerDev(opts: {
  port: number;
  envFile?: string;
  quiet?: boolean;
  timeoutMs?: number;
}): Promise<RunningWorker> {
  const args = ["node_modules/wrangler/bin/wrangler.js", "dev", "--ip", "127.0.0.1", "--port", String(opts.port)];
  args.push("--test-scheduled", "--show-interactive-dev-session=false");
  if (opts.envFile) args.push("--env-file", opts.envFile);
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", opts.quiet ? "ignore" : "inherit", opts.quiet ? "pipe" : "inherit"],
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const url = `http://127.0.0.1:${opts.port}`;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}\n${stderr}`);
    try {
      if ((await fetch(`${url}/health`)).status === 200) return { url, process: child, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  await stop();
  throw new Error(`the Worker did not become healthy within the time limit\n${stderr}`);
}
