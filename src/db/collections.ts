/** MongoDB collection names (seed 000 plus the platform's own). */
export const collections = {
  users: "users",
  posts: "posts",
  votes: "votes",
  gemTransactions: "gem_transactions",
  follows: "follows",
  referrals: "referrals",
  reports: "reports",
  moderationActions: "moderation_actions",
  appeals: "appeals",
  notifications: "notifications",
  featureFlags: "feature_flags",
  analyticsEvents: "analytics_events",
  generationJobs: "generation_jobs",
  jobRuns: "job_runs",
  sessions: "sessions",
  emailTokens: "email_tokens",
  emailOutbox: "email_outbox",
  auditLogs: "audit_logs",
  comments: "comments",
  shares: "shares",
  blocks: "blocks",
  media: "media",
} as const;

export type CollectionKey = keyof typeof collections;
