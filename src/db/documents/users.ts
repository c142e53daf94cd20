import type { ObjectId } from "../../platform/ids";

export const ROLES = ["user", "creator", "moderator", "admin"] as const;
export const TIERS = ["free", "pro", "premium"] as const;
export type Role = (typeof ROLES)[number];
export type Tier = (typeof TIERS)[number];

export interface NotificationPreferences {
  push: boolean;
  email: boolean;
  inApp: boolean;
  marketing: boolean;
}

export const POLICY_ACTIONS = ["accept", "filter", "drop"] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** `users.notificationPolicy`: what happens to notifications caused by people the recipient does not follow, and by new accounts. */
export interface NotificationPolicy {
  notFollowing: PolicyAction;
  newAccounts: PolicyAction;
}

/**
 * One install of the app on a user's list (`users.devices`). The list is kept in the order devices were last
 * seen: every registration moves its device to the end, so the least recently seen one is first.
 */
export interface DeviceRecord {
  deviceId: string;
  platform: string;
  lastSeenAt: Date;
  /** At most one account holds a push token: registering it on one account removes it from any other. */
  pushToken: string | null;
  appVersion?: string | null;
}

/** `users` (seed 000), plus `usernameLower` (case-insensitive uniqueness) and `role`. */
export interface UserDoc {
  _id: ObjectId;
  username: string;
  usernameLower: string;
  email: string | null;
  emailVerified: boolean;
  /** A requested email change awaiting confirmation from the new address, and when its link expires. */
  pendingEmail?: string | null;
  pendingEmailExpiresAt?: Date | null;
  passwordHash: string | null;
  displayName: string;
  avatarUrl: string | null;
  bio: string;
  profileTheme: string | null;
  oauthProviders: { provider: string; providerId: string; connectedAt: Date }[];
  role: Role;
  tier: Tier;
  tierExpiresAt: Date | null;
  gemBalance: number;
  totalGemsEarned: number;
  totalGemsSpent: number;
  totalPosts: number;
  totalVotesReceived: number;
  totalVotesGiven: number;
  followersCount: number;
  followingCount: number;
  currentStreak: number;
  longestStreak: number;
  lastActiveDate: string | null;
  referralCode: string;
  referredBy: ObjectId | null;
  referralCount: number;
  referralBonusExpiresAt: Date | null;
  trustScore: number;
  shadowBanned: boolean;
  bannedAt: Date | null;
  banReason: string | null;
  reportCount: number;
  /** Trust and safety (features/moderation): a ban's end (null: until lifted), reporter accuracy, review queue. */
  banExpiresAt?: Date | null;
  reportsActioned?: number;
  reportsDismissed?: number;
  moderationQueuedAt?: Date | null;
  devices: DeviceRecord[];
  featureFlags: Record<string, boolean>;
  notificationPreferences: NotificationPreferences;
  /** Absent until the user changes it (see notifications/policy.ts for the defaults). */
  notificationPolicy?: Partial<NotificationPolicy>;
  createdAt: Date;
  updatedAt: Date;
  lastLoginAt: Date | null;
  deletedAt: Date | null;
  erasedAt?: Date | null;
  /** The accounts whose follow counts the erasure job must recompute, recorded before any edge is deleted. */
  erasureCounterparts?: ObjectId[];
  /** Shop purchases (features/gems/shop.ts): models and profile themes bought, and the ad-free pass's end. */
  unlockedModels?: string[];
  unlockedThemes?: string[];
  adFreeUntil?: Date | null;
  /** When a moderator last sanctioned the account (pauses trust recovery); see `trust-accrual`. */
  lastSanctionedAt?: Date | null;
  /** The user's pinned posts, oldest pin first (at most POST_MAX_PINNED: the array's length is the cap). */
  pinnedPostIds?: ObjectId[];
  /** Ids of recently revoked sessions, whose access tokens are refused at once (see core/standing.ts). */
  revokedSessionIds?: string[];
  /** The UTC day trust last grew from clean activity (one gain per day). */
  trustAccruedOn?: string | null;
  /** The balance the latest settlement entry produced, recorded in the same update (exact `balanceAfter`). */
  settledEntry?: { id: ObjectId; balanceAfter: number };
  /**
   * Set when the avatar changes, until the `avatar-sync` job has put `avatarUrl` on every post and comment
   * of the user (features/media/avatar-sync.ts); `requestedAt` is the latest change.
   */
  avatarSync?: { requestedAt: Date } | null;
  /** Ids of the latest ledger entries applied to gemBalance (makes applying an entry idempotent). */
  ledgerApplied?: ObjectId[];
}
