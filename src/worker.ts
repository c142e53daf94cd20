import { createApp } from "./app";

export { ConversationRoom } from "./features/messaging/room";

import { depsForEnv } from "./deps";
import { newTally, withIoTally } from "./platform/io";
import { runScheduled } from "./scheduler/schedule";

const app = createApp(depsForEnv);

/** Cloudflare Workers entry: HTTP requests and cron triggers share one app and one set of jobs. */
export default {
  fetch: app.fetch,
  async scheduled(controller: ScheduledController, env: Record<string, unknown>, ctx: ExecutionContext) {
    const deps = depsForEnv(env);
    ctx.waitUntil(withIoTally(newTally(), () => runScheduled(deps, controller.cron)));
  },
} satisfies ExportedHandler<Record<string, unknown>>;
