import { afterResponse } from "../../platform/background";
import { registerPushOwedListener } from "../notifications/service";
import { pushNow } from "./delivery";

let registered = false;

/**
 * Connects push delivery to notifications: whenever a notification's write records an owed push, the
 * recipients' pushes are sent right after the response (or at the end of the job run that notified them).
 * Idempotent: the entries call it once per isolate.
 */
export function registerPushDelivery(): void {
  if (registered) return;
  registered = true;
  registerPushOwedListener((deps, recipientIds) => afterResponse(() => pushNow(deps, recipientIds)));
}
