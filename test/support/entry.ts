import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/worker";

/**
 * The Worker's entry module (src/worker.ts) called in this isolate with the Worker's bindings, as workerd calls
 * it, minus the SELF loopback. Under @cloudflare/vitest-pool-workers every SELF request is slower the more the
 * file has sent (cloudflare/workers-sdk#15446: 80 requests take 0.4 s at first and 30 s after a thousand), so a
 * file that sends thousands of requests (the fuzz suite) calls the entry directly; its cost stays flat.
 */
export async function throughWorkerEntry(request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, env as unknown as Record<string, unknown>, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}
