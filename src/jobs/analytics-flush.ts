import { flushAnalytics } from "../features/analytics/flush";
import type { Job } from "./types";

export const analyticsFlushJob: Job = {
  name: "analytics-flush",
  description: "Moves buffered analytics events from MongoDB to ClickHouse, exactly once, in batches.",
  run: flushAnalytics,
};
