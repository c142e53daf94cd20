import type { ObjectId } from "../../platform/ids";
import type { Attribution } from "./analytics";
import type { UserBilling } from "./billing";
import type { RequestKey } from "./requests";

export const ROLES = ["user", "creator", "moderator", "admin"] as const;
export const TIERS = ["free", "pro", "premium"] as const;
export type Role = (typeof ROLES)[number];
export type Tier = (typeof TIERS)[number];

export interface NotificationPreferences {
  push: boolean;
  email: boolean;
  inApp: boolean;
  marketing: boolean;
  /** Local times (the account's time zone; UTC until one is set) between which no push is sent. */
  quietHours?: QuietHours | null;
}

/** `HH:MM` to `HH:MM`, local time; a start after the end spans midnight (22:00–07:00). */
export interface QuietHours {
  start: string;
  end: string;
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

/**
 * Recorded on an account by the erasure job before it deletes anything, so a run that crashes half-way knows,
 * on the next run, whom and what the deleted records pointed at.
 */
export interface ErasurePlan {
  /** People who followed or were followed by the account: their counts are recomputed. */
  followCounterparts: ObjectId[];
  /** People in a block or mute with the account, either way: their cached relation sets lose it. */
  relationCounterparts: ObjectId[];
  /** Devices the account used (profile, sessions, votes, signup, analytics): their anonymous analytics go too. */
  deviceIds: string[];
  /** Posts the account shared: recounted once its shares are gone. */
  sharedPostIds: ObjectId[];
}

export const THEMES = ["light", "dark", "system"] as const;
export type Theme = (typeof THEMES)[number];

/**
 * `users.settings` (seed 002's user settings): absent fields take the defaults (features/settings). The zone
 * decides which calendar day "today" is for the user's day-based rules (check-in, writing streak).
 */
export interface UserSettings {
  /** IANA zone, canonical spelling. */
  timezone: string;
  /** BCP 47 language tag, canonical spelling. */
  language: string;
  theme: Theme;
  /** Keeps the journal out of every insight and analytics (entries written meanwhile stay out for good). */
  privateMode: boolean;
  emailDigests: boolean;
}

/** What a setting is until the user changes it. */
export const DEFAULT_USER_SETTINGS: UserSettings = {
  timezone: "UTC",
  language: "en",
  theme: "system",
  privateMode: false,
  emailDigests: true,
};

/** A user's settings with the defaults filled in. */
export function settingsOf(user: { settings?: Partial<UserSettings> | null }): UserSettings {
  return { ...DEFAULT_USER_SETTINGS, ...user.settings };
}

/** The latest decision per consent kind (the ledger in `consents` is the record; this is its summary). */
export interface ConsentState {
  granted: boolean;
  /** The document version agreed to (terms, privacy policy), or the consent text's version when given. */
  version: string | null;
  at: Date;
}

/** `users` (seed 000), plus `usernameLower` (case-insensitive uniqueness) and `role`. */
export interface UserDoc {
  _id: ObjectId;
  /**
   * The Idempotency-Key of the signup that made the account, when the app sent one (the fingerprint covers
   * the body without the password, which a retry proves against `passwordHash`).
   */
  signupRequest?: RequestKey;
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
  /** Seed 002's settings; absent until first changed (features/settings has the defaults). */
  settings?: Partial<UserSettings>;
  /** The latest consent decision per kind (features/consents); the `consents` ledger keeps every one. */
  consents?: Partial<Record<"terms" | "privacy" | "data_processing" | "marketing", ConsentState>>;
  /** Absent until the user changes it (see notifications/policy.ts for the defaults). */
  notificationPolicy?: Partial<NotificationPolicy>;
  /** Direct-message settings (absent: read receipts on); mirrored into each conversation's member entry. */
  messaging?: { readReceipts: boolean };
  createdAt: Date;
  updatedAt: Date;
  lastLoginAt: Date | null;
  deletedAt: Date | null;
  /**
   * Set once what deletion does at once is done: content hidden, threads recounted, caches dropped. Null (or
   * absent) on a deleted account while that is owed; the `account-deletion` job finishes it.
   */
  deletionSettledAt?: Date | null;
  /** How far the recount of a deleted account's threads got (the last post and parent comment done), while more remain. */
  deletionRecountAfter?: { posts: ObjectId | null; parents: ObjectId | null } | null;
  erasedAt?: Date | null;
  /** What the erasure job must still reach once the records it came from are gone (see ErasurePlan). */
  erasurePlan?: ErasurePlan;
  /** Follow counterparts recorded by an erasure run of an older release (read as the plan's, when present). */
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
  /**
   * The balance each of the latest entries applied within a request's one Data API call produced, recorded in
   * that same update (so the entry's `balanceAfter` is exact, filled in after the answer).
   */
  ledgerBalances?: { id: ObjectId; balanceAfter: number }[];
  /** First-touch attribution, written once with the account at signup and never changed afterwards. */
  attribution?: Attribution | null;
  /** The UUID the apps pass to the stores with a purchase (appAccountToken, obfuscatedAccountId); see billing. */
  billingAccountToken?: string;
  /** Store subscriptions and what they add up to (features/billing). */
  billing?: UserBilling;
}
