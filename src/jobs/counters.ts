import { syncVoteCounters } from "../features/votes/counters";
import type { Job } from "./types";

export const countersJob: Job = {
  name: "counters",
  description:
    "Writes real-time vote counts from Redis-tracked posts into MongoDB, exactly, from the votes collection.",
  run: syncVoteCounters,
};
