import { requeueStuckGenerations } from "../features/generations/requeue";
import type { Job } from "./types";

export const generationRequeueJob: Job = {
  name: "generation-requeue",
  description: "Re-queues generation jobs stuck in processing past the timeout, or fails them when out of attempts.",
  run: requeueStuckGenerations,
};
