import type { Deps } from "../deps";
import type { IoTally } from "../platform/io";

/** What middleware puts on the Hono context for routes. */
export interface AppVariables {
  deps: Deps;
  requestId: string;
  clientIp: string;
  io: IoTally;
}

export type AppEnv = { Bindings: Record<string, unknown>; Variables: AppVariables };
