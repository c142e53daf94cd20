import { recomputeTrending } from "../features/feeds/trending";
import type { Job } from "./types";

export const trendingJob: Job = {
  name: "trending",
  description: "Recomputes engagement, trending and hot scores of recent posts and warms the first feed pages.",
  run: recomputeTrending,
};
