// Deno entry: the same app and jobs as the Worker, served with Deno.serve and scheduled with Deno.cron.
// Run: deno run --sloppy-imports --allow-net --allow-env --unstable-cron src/deno.ts (settings come from the
// environment, as on Workers).
import type { ExecutionContext } from "hono";
import { createApp } from "./app";
import { type Deps, depsForEnv, type RuntimeBindings } from "./deps";
import { newTally, withIoTally } from "./platform/io";
import { s3StoreFromSettings } from "./platform/objects-s3";
import { runScheduled, schedule } from "./scheduler/schedule";

declare const Deno: {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { port: number; hostname: string }) => void },
    handler: (request: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { finished: Promise<void> };
  cron?: (name: string, schedule: string, handler: () => Promise<void>) => Promise<void>;
};

const env: Record<string, unknown> = Deno.env.toObject();
// No R2 binding here: media goes over R2's S3 API when MEDIA_S3_* are set (else uploads answer 503).
const runtime: RuntimeBindings = {
  mediaStore: (config) => s3StoreFromSettings(config.media.s3, config.storeTimeoutMs),
};
const depsFor = (bindings: Record<string, unknown>): Deps => depsForEnv(bindings, runtime);
const app = createApp(depsFor);

// Jobs are registered only when Deno.cron exists (Deno Deploy, or `--unstable-cron` locally); say which.
if (typeof Deno.cron === "function") {
  for (const trigger of schedule) {
    // Deno.cron names allow letters, digits, whitespace, hyphens and underscores only.
    const name = `circle-${trigger.name}`;
    Deno.cron(name, trigger.cron, async () => {
      await withIoTally(newTally(), () => runScheduled(depsFor(env), trigger.cron));
    });
    console.log(JSON.stringify({ msg: "cron registered", name, schedule: trigger.cron }));
  }
} else {
  console.warn(JSON.stringify({ level: "warn", msg: "Deno.cron unavailable (run with --unstable-cron): no jobs run" }));
}

// Deno keeps running what a request started after its response: mail and push delivery (queued by the app's
// background middleware) is handed over as a plain background promise, its failures logged.
const background: ExecutionContext = {
  waitUntil: (promise) => {
    promise.catch((error) =>
      console.error(JSON.stringify({ level: "error", msg: "background work failed", error: String(error) })),
    );
  },
  passThroughOnException: () => {},
  props: {},
};

const port = Number(env.PORT ?? 8000);
const hostname = String(env.HOSTNAME ?? "127.0.0.1");
Deno.serve(
  {
    port,
    hostname,
    onListen: (a) => console.log(JSON.stringify({ msg: "listening", port: a.port, hostname: a.hostname })),
  },
  (request, info) => {
    // The socket's address is the client's; never trust a client-sent CF-Connecting-IP here.
    const headers = new Headers(request.headers);
    headers.set("cf-connecting-ip", info.remoteAddr.hostname);
    return app.fetch(new Request(request, { headers }), env, background);
  },
);
