import { rebuildLeaderboards } from "../features/leaderboards/service";
import type { Job } from "./types";

export const leaderboardsJob: Job = {
  name: "leaderboards",
  description: "Rebuilds from the ledger any current leaderboard (daily, weekly, all-time) that Redis has lost.",
  run: rebuildLeaderboards,
};
