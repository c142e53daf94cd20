import { randomBytes } from "node:crypto";
import { type RunningStreamServer, startStreamServer } from "./stream-server";

/**
 * The live-video stand-in of the local stack: Cloudflare Stream's live inputs API (scripts/local/stream-server.ts)
 * with an account and API token chosen in the plan, so the Worker's settings can be written before it starts.
 * Playback URLs point at the stand-in itself, which serves them as Stream does (204 until "connected").
 */
export interface StreamPlan {
  port: number;
  accountId: string;
  apiToken: string;
}

export function newStreamPlan(port: number): StreamPlan {
  return { port, accountId: randomBytes(16).toString("hex"), apiToken: randomBytes(30).toString("base64url") };
}

export async function startStreamStandIn(
  plan: StreamPlan,
  log: (line: string) => void = () => {},
): Promise<RunningStreamServer> {
  const server = await startStreamServer({ port: plan.port, accountId: plan.accountId, apiToken: plan.apiToken });
  log(`live-video stand-in (Cloudflare Stream live inputs) up: ${server.url}`);
  return server;
}

/** The Worker settings that point live video at the stand-in (known from the plan alone). */
export function streamWorkerEnv(plan: StreamPlan): Record<string, string> {
  const url = `http://127.0.0.1:${plan.port}`;
  return {
    LIVE_VIDEO_API_URL: `${url}/client/v4`,
    LIVE_VIDEO_ACCOUNT_ID: plan.accountId,
    LIVE_VIDEO_API_TOKEN: plan.apiToken,
    LIVE_VIDEO_PLAYBACK_ORIGIN: url,
  };
}
