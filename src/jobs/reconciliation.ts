import { reconcileGems } from "../features/gems/reconciliation";
import type { Job } from "./types";

export const reconciliationJob: Job = {
  name: "gem-reconciliation",
  description:
    "Completes interrupted gem movements and unpaid referral bonuses, and reports every user whose balance differs from their ledger.",
  run: reconcileGems,
};
