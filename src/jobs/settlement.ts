import { settleVotes } from "../features/gems/settlement";
import type { Job } from "./types";

export const settlementJob: Job = {
  name: "settlement",
  description: "Turns settled-delay votes into gems for post authors, one ledger entry per author per batch.",
  run: settleVotes,
};
