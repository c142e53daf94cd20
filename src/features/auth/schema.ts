import { z } from "zod";
import { AttributionInput } from "../analytics/schema";
import { AppVersion, Me, Platform, PushToken, Username } from "../users/schema";

const Password = z.string().min(8, "at least 8 characters").max(256);
/** In sign-in bodies, stored verbatim (the path of /v1/me/devices/{deviceId} takes a narrower charset). */
const DeviceId = z.string().min(1).max(128);

export const SignupBody = z
  .object({
    username: Username,
    email: z.email().max(254),
    password: Password,
    displayName: z.string().trim().min(1).max(50).optional(),
    referralCode: z
      .string()
      .regex(/^[A-Z0-9]{8}$/, "8 letters or digits")
      .optional(),
    deviceId: DeviceId.optional(),
    platform: Platform.optional(),
    installSource: z.enum(["direct_link", "share_card", "qr_code"]).optional(),
    termsVersion: z.string().min(1).max(40).meta({
      description: "The terms of service version the user accepts: must be the current one (GET /v1/legal)",
    }),
    privacyVersion: z.string().min(1).max(40).meta({
      description: "The privacy policy version the user accepts: must be the current one",
    }),
    marketingConsent: z.boolean().optional().meta({ description: "Marketing mail and pushes (default: no)" }),
    dataProcessingConsent: z.boolean().optional().meta({ description: "Optional data processing (default: no)" }),
    attribution: AttributionInput.optional().meta({
      description: "First-touch attribution the app captured (install referrer, deep link); kept once, never changed",
    }),
  })
  .strict()
  .meta({ id: "Signup" });

export const LoginBody = z
  .object({
    login: z.string().min(1).max(254).meta({ description: "Username or email" }),
    password: z.string().min(1).max(256),
    deviceId: DeviceId.optional(),
    platform: Platform.optional(),
    pushToken: PushToken.optional(),
    appVersion: AppVersion.optional(),
  })
  .strict()
  .meta({ id: "Login" });

export const RefreshBody = z
  .object({ refreshToken: z.string().min(16).max(256) })
  .strict()
  .meta({ id: "Refresh" });
export const ForgotBody = z.object({ email: z.email().max(254) }).strict();
export const ResetBody = z.object({ token: z.string().min(16).max(256), password: Password }).strict();
export const VerifyEmailBody = z.object({ token: z.string().min(16).max(256) }).strict();
export const OAuthBody = z
  .object({ idToken: z.string().min(1).max(8192), deviceId: DeviceId.optional(), platform: Platform.optional() })
  .strict();
/** Sign-in with a provider also records the install, as login does. */
export const OAuthSignInBody = OAuthBody.extend({
  pushToken: PushToken.optional(),
  appVersion: AppVersion.optional(),
  attribution: AttributionInput.optional().meta({
    description: "First-touch attribution, kept when this sign-in creates the account",
  }),
})
  .strict()
  .meta({ id: "OAuthSignIn" });
export const OAuthProviderParam = z.object({ provider: z.enum(["google", "apple"]) });
/** Unlinking names a provider the account may not have: an unknown one is a 404 like an unlinked one. */
export const LinkedProviderParam = z.object({
  provider: z.string().regex(/^[a-z0-9_-]{1,32}$/, "a provider name such as google or apple"),
});

export const ChangePasswordBody = z
  .object({ currentPassword: z.string().min(1).max(256), newPassword: Password })
  .strict()
  .refine((b) => b.currentPassword !== b.newPassword, {
    path: ["newPassword"],
    message: "must differ from the current password",
  })
  .meta({ id: "ChangePassword" });
export type ChangePasswordBody = z.infer<typeof ChangePasswordBody>;

export const ChangeEmailBody = z
  .object({
    email: z.email().max(254),
    password: z.string().min(1).max(256).meta({ description: "The current password" }),
  })
  .strict()
  .meta({ id: "ChangeEmail" });
export type ChangeEmailBody = z.infer<typeof ChangeEmailBody>;

export const TokenPair = z
  .object({ accessToken: z.string(), refreshToken: z.string(), expiresIn: z.number().int() })
  .meta({ id: "TokenPair" });
export const AuthResult = TokenPair.extend({ user: Me }).meta({ id: "AuthResult" });

export const SessionView = z
  .object({
    id: z.string(),
    deviceId: z.string().nullable(),
    platform: z.string().nullable(),
    userAgent: z.string().nullable(),
    createdAt: z.string(),
    lastUsedAt: z.string(),
    expiresAt: z.string(),
    current: z.boolean(),
  })
  .meta({ id: "Session" });
export const SessionList = z.object({ items: z.array(SessionView) }).meta({ id: "SessionList" });

export type SignupBody = z.infer<typeof SignupBody>;
export type LoginBody = z.infer<typeof LoginBody>;
export type TokenPair = z.infer<typeof TokenPair>;
export type SessionView = z.infer<typeof SessionView>;
export type SessionList = z.infer<typeof SessionList>;
export type AuthResult = z.infer<typeof AuthResult>;
