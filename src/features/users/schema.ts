import { z } from "@hono/zod-openapi";
import type { ObjectId } from "../../platform/ids";
import type { NotificationPolicy } from "../notifications/policy";

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

export interface DeviceRecord {
  deviceId: string;
  platform: string;
  lastSeenAt: Date;
  pushToken: string | null;
}

/** `users` (seed 000), plus `usernameLower` (case-insensitive uniqueness) and `role`. */
export interface UserDoc {
  _id: ObjectId;
  username: string;
  usernameLower: string;
  email: string | null;
  emailVerified: boolean;
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
  /** Store purchases (features/gems/store.ts): models and profile themes bought, and the ad-free pass's end. */
  unlockedModels?: string[];
  unlockedThemes?: string[];
  adFreeUntil?: Date | null;
  /** When a moderator last sanctioned the account (pauses trust recovery); see `trust-accrual`. */
  lastSanctionedAt?: Date | null;
  /** The UTC day trust last grew from clean activity (one gain per day). */
  trustAccruedOn?: string | null;
  /** The balance the latest settlement entry produced, recorded in the same update (exact `balanceAfter`). */
  settledEntry?: { id: ObjectId; balanceAfter: number };
  /** Ids of the latest ledger entries applied to gemBalance (makes applying an entry idempotent). */
  ledgerApplied?: ObjectId[];
}

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9_]{3,30}$/, "3–30 letters, digits or underscores")
  .openapi({ example: "ada_l" });

export const NotificationPreferencesSchema = z
  .object({ push: z.boolean(), email: z.boolean(), inApp: z.boolean(), marketing: z.boolean() })
  .openapi("NotificationPreferences");

export const PublicUser = z
  .object({
    id: z.string(),
    username: z.string(),
    displayName: z.string(),
    avatarUrl: z.string().nullable(),
    bio: z.string(),
    tier: z.enum(TIERS),
    followersCount: z.number().int(),
    followingCount: z.number().int(),
    totalPosts: z.number().int(),
    createdAt: z.string(),
  })
  .openapi("PublicUser");

export const Me = PublicUser.extend({
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  role: z.enum(ROLES),
  gemBalance: z.number(),
  currentStreak: z.number().int(),
  longestStreak: z.number().int(),
  referralCode: z.string(),
  profileTheme: z.string().nullable(),
  unlockedModels: z.array(z.string()),
  unlockedThemes: z.array(z.string()),
  adFreeUntil: z.string().nullable(),
  notificationPreferences: NotificationPreferencesSchema,
  oauthProviders: z.array(z.string()),
  hasPassword: z.boolean(),
}).openapi("Me");

export const UpdateMeBody = z
  .object({
    displayName: z.string().trim().min(1).max(50).optional(),
    bio: z.string().max(160).optional(),
    avatarUrl: z
      .url({ protocol: /^https?$/, error: "an http(s) URL" })
      .max(2048)
      .nullable()
      .optional(),
    profileTheme: z.string().min(1).max(40).nullable().optional(),
    notificationPreferences: NotificationPreferencesSchema.partial().strict().optional(),
  })
  .strict()
  .openapi("UpdateMe");

export const CheckinResult = z
  .object({
    currentStreak: z.number().int(),
    longestStreak: z.number().int(),
    gemsAwarded: z.number().int(),
    date: z.string(),
  })
  .openapi("CheckinResult");

export type PublicUser = z.infer<typeof PublicUser>;
export type Me = z.infer<typeof Me>;
export type UpdateMeBody = z.infer<typeof UpdateMeBody>;

export function toPublicUser(u: UserDoc): PublicUser {
  return {
    id: u._id.toHexString(),
    username: u.username,
    displayName: u.displayName,
    avatarUrl: u.avatarUrl ?? null,
    bio: u.bio ?? "",
    tier: u.tier,
    followersCount: u.followersCount ?? 0,
    followingCount: u.followingCount ?? 0,
    totalPosts: u.totalPosts ?? 0,
    createdAt: u.createdAt.toISOString(),
  };
}

/** The end of the user's referral bonus window while it is open, else null. */
export function activeReferralBonus(u: Pick<UserDoc, "referralBonusExpiresAt">, now: Date): Date | null {
  const until = u.referralBonusExpiresAt;
  return until && until > now ? until : null;
}

/** Banned now: `bannedAt` set and no `banExpiresAt`, or one still in the future (a timed ban lifts itself). */
export function isBanned(u: Pick<UserDoc, "bannedAt" | "banExpiresAt">, now: Date): boolean {
  if (!u.bannedAt) return false;
  return !u.banExpiresAt || u.banExpiresAt.getTime() > now.getTime();
}

export function toMe(u: UserDoc): Me {
  return {
    ...toPublicUser(u),
    email: u.email,
    emailVerified: u.emailVerified,
    role: u.role,
    gemBalance: u.gemBalance ?? 0,
    currentStreak: u.currentStreak ?? 0,
    longestStreak: u.longestStreak ?? 0,
    referralCode: u.referralCode,
    profileTheme: u.profileTheme ?? null,
    unlockedModels: u.unlockedModels ?? [],
    unlockedThemes: u.unlockedThemes ?? [],
    adFreeUntil: u.adFreeUntil?.toISOString() ?? null,
    notificationPreferences: u.notificationPreferences,
    oauthProviders: (u.oauthProviders ?? []).map((p) => p.provider),
    hasPassword: Boolean(u.passwordHash),
  };
}

export const DEFAULT_NOTIFICATION_PREFERENCES: NotificationPreferences = {
  push: true,
  email: true,
  inApp: true,
  marketing: false,
};
