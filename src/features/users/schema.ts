import { z } from "zod";
import { ObjectIdString, pageOf } from "../../core/schemas";
import { effectiveTier } from "../../core/standing";
import { type NotificationPreferences, ROLES, TIERS, type UserDoc } from "../../db";
import { type LegalVersions, requiredConsents, VERSIONED_KINDS } from "../consents/schema";

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9_]{3,30}$/, "3–30 letters, digits or underscores")
  .meta({ example: "ada_l" });

const LocalTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "HH:MM, 00:00–23:59");

export const QuietHoursSchema = z
  .object({ start: LocalTime, end: LocalTime })
  .strict()
  .refine((q) => q.start !== q.end, { path: ["end"], message: "must differ from start" })
  .meta({
    id: "QuietHours",
    description:
      "No push between these local times (a start after the end spans midnight, e.g. 22:00–07:00); what arrives " +
      "meanwhile is pushed as one summary when they end. Local means the account's time zone, UTC until one is set.",
  });

export const NotificationPreferencesSchema = z
  .object({
    push: z.boolean().meta({ description: "Push notifications to the account's devices" }),
    email: z.boolean().meta({
      description:
        "Optional mail (new sign-in notices); links you ask for and notices of password or email changes always go",
    }),
    inApp: z.boolean(),
    marketing: z.boolean().meta({ description: "Promotional notices (pushed only when true)" }),
    quietHours: QuietHoursSchema.nullable(),
  })
  .meta({ id: "NotificationPreferences" });

export const ViewerRelation = z
  .object({
    following: z.boolean().meta({ description: "The caller follows them" }),
    followedBy: z.boolean().meta({ description: "They follow the caller" }),
    blocked: z.boolean().meta({ description: "The caller blocks them" }),
    muted: z.boolean().meta({ description: "The caller mutes them" }),
  })
  .meta({ id: "ViewerRelation" });
export type ViewerRelation = z.infer<typeof ViewerRelation>;

export const PublicUser = z
  .object({
    id: z.string(),
    username: z.string(),
    displayName: z.string(),
    avatarUrl: z.string().nullable(),
    bio: z.string(),
    profileTheme: z.string().nullable(),
    tier: z.enum(TIERS),
    followersCount: z.number().int(),
    followingCount: z.number().int(),
    totalPosts: z.number().int(),
    createdAt: z.string(),
    viewer: ViewerRelation.optional().meta({
      description: "How the signed-in caller stands with this person (profiles only; absent for yourself)",
    }),
  })
  .meta({ id: "PublicUser" });

export const Me = PublicUser.extend({
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  pendingEmail: z
    .string()
    .nullable()
    .meta({ description: "An address change awaiting confirmation from that address (null when none or expired)" }),
  pendingEmailExpiresAt: z.string().nullable(),
  role: z.enum(ROLES),
  gemBalance: z.number(),
  currentStreak: z.number().int(),
  longestStreak: z.number().int(),
  referralCode: z.string(),
  unlockedModels: z.array(z.string()),
  unlockedThemes: z.array(z.string()),
  adFreeUntil: z.string().nullable(),
  tierExpiresAt: z.string().nullable().meta({ description: "When the current paid tier ends (null: no end or free)" }),
  notificationPreferences: NotificationPreferencesSchema,
  oauthProviders: z.array(z.string()),
  hasPassword: z.boolean(),
  consentRequired: z.array(z.enum(VERSIONED_KINDS)).meta({
    description:
      "Documents the user must (re-)accept with `POST /v1/me/consents` (never accepted, withdrawn, or a new " +
      "version since): empty when none",
  }),
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
    avatarMediaId: ObjectIdString.optional().meta({
      description: "A ready upload of the caller's with purpose `avatar` (POST /v1/media); sets avatarUrl to its URL",
    }),
    profileTheme: z.string().min(1).max(40).nullable().optional(),
    notificationPreferences: NotificationPreferencesSchema.partial().strict().optional(),
  })
  .strict()
  .refine((b) => b.avatarMediaId === undefined || b.avatarUrl === undefined, {
    path: ["avatarMediaId"],
    message: "send avatarMediaId or avatarUrl, not both",
  })
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
    profileTheme: u.profileTheme ?? null,
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

/**
 * The caller's own view; `now` decides whether a pending email change is still open, `legal` (the current terms
 * and privacy versions) whether consent is needed.
 */
export function toMe(u: UserDoc, now: Date, legal: LegalVersions): Me {
  const pending = u.pendingEmail && u.pendingEmailExpiresAt && u.pendingEmailExpiresAt > now;
  return {
    ...toPublicUser(u),
    email: u.email,
    emailVerified: u.emailVerified,
    pendingEmail: pending ? (u.pendingEmail ?? null) : null,
    pendingEmailExpiresAt: pending ? (u.pendingEmailExpiresAt?.toISOString() ?? null) : null,
    role: u.role,
    gemBalance: u.gemBalance ?? 0,
    currentStreak: u.currentStreak ?? 0,
    longestStreak: u.longestStreak ?? 0,
    referralCode: u.referralCode,
    unlockedModels: u.unlockedModels ?? [],
    unlockedThemes: u.unlockedThemes ?? [],
    adFreeUntil: u.adFreeUntil?.toISOString() ?? null,
    tierExpiresAt: u.tier !== "free" ? (u.tierExpiresAt?.toISOString() ?? null) : null,
    notificationPreferences: {
      ...DEFAULT_NOTIFICATION_PREFERENCES,
      ...u.notificationPreferences,
      quietHours: u.notificationPreferences?.quietHours ?? null,
    },
    oauthProviders: (u.oauthProviders ?? []).map((p) => p.provider),
    hasPassword: Boolean(u.passwordHash),
    consentRequired: requiredConsents(u, legal),
  };
}

export const DEFAULT_NOTIFICATION_PREFERENCES: NotificationPreferences = {
  push: true,
  email: true,
  inApp: true,
  marketing: false,
  quietHours: null,
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

export const Platform = z.enum(["ios", "android", "web"]);
/** A push token as the app's push service issued it (APNs, FCM, Web Push); stored, never returned. */
export const PushToken = z.string().min(1).max(512);
export const AppVersion = z
  .string()
  .regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$/, "1–32 letters, digits or . + _ -")
  .meta({ example: "2.14.0+311" });

export const DeviceParams = z.object({
  deviceId: z
    .string()
    .regex(/^[A-Za-z0-9._:~-]{1,128}$/, "1–128 letters, digits or . _ : ~ -")
    .meta({ example: "7E9B2C1A-4F0D-4C55-9E83-2D1A6B0C9F11" }),
});

export const DeviceBody = z
  .object({
    platform: Platform,
    pushToken: PushToken.nullable().optional().meta({ description: "Omitted or null: the device gets no pushes" }),
    appVersion: AppVersion.nullable().optional(),
  })
  .strict()
  .meta({ id: "DeviceRegistration" });
export type DeviceBody = z.infer<typeof DeviceBody>;

export const DeviceView = z
  .object({
    deviceId: z.string(),
    platform: z.string().meta({ description: "`ios`, `android`, `web`, or `unknown` for a sign-in that named none" }),
    hasPushToken: z.boolean(),
    appVersion: z.string().nullable(),
    lastSeenAt: z.string(),
  })
  .meta({ id: "Device" });
export type DeviceView = z.infer<typeof DeviceView>;
export const DeviceList = z.object({ items: z.array(DeviceView) }).meta({ id: "DeviceList" });
export type DeviceList = z.infer<typeof DeviceList>;
