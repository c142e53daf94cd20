import { z } from "zod";
import { pageOf } from "../../core/schemas";
import { effectiveTier } from "../../core/standing";
import { type NotificationPreferences, ROLES, TIERS, type UserDoc } from "../../db";

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9_]{3,30}$/, "3–30 letters, digits or underscores")
  .meta({ example: "ada_l" });

export const NotificationPreferencesSchema = z
  .object({ push: z.boolean(), email: z.boolean(), inApp: z.boolean(), marketing: z.boolean() })
  .meta({ id: "NotificationPreferences" });

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
  .meta({ id: "PublicUser" });

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
  tierExpiresAt: z.string().nullable().meta({ description: "When the current paid tier ends (null: no end or free)" }),
  notificationPreferences: NotificationPreferencesSchema,
  oauthProviders: z.array(z.string()),
  hasPassword: z.boolean(),
}).meta({ id: "Me" });

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
  .meta({ id: "UpdateMe" });

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
    // What applies now: a paid tier past its end shows (and acts) as free.
    tier: effectiveTier({ tier: u.tier, tierExpiresAt: u.tierExpiresAt?.getTime() ?? null }, new Date()),
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
    tierExpiresAt: u.tier !== "free" ? (u.tierExpiresAt?.toISOString() ?? null) : null,
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

export const PublicUserPage = pageOf(PublicUser, "PublicUserPage");
export type PublicUserPage = z.infer<typeof PublicUserPage>;

export const ProfileParams = z.object({ username: Username });
export const RoleBody = z.object({ role: z.enum(ROLES) }).strict();
export const TierBody = z
  .object({
    tier: z.enum(TIERS),
    expiresAt: z.iso
      .datetime({ offset: true })
      .nullable()
      .meta({ description: "When a paid tier ends (null: no end); ignored for free" }),
  })
  .strict()
  .refine((b) => b.tier === "free" || b.expiresAt === null || new Date(b.expiresAt).getTime() > Date.now(), {
    path: ["expiresAt"],
    message: "must be in the future",
  });
